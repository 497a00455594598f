import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const REQ_ID = Symbol('requestId');
const CLIENT_REQ_ID = Symbol('clientRequestId');
let counter = 0;
const prefix = randomBytes(4).toString('hex');
/** What a client may send as its own id: printable, no spaces, bounded (it is logged and stored). */
const CLIENT_ID = /^[\w.:-]{8,128}$/;

/** Cheap, unique, sortable-enough id: process prefix + time + counter, no crypto per request. */
export function newRequestId(): string {
  counter = (counter + 1) % 0xffffff;
  return `req_${prefix}${Date.now().toString(36)}${counter.toString(36).padStart(5, '0')}`;
}

/**
 * Gives the request a server-generated id, returned as `x-request-id`. It is the ledger's primary key, the
 * audit log's and the logs' request id, so a client never chooses it (a chosen id could merge or collide
 * with other requests' rows). A sane id the client sent in `x-request-id` is kept apart, for tracing across
 * systems: echoed as `x-client-request-id`, logged and stored next to ours (`clientRequestIdOf`).
 */
export function assignRequestId(req: IncomingMessage, res: ServerResponse): string {
  const id = newRequestId();
  const r = req as unknown as Record<symbol, string | undefined>;
  r[REQ_ID] = id;
  res.setHeader('x-request-id', id);
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && CLIENT_ID.test(given)) {
    r[CLIENT_REQ_ID] = given;
    res.setHeader('x-client-request-id', given);
  }
  return id;
}

/** The server-generated id (`x-request-id` of the response). */
export function requestIdOf(req: IncomingMessage): string {
  return (req as unknown as Record<symbol, string>)[REQ_ID] ?? 'unknown';
}

/** The client's own `x-request-id`, if it sent a sane one; never used as a key. */
export function clientRequestIdOf(req: IncomingMessage): string | null {
  return (req as unknown as Record<symbol, string | undefined>)[CLIENT_REQ_ID] ?? null;
}
