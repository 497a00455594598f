import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A scripted upstream speaking raw HTTP: each POST takes the next responder off the queue. */
export async function rawUpstream() {
  const queue: ((res: http.ServerResponse) => void)[] = [];
  const received: { path: string; body: any }[] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: any;
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch {
        body = undefined;
      }
      received.push({ path: req.url ?? '', body });
      const next = queue.shift();
      if (next) return next(res);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'raw upstream: nothing scripted' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    received,
    /** Queue an SSE reply: each string is one event's data (or a raw event when it starts with `event:`). */
    sse(events: string[], opts: { abruptEnd?: boolean } = {}) {
      queue.push((res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const e of events) res.write(e.startsWith('event:') ? `${e}\n\n` : `data: ${e}\n\n`);
        if (opts.abruptEnd) res.socket?.destroy();
        else res.end();
      });
    },
    json(status: number, body: string) {
      queue.push((res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      });
    },
    reset() {
      queue.length = 0;
      received.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export type RawUpstream = Awaited<ReturnType<typeof rawUpstream>>;
