import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeProvider, GatewayReplica, ScriptedReply, Stack, eventually, runCodexExec, seedTenant, startGatewayReplica, startStack } from '@gw/testing';

jest.setTimeout(180_000);

const MODEL = 'affinity-model';
const COOLDOWN_MS = 1000;

/** What the load balancer in front of the two replicas saw of one request. */
interface Seen {
  replica: number;
  status: number;
  affinity?: string;
  target?: string;
  dropped?: string;
  /** Encrypted reasoning items Codex sent in the request (before the gateway). */
  sealedSent: number;
}

/**
 * Session affinity (issue 15 point 2) with the real Codex CLI: two gateway replicas on one database behind a
 * round-robin balancer, a route with two equal targets (two fake OpenAI accounts, each sealing its own
 * encrypted reasoning and refusing another's, as OpenAI does).
 */
describe('session affinity: one Codex session, two replicas, two targets', () => {
  let stack: Stack;
  let replica: GatewayReplica;
  let lb: http.Server;
  let lbUrl: string;
  let secret: string;
  const fakes: Record<'a' | 'b', FakeProvider> = {} as never;
  const seen: Seen[] = [];
  let control: http.Server;
  let controlUrl: string;

  const countSealed = (body: any): number =>
    Array.isArray(body?.input) ? body.input.filter((i: any) => i?.type === 'reasoning' && typeof i.encrypted_content === 'string').length : 0;
  const responsesTo = (f: FakeProvider) => f.requestsTo('/responses');
  // The session's home: the target its first request (since the last reset) went to.
  const firstAt = (f: FakeProvider): number => responsesTo(f)[0]?.at ?? Infinity;
  const homeOf = (): 'a' | 'b' => (firstAt(fakes.a) <= firstAt(fakes.b) ? 'a' : 'b');

  beforeAll(async () => {
    fakes.a = await FakeProvider.start({ flavor: 'openai', models: [MODEL] });
    fakes.b = await FakeProvider.start({ flavor: 'openai', models: [MODEL] });
    fakes.a.sealedBy = 'acct-a';
    fakes.b.sealedBy = 'acct-b';
    fakes.a.shareScripts(fakes.b);
    stack = await startStack({ circuitFailureThreshold: 1, circuitCooldownMs: COOLDOWN_MS });
    replica = await startGatewayReplica(stack);
    const t = await seedTenant(stack, { provider: { kind: 'openai', name: 'acct-a', baseUrl: fakes.a.baseUrl, credential: 'sk-a' } });
    secret = t.secret;
    const b = await stack.api('POST', '/admin/providers', { name: 'acct-b', kind: 'openai', baseUrl: fakes.b.baseUrl, credential: 'sk-b' });
    const r = await stack.api('POST', '/admin/routes', {
      modelPattern: MODEL,
      targets: [
        { providerId: t.providerId, weight: 1, priority: 0 },
        { providerId: b.body.id, weight: 1, priority: 0 },
      ],
      settings: { maxAttempts: 1 },
    });
    expect(r.status).toBe(201);

    // A round-robin load balancer: request i goes to replica i % 2, whatever connection it came on.
    const upstreams = [stack.gatewayUrl, replica.gatewayUrl];
    let next = 0;
    lb = http.createServer((req, res) => {
      const n = next++ % 2;
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(parts);
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          body = undefined;
        }
        const up = http.request(upstreams[n] + req.url, { method: req.method, headers: req.headers }, (ur) => {
          const h = ur.headers;
          if (req.url?.endsWith('/responses')) {
            seen.push({
              replica: n,
              status: ur.statusCode ?? 0,
              affinity: h['x-gateway-affinity'] as string,
              target: h['x-gateway-provider'] as string,
              dropped: h['x-gateway-sealed-dropped'] as string,
              sealedSent: countSealed(body),
            });
          }
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => res.destroy());
        up.end(raw);
      });
    });
    await new Promise<void>((r) => lb.listen(0, '127.0.0.1', r));
    lbUrl = `http://127.0.0.1:${(lb.address() as AddressInfo).port}/v1`;

    // What Codex's shell commands call to take the session's home target down and bring it back.
    let down: 'a' | 'b' | undefined;
    control = http.createServer((req, res) => {
      // Home: the target that served the session so far (taken down), then the one that was taken down.
      const home = req.url === '/down' ? homeOf() : down!;
      void (async () => {
        if (req.url === '/down') {
          down = home;
          await fakes[home].close();
        }
        if (req.url === '/up') {
          const port = fakes[home].port;
          const revived = await FakeProvider.start({ flavor: 'openai', models: [MODEL], port });
          revived.sealedBy = `acct-${home}`;
          fakes[home === 'a' ? 'b' : 'a'].shareScripts(revived);
          revived.received = fakes[home].received; // one history of what the account received
          fakes[home] = revived;
          // Past the circuit's cooldown on both replicas: the next request may probe home.
          await new Promise((r) => setTimeout(r, COOLDOWN_MS + 200));
        }
        res.end(`${req.url} ${home}\n`);
      })();
    });
    await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
    controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await stack?.close();
    await Promise.all([fakes.a?.close(), fakes.b?.close(), new Promise((r) => lb?.close(r)), new Promise((r) => control?.close(r))]);
  });

  const echo = (i: number): ScriptedReply => ({ toolCalls: [{ id: `call_${i}`, name: 'exec_command', arguments: JSON.stringify({ cmd: `echo turn-${i}` }) }] });
  const call = (i: number, path: string): ScriptedReply => ({
    toolCalls: [{ id: `call_${i}`, name: 'exec_command', arguments: JSON.stringify({ cmd: `curl -s ${controlUrl}${path}` }) }],
  });
  const codex = () => runCodexExec({ baseUrl: lbUrl, apiKey: secret, model: MODEL, prompt: 'Run the commands you are given.', timeoutMs: 120_000 });
  const keysOf = (): Set<string> => new Set([...responsesTo(fakes.a), ...responsesTo(fakes.b)].map((r) => r.body.prompt_cache_key));

  it('10 turns spread over both replicas: one target serves them all, with its own encrypted reasoning coming back', async () => {
    fakes.a.script(...Array.from({ length: 9 }, (_, i) => echo(i + 1)), { text: 'ten turns done' });
    const r = await codex();
    if (r.code !== 0) console.error(r.stderr);
    expect(r.stdout.trim()).toBe('ten turns done');
    const home = homeOf();
    const away = home === 'a' ? 'b' : 'a';
    expect(responsesTo(fakes[home])).toHaveLength(10);
    expect(responsesTo(fakes[away])).toHaveLength(0);
    expect(keysOf().size).toBe(1);
    expect(seen.map((s) => s.replica)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    expect(seen.every((s) => s.status === 200 && s.affinity === 'home' && s.target === `acct-${home}`)).toBe(true);
    // Codex sent each turn's reasoning back (sealed by home, which could read it): nothing was dropped.
    expect(seen.map((s) => s.sealedSent)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen.every((s) => s.dropped === undefined)).toBe(true);
  });

  it('home fails mid-session: the session moves once, stays, and never sends the other account encrypted reasoning; back home when it heals', async () => {
    seen.length = 0;
    for (const f of [fakes.a, fakes.b]) f.received = [];
    const since = new Date();
    // Turn 4's command takes the home target down; turn 7's brings it back (and waits out the circuit's cooldown).
    fakes.a.script(echo(1), echo(2), echo(3), call(4, '/down'), echo(5), echo(6), call(7, '/up'), echo(8), echo(9), { text: 'moved and back' });
    const r = await codex();
    if (r.code !== 0) console.error(r.stderr);
    expect(r.stdout.trim()).toBe('moved and back');
    const home = homeOf();
    const away = home === 'a' ? 'b' : 'a';
    expect(keysOf().size).toBe(1);
    // Turns 1-4 at home, 5-7 moved (each replica's circuit opened on its first refused connection), 8-10 home.
    expect(seen.map((s) => s.target)).toEqual([...Array(4).fill(`acct-${home}`), ...Array(3).fill(`acct-${away}`), ...Array(3).fill(`acct-${home}`)]);
    expect(seen.map((s) => s.affinity)).toEqual([...Array(4).fill('home'), ...Array(3).fill('moved'), ...Array(3).fill('home')]);
    expect(seen.every((s) => s.status === 200)).toBe(true);
    // The moved turns: Codex sent encrypted reasoning, the other account received none of it.
    const moved = responsesTo(fakes[away]);
    expect(moved).toHaveLength(3);
    expect(seen.slice(4, 7).map((s) => s.sealedSent)).toEqual([4, 5, 6]);
    expect(seen.slice(4, 7).map((s) => Number(s.dropped))).toEqual([4, 5, 6]);
    for (const req of moved) expect(countSealed(req.body)).toBe(0);
    // Back home, the history holds what the other account sealed: refused once (400 invalid_encrypted_content),
    // sent again without sealed items, served. Codex saw only the 200s.
    const back = responsesTo(fakes[home]).slice(4);
    expect(back).toHaveLength(6);
    for (let i = 0; i < 3; i++) {
      expect(countSealed(back[2 * i].body)).toBeGreaterThan(0);
      expect(countSealed(back[2 * i + 1].body)).toBe(0);
    }
    // Codex exits on turn 10's last event, which can come before the replica that served it has settled the call.
    await eventually(async () => {
      await stack.flushLedger();
      return (await stack.sql(`SELECT count(*)::int AS n FROM usage_records WHERE endpoint = 'responses' AND started_at >= $1`, [since]))[0].n === 10;
    });
    const rows = await stack.sql(`SELECT status, attempts FROM usage_records WHERE endpoint = 'responses' ORDER BY started_at DESC LIMIT 3`);
    expect(rows.map((row) => [row.status, row.attempts])).toEqual([
      [200, 2],
      [200, 2],
      [200, 2],
    ]);
  });
});
