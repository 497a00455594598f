import { randomBytes } from 'node:crypto';
import { SecretBox } from '@gw/common';
import { CompactionSeal, GATEWAY_COMPACTION_PREFIX } from './compaction.seal';

describe('CompactionSeal', () => {
  const box = new SecretBox(randomBytes(32));
  const seal = new CompactionSeal(box);

  it('seals a summary for a tenant and opens it for that tenant only', () => {
    const content = seal.seal('the summary', 'tenant-a', 'prov-1');
    expect(content.startsWith(GATEWAY_COMPACTION_PREFIX)).toBe(true);
    expect(content).not.toContain('summary');
    expect(seal.open(content, 'tenant-a')).toEqual({ summary: 'the summary', providerId: 'prov-1' });
    expect(seal.open(content, 'tenant-b')).toBeUndefined();
  });

  it('refuses an altered item, one sealed under another master key, and a provider-made one', () => {
    const content = seal.seal('the summary', 't', 'p');
    const flipped = content.slice(0, -2) + (content.at(-2) === 'A' ? 'B' : 'A') + content.at(-1);
    expect(seal.open(flipped, 't')).toBeUndefined();
    expect(new CompactionSeal(new SecretBox(randomBytes(32))).open(content, 't')).toBeUndefined();
    expect(seal.open('gAAAAABopaque-openai-blob', 't')).toBeUndefined();
    expect(seal.open(`${GATEWAY_COMPACTION_PREFIX}short`, 't')).toBeUndefined();
    expect(CompactionSeal.isGatewayMade('gAAAAAB')).toBe(false);
    expect(CompactionSeal.isGatewayMade(content)).toBe(true);
  });

  it('derives its key: the same master key opens what another process sealed', () => {
    const key = randomBytes(32);
    const content = new CompactionSeal(new SecretBox(key)).seal('s', 't', 'p');
    expect(new CompactionSeal(new SecretBox(Buffer.from(key))).open(content, 't')?.summary).toBe('s');
    expect(box.derive('x')).not.toEqual(box.derive('y'));
  });
});
