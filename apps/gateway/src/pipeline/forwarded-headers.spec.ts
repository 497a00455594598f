import type { Request } from 'express';
import { forwardedHeadersOf, forwardsClientHeaders } from './forwarded-headers';

const req = (headers: Record<string, string | string[]>) => ({ headers }) as unknown as Request;

describe('forwardedHeadersOf', () => {
  it("keeps only the allow-listed headers (Codex's beta features), never credentials", () => {
    expect(forwardedHeadersOf(req({ 'x-codex-beta-features': 'remote_compaction_v2', authorization: 'Bearer sk-tenant', cookie: 'c' }))).toEqual({ 'x-codex-beta-features': 'remote_compaction_v2' });
    expect(forwardedHeadersOf(req({ authorization: 'Bearer x' }))).toBeUndefined();
    expect(forwardedHeadersOf(req({ 'x-codex-beta-features': 'x'.repeat(2000) }))).toBeUndefined();
  });

  it('only for the Responses API operations', () => {
    expect(forwardsClientHeaders('responses')).toBe(true);
    expect(forwardsClientHeaders('responses_compact')).toBe(true);
    expect(forwardsClientHeaders('chat')).toBe(false);
    expect(forwardsClientHeaders('embeddings')).toBe(false);
  });
});
