import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { addressBucket, unmapIPv4 } from './client-address';

/** The refusal is sent as soon as the connection is accepted, before the client's request is read. */
function tooManyConnections(max: number): Buffer {
  const body = JSON.stringify({
    error: {
      message: `Too many open connections from your address (at most ${max}); close some or reuse them (keep-alive).`,
      type: 'rate_limit_exceeded',
      param: null,
      code: 'too_many_connections',
    },
  });
  return Buffer.from(
    'HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\nretry-after: 1\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** A refused socket is dropped this long after its answer, whatever the client does. */
const REFUSED_LINGER_MS = 1_000;

const noop = (): void => undefined;

/**
 * At most `max` open connections per client address (the TCP peer; an IPv6 peer counts per /64, as the
 * failed-authentication limits do), so one client cannot hold every socket the process has. Counted when
 * a connection is accepted and released when it closes: one Map update each, nothing per request.
 *
 * The address is the TCP peer because nothing else is known when a connection opens. Peers in
 * TRUSTED_PROXIES (`exempt`) are not counted: every client behind them shares their address, and the
 * proxy is where per-client connection limits belong.
 */
export class ConnectionCap {
  private readonly open = new Map<string, number>();
  private readonly refusal: Buffer;
  /** Connections refused since start. */
  refused = 0;

  constructor(
    readonly max: number,
    private readonly exempt: (peer: string) => boolean = () => false,
  ) {
    this.refusal = tooManyConnections(max);
  }

  /** Open connections counted for the bucket of `peer`. */
  openFrom(peer: string): number {
    return this.open.get(addressBucket(peer)) ?? 0;
  }

  /**
   * Node's HTTP server parses every connection from the one 'connection' listener it registers at
   * construction. It is wrapped, so a refused socket is answered here and never reaches the parser.
   */
  install(server: Server): void {
    if (this.max <= 0) return;
    const http = server.listeners('connection').find((l) => l.name === 'connectionListener') as ((this: Server, s: Socket) => void) | undefined;
    if (!http) {
      // Another Node's internals: still refuse, without the answer.
      server.prependListener('connection', (s: Socket) => {
        if (!this.admit(s)) s.destroy();
      });
      return;
    }
    server.removeListener('connection', http);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the listener needs its own `this` (the server) for Node's handler
    const cap = this;
    server.on('connection', function (this: Server, socket: Socket) {
      if (cap.admit(socket)) http.call(this, socket);
      else cap.refuse(socket);
    });
  }

  /** Counts the connection in, or returns false when its address already holds `max`. */
  admit(socket: Socket): boolean {
    const raw = socket.remoteAddress;
    // A socket already gone has no address; the HTTP server sees it close at once.
    if (raw === undefined) return true;
    const peer = unmapIPv4(raw);
    if (this.exempt(peer)) return true;
    const key = addressBucket(peer);
    const n = this.open.get(key) ?? 0;
    if (n >= this.max) {
      this.refused++;
      return false;
    }
    this.open.set(key, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    });
    return true;
  }

  /** 429 `too_many_connections`, then close; what the client sends meanwhile is read and dropped (closing on unread data would reset the answer away). */
  refuse(socket: Socket): void {
    socket.on('error', noop);
    socket.once('end', () => socket.destroy());
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
    socket.end(this.refusal);
    socket.resume();
  }
}
