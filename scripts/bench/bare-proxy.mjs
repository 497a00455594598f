// Child process: the baseline, a pass-through proxy in a few lines of node:http + undici, no features.
import http from 'node:http';
import { Pool } from 'undici';

const upstream = process.argv[2];
const pool = new Pool(upstream, { connections: 256, keepAliveTimeout: 30_000 });
const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  try {
    const up = await pool.request({
      method: req.method,
      path: req.url,
      headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
      body: Buffer.concat(chunks),
    });
    res.writeHead(up.statusCode, { 'content-type': up.headers['content-type'] ?? 'application/json' });
    for await (const c of up.body) res.write(c);
    res.end();
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
