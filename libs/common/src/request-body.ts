import { isUtf8 } from 'node:buffer';
import * as zlib from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import { OpenAIError } from './openai-error';

/** Content-Encodings the gateway inflates: body-parser's own set (zstd only where Node has it: 22.15+, not Node 20). */
export const ACCEPTED_CONTENT_ENCODINGS: readonly string[] = ['identity', 'gzip', 'deflate', 'br', ...('createZstdDecompress' in zlib ? ['zstd'] : [])];

const BODY_BYTES = Symbol('gw.bodyBytes');
const RAW_BODY = Symbol('gw.rawBody');

/**
 * body-parser's `verify` hook: it sees the body after inflation (what the client really sent, and what
 * is forwarded once re-serialised), so budgets are sized from it, never from the compressed Content-Length.
 * Invalid UTF-8 is decoded to U+FFFD (3 bytes per bad byte) before it is forwarded: counted at 3×.
 */
export function recordBodyBytes(req: unknown, _res: unknown, buf: Buffer, charset?: string): void {
  const utf8 = isUtf8(buf);
  (req as Record<symbol, number>)[BODY_BYTES] = utf8 ? buf.length : buf.length * 3;
  // Valid UTF-8 as sent (inflated): the bytes a pass-through may forward as they are (see takeRawBody).
  if (utf8 && (charset === undefined || charset === 'utf-8' || charset === 'utf8')) (req as Record<symbol, Buffer>)[RAW_BODY] = buf;
}

/**
 * The request body's bytes after inflation, when they are valid UTF-8 in a UTF-8 charset, so forwarding them
 * is forwarding what was parsed; undefined otherwise (the body is then re-serialised from its parsed value).
 */
export function takeRawBody(req: IncomingMessage): Buffer | undefined {
  const r = req as unknown as Record<symbol, Buffer | undefined>;
  const raw = r[RAW_BODY];
  // Handed over once: the request (alive until its response ends) does not keep a 100 kB body for a whole stream.
  r[RAW_BODY] = undefined;
  return raw;
}

/** Inflated size of the request body in bytes, if the body parser read one. */
export function bodyBytesOf(req: IncomingMessage): number | undefined {
  return (req as unknown as Record<symbol, number | undefined>)[BODY_BYTES];
}

/** The request's Content-Encoding when the gateway does not accept it (checked before anything is read). */
export function unsupportedContentEncoding(req: IncomingMessage): string | undefined {
  const raw = req.headers['content-encoding'];
  if (raw === undefined) return undefined;
  // an empty header is no encoding, as body-parser reads it
  const enc = String(raw).trim().toLowerCase() || 'identity';
  return ACCEPTED_CONTENT_ENCODINGS.includes(enc) ? undefined : enc;
}

export function unsupportedMediaType(message: string): OpenAIError {
  return new OpenAIError(415, message, 'invalid_request_error', 'unsupported_media_type');
}

export function unsupportedEncodingError(encoding: string): OpenAIError {
  return unsupportedMediaType(
    `Content-Encoding "${encoding.slice(0, 64)}" is not supported; send the body as ${ACCEPTED_CONTENT_ENCODINGS.join(', ')} (one encoding, not a list).`,
  );
}
