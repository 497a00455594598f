import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const REQ_ID = Symbol('requestId');
let counter = 0;
const prefix = randomBytes(4).toString('hex');

/** Cheap, unique, sortable-enough id: process prefix + time + counter, no crypto per request. */
export function newRequestId(): string {
  counter = (counter + 1) % 0xffffff;
  return `req_${prefix}${Date.now().toString(36)}${counter.toString(36).padStart(5, '0')}`;
}

/** Accepts a sane client-supplied id (for tracing across systems), otherwise makes one. */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.:-]{8,128}$/.test(given) ? given : newRequestId();
  (req as unknown as Record<symbol, string>)[REQ_ID] = id;
  res.setHeader('x-request-id', id);
  return id;
}

export function requestIdOf(req: IncomingMessage): string {
  return (req as unknown as Record<symbol, string>)[REQ_ID] ?? 'unknown';
}
