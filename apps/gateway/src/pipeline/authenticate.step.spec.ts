import { AuthDecision, GatewayAuthFailureLimiter, GatewayAuthGate, MemoryAuthBlockTable, attachAuthDecision } from '@gw/auth';
import { Errors, OpenAIError } from '@gw/common';
import type { LedgerWriter, UsageRow } from '@gw/metering';
import type { Request } from 'express';
import { AuthenticateStep } from './authenticate.step';
import { principal } from './pipeline.spec-helpers';

/** The step over a real memory block table (3 failures a minute), a ledger that keeps its rows, and the gate's decision. */
function setup() {
  const failures = new GatewayAuthFailureLimiter(new MemoryAuthBlockTable({ maxFailures: 3, windowMs: 60_000, blockMs: 60_000 }));
  const rows: UsageRow[] = [];
  const ledger = { record: (r: UsageRow) => rows.push(r) } as unknown as LedgerWriter;
  let decided = 0;
  const gate = { decide: () => (decided++, { ok: false, error: Errors.missingKey(), guess: false }) } as unknown as GatewayAuthGate;
  return { step: new AuthenticateStep(gate, failures, ledger), rows, failures, decided: () => decided };
}
const req = (decision?: AuthDecision, body?: unknown) => {
  const r = { headers: {}, socket: { remoteAddress: '192.0.2.7' }, body } as unknown as Request;
  if (decision) attachAuthDecision(r, decision);
  return r;
};
async function refusal(p: Promise<unknown>): Promise<[number, string | null]> {
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as OpenAIError;
  return [e.getStatus(), e.body.error.code];
}

describe('AuthenticateStep', () => {
  it('takes the principal from the gate’s decision: no second lookup', async () => {
    const { step, decided } = setup();
    const p = principal();
    await expect(step.principal(req({ ok: true, principal: p }), 'chat')).resolves.toBe(p);
    expect(decided()).toBe(0);
  });

  it('a refused guess spends a place of its address bucket: the 4th within the window is 429, whatever its key', async () => {
    const { step } = setup();
    const guess = (): AuthDecision => ({ ok: false, error: Errors.invalidKey(), guess: true });
    for (let i = 0; i < 3; i++) expect(await refusal(step.principal(req(guess()), 'chat'))).toEqual([401, 'invalid_api_key']);
    expect(await refusal(step.principal(req(guess()), 'chat'))).toEqual([429, 'too_many_auth_failures']);
  });

  it('no credential is no guess: never blocks', async () => {
    const { step } = setup();
    for (let i = 0; i < 5; i++)
      expect(await refusal(step.principal(req({ ok: false, error: Errors.missingKey(), guess: false }), 'chat'))).toEqual([401, 'missing_api_key']);
  });

  it('a recognised key refused (ip_not_allowed) gets one ledger row on a metered endpoint, none elsewhere', async () => {
    const { step, rows } = setup();
    const decision: AuthDecision = { ok: false, error: Errors.forbidden('not from here', 'ip_not_allowed'), guess: false, principal: principal() };
    expect(await refusal(step.principal(req(decision, { model: 'gpt-x', stream: true }), 'responses'))).toEqual([403, 'ip_not_allowed']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      tenantId: 't1',
      keyId: 'k1',
      endpoint: 'responses',
      status: 403,
      errorCode: 'ip_not_allowed',
      requestedModel: 'gpt-x',
      streamed: true,
      costUsd: 0,
      latencyMs: 0,
      attempts: 0,
    });
    await refusal(step.principal(req(decision)));
    expect(rows).toHaveLength(1);
  });

  it('a request the gate did not see is decided here, the same way', async () => {
    const { step, decided } = setup();
    expect(await refusal(step.principal(req()))).toEqual([401, 'missing_api_key']);
    expect(decided()).toBe(1);
  });
});
