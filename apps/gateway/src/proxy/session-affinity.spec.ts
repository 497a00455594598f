import { CircuitBreaker } from './circuit-breaker';
import { MemoryTargetBackoff } from './target.backoff';
import { UpstreamDispatcher } from './upstream.dispatcher';
import { CFG, Reply, metrics, provider, upstream } from './upstream.dispatcher.spec-helpers';
import { CallContext } from '../pipeline/call-context';
import type { ResolvedRoute } from '@gw/routing';
import type { Principal } from '@gw/tenancy';

/** The dispatcher with session affinity: a two-target group (a, b) and a fallback group (f). */
function affinity(script: Record<string, Reply[]>) {
  const [a, b, f] = ['a', 'b', 'f'].map(provider);
  const { client, calls } = upstream(script);
  const breaker = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 60_000, now: () => 0 });
  const dispatcher = new UpstreamDispatcher(client, metrics, breaker, new MemoryTargetBackoff(), CFG);
  const route: ResolvedRoute = {
    id: 'r',
    pattern: 'm',
    settings: { maxAttempts: 1 },
    groups: [
      [
        { provider: a, model: 'up', weight: 1 },
        { provider: b, model: 'up', weight: 1 },
      ],
      [{ provider: f, model: 'up', weight: 1 }],
    ],
  };
  const send = async (sessionKey?: string) => {
    const ctx = new CallContext('req', {} as Principal, 'responses', 'm');
    ctx.route = route;
    ctx.sessionKey = sessionKey;
    const r = await dispatcher.send(ctx, 'responses', true, () => ({}));
    return { served: r.target.provider.name, home: ctx.home?.provider.name };
  };
  return { calls, send };
}

describe('UpstreamDispatcher: session affinity', () => {
  it('one session: every request to the same target, its home; other sessions spread over both', async () => {
    const { send } = affinity({});
    const first = await send('session-1');
    expect(first.served).toBe(first.home);
    for (let i = 0; i < 20; i++) expect(await send('session-1')).toEqual(first);
    const homes = new Set<string>();
    for (let i = 0; i < 40; i++) homes.add((await send(`other-${i}`)).served);
    expect([...homes].sort()).toEqual(['a', 'b']);
  });

  it('a failing home: the session moves to the other target of its group and stays (circuit open: home not even tried)', async () => {
    const probe = affinity({});
    const home = (await probe.send('s')).served;
    const other = home === 'a' ? 'b' : 'a';
    const { calls, send } = affinity({ [home]: [500] });
    expect(await send('s')).toEqual({ served: other, home });
    expect(calls).toEqual([home, other]);
    for (let i = 0; i < 5; i++) expect(await send('s')).toEqual({ served: other, home });
    expect(calls.slice(2)).toEqual(Array(5).fill(other));
  });

  it('without a session key: random order, and no home (a multi-target group)', async () => {
    const { send } = affinity({});
    const served = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const r = await send();
      served.add(r.served);
      expect(r.home).toBeUndefined();
    }
    expect([...served].sort()).toEqual(['a', 'b']);
  });

  it('a 400 invalid_encrypted_content is sent again once to the same target without the sealed items; never a second time', async () => {
    const refusal = {
      status: 400,
      body: '{"error":{"message":"The encrypted content gAAA...DQ== could not be verified.","type":"invalid_request_error","param":null,"code":"invalid_encrypted_content"}}',
    };
    const { client, calls } = upstream({ a: [refusal, 200, refusal, refusal] });
    const dispatcher = new UpstreamDispatcher(client, metrics, new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000 }), new MemoryTargetBackoff(), CFG);
    const a = provider('a');
    const route: ResolvedRoute = { id: 'r', pattern: 'm', settings: { maxAttempts: 1 }, groups: [[{ provider: a, model: 'up', weight: 1 }]] };
    const sent: boolean[] = [];
    const send = () => {
      const ctx = new CallContext('req', {} as Principal, 'responses', 'm');
      ctx.route = route;
      // What the Responses plan does: with ctx.unseal, the sealed items are left out (here: counted).
      const bodyFor = () => {
        sent.push(ctx.unseal);
        ctx.sealedDropped = ctx.unseal ? 2 : 0;
        return {};
      };
      return { ctx, result: dispatcher.send(ctx, 'responses', true, bodyFor) };
    };
    const ok = send();
    expect((await ok.result).target.provider.name).toBe('a');
    expect(ok.ctx.attempts).toBe(2);
    expect(sent).toEqual([false, true]);
    const refused = send();
    await expect(refused.result).rejects.toMatchObject({ status: 400 });
    expect(calls).toEqual(['a', 'a', 'a', 'a']);
  });
});
