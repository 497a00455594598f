import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface BodyRateOptions {
  /** Smallest average rate a body may arrive at, judged over each window; 0 turns the guard off. */
  minBytesPerSecond: number;
  /** Length of one judged window (the first one is the body's grace period). */
  windowMs: number;
}

interface Watched {
  req: IncomingMessage;
  res: ServerResponse;
  socket: Socket;
  /** Start of the current window, and the socket's byte count then. */
  since: number;
  bytesAtSince: number;
}

const ENTRY = Symbol('gw.bodyRate');
type WatchedRequest = IncomingMessage & { [ENTRY]?: Watched };

/** Socket destroyed this long after the 408 even if the client never reads it. */
const CLOSE_AFTER_MS = 1_000;

/**
 * Request bodies must keep arriving at `minBytesPerSecond`: a 50 MB body on a slow link is fine, a trickle
 * (one byte every few seconds, holding a connection and a parser for hours) is not.
 *
 * One shared sweep timer for every body in flight (running only while there are some), no per-chunk work:
 * a watched request costs one small object, one Set insert and one 'end' listener that deletes it as soon as
 * the body has been read (held until the next sweep instead, every request would survive a garbage
 * collection or two: measured ~9 µs of CPU per request). Each sweep looks at the socket's
 * `bytesRead` (counted by libuv whoever consumes the stream) and, once a window has passed, requires
 * `minBytesPerSecond` on average over it; otherwise the client gets 408 `request_timeout` and the connection
 * is closed. Not judged: a body the app is not reading (paused: its bytes wait in the kernel, not the
 * client's fault), and every body after a sweep that ran late (the event loop was blocked, so bytes that did
 * arrive may not have been read yet); both start a fresh window.
 */
export class BodyRateGuard {
  private readonly watched = new Set<Watched>();
  private timer?: NodeJS.Timeout;
  private lastSweep = 0;
  /** How often bodies are looked at: a fifth of the window, 50 ms to 1 s. */
  readonly sweepMs: number;
  /** Bodies cut off for arriving too slowly, since start. */
  timedOut = 0;

  /** 'end' listener of a watched request (`this` is the request: one function for all of them): its body has arrived. */
  private readonly unwatch: (this: WatchedRequest) => void;

  constructor(
    private readonly opts: BodyRateOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.sweepMs = Math.min(1_000, Math.max(50, Math.floor(opts.windowMs / 5)));
    const watched = this.watched;
    this.unwatch = function (this: WatchedRequest): void {
      const w = this[ENTRY];
      if (w) watched.delete(w);
    };
  }

  /** Bodies being watched now. */
  get size(): number {
    return this.watched.size;
  }

  /** The server's 'request' listener: a request with a body to receive is watched until it has arrived. */
  readonly watch = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.opts.minBytesPerSecond <= 0 || req.complete || !hasBody(req)) return;
    const now = this.now();
    const w: Watched = { req, res, socket: req.socket, since: now, bytesAtSince: req.socket.bytesRead };
    this.watched.add(w);
    (req as WatchedRequest)[ENTRY] = w;
    // 'end' does not start the stream flowing (only 'data' and 'readable' do): the app still reads it as it likes.
    req.on('end', this.unwatch);
    if (!this.timer) {
      this.lastSweep = now;
      this.timer = setInterval(() => this.sweep(), this.sweepMs).unref();
    }
  };

  /** One pass over the bodies in flight (the timer's job; tests call it with their own clock). */
  sweep(now = this.now()): void {
    // A sweep far later than scheduled means the event loop was blocked: judge nobody on stale byte counts.
    const late = now - this.lastSweep > 3 * this.sweepMs;
    this.lastSweep = now;
    const minPerMs = this.opts.minBytesPerSecond / 1_000;
    for (const w of this.watched) {
      if (w.req.complete || w.socket.destroyed) {
        this.watched.delete(w);
        continue;
      }
      const read = w.socket.bytesRead;
      const elapsed = now - w.since;
      if (late || w.req.readableFlowing !== true) {
        w.since = now;
        w.bytesAtSince = read;
      } else if (elapsed >= this.opts.windowMs) {
        if (read - w.bytesAtSince >= minPerMs * elapsed) {
          w.since = now;
          w.bytesAtSince = read;
        } else {
          this.watched.delete(w);
          this.timedOut++;
          refuse(w, this.opts);
        }
      }
    }
    if (!this.watched.size) this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** 408, OpenAI-shaped, with `Connection: close` (Node closes the socket once it is written); a started response is just cut. */
function refuse(w: Watched, opts: BodyRateOptions): void {
  const { res, socket } = w;
  if (res.headersSent) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({
    error: {
      message: `The request body arrived too slowly (under ${opts.minBytesPerSecond} bytes/s over ${opts.windowMs / 1_000} s); the connection is closed.`,
      type: 'invalid_request_error',
      param: null,
      code: 'request_timeout',
    },
  });
  res.writeHead(408, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
  setTimeout(() => socket.destroy(), CLOSE_AFTER_MS).unref();
}
