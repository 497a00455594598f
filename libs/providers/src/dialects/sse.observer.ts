import type { OpenAIError } from '@gw/common';
import type { Operation } from '../provider.adapter';
import type { NormalisedUsage } from '../translate';

/**
 * Where an observer writes what it reads off the wire: the request's call context implements it, so an
 * observer meters without allocating a result per event.
 */
export interface StreamMeter {
  usage: NormalisedUsage;
  /** Whether `usage` came from the provider (true) or is the gateway's estimate. */
  usageReported: boolean;
  status: number;
  errorCode: string | null;
  noteServiceTier(v: unknown): void;
}

/** Reads a provider's usage block into the one normalised shape (`ProviderAdapter.usage`). */
export interface UsageReader {
  usage(op: Operation, raw: unknown): NormalisedUsage;
}

/**
 * One dialect's view of an upstream SSE stream, as the gateway's one relay loop drives it: what to write for
 * each batch of complete events, whether the stream ended properly, and how to tell the client it broke.
 */
export interface SseObserver {
  readonly kind: 'sse';
  /** The status of the client's head; undefined: the upstream's. */
  readonly headStatus?: number;
  /** Output deltas seen (about one token each): the estimate when the stream reports no usage. */
  readonly deltas: number;
  /** Written right after the head, before any upstream event (a translated stream's preamble). */
  start(): string;
  /** A batch of complete upstream events (without their blank-line separators) → what the client gets. */
  events(events: string[]): string;
  /** The upstream ended: throws if it was cut short, else returns the closing frames. */
  end(): string;
  /** The event that tells the client a stream broke after its head, in this dialect's wire format. */
  failure(err: OpenAIError): string;
}

/**
 * An observer that also offers the byte path: a dialect that forwards the upstream's events unchanged meters
 * them off the raw bytes, and the relay writes those bytes as they came (no decoding to strings and
 * re-encoding on the socket write). The relay takes it only when no adapter rewrites events
 * (`ProviderAdapter.chunk`); `events` stays the string path, with the same meaning.
 */
export interface SseByteObserver extends SseObserver {
  /**
   * Upstream bytes → the bytes of the whole events that ended in them, to forward as they are (empty: none
   * yet). A partial event is held back until its blank line, so a break mid-event leaves none before the
   * failure event. A string: the stream fell back to the string path (e.g. CRLF line ends).
   */
  bytes(chunk: Buffer): Buffer | string;
  /** The upstream ended cleanly: the events left pending (one without its final blank line), as `events` writes them. */
  bytesEnd(): string;
}

export function isByteObserver(o: SseObserver): o is SseByteObserver {
  return typeof (o as Partial<SseByteObserver>).bytes === 'function';
}

/**
 * One dialect's view of a non-stream answer. Without `rewrite`, the upstream bytes go to the client
 * untouched (usage only read out of them); with it, the answer is translated.
 */
export interface JsonDialect {
  readonly kind: 'json';
  /** The operation whose usage shape the answer has. */
  readonly op: Operation;
  /** The parsed answer → the body the client gets. */
  rewrite?(answer: Record<string, unknown>): string;
}

/** Pass-through JSON answers, one constant per operation: nothing is allocated per request. */
export const PASS_THROUGH_JSON: Readonly<Record<Operation, JsonDialect>> = {
  chat: { kind: 'json', op: 'chat' },
  responses: { kind: 'json', op: 'responses' },
  responses_compact: { kind: 'json', op: 'responses_compact' },
  embeddings: { kind: 'json', op: 'embeddings' },
};

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** The failure's `{code, message}` as the Responses API's `response.error` carries it. */
export function responseErrorOf(err: OpenAIError): { code: string; message: string } {
  return { code: err.body.error.code ?? 'server_error', message: err.body.error.message };
}
