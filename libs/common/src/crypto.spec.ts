import { randomBytes } from 'node:crypto';
import { SecretBox, newSecret, sha256Hex } from './crypto';
import { globToRegExp, matchesAny, patternSpecificity } from './glob';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));
  it('round-trips and never contains the plaintext', () => {
    const sealed = box.seal('sk-provider-secret-123');
    expect(sealed).not.toContain('sk-provider-secret-123');
    expect(box.open(sealed)).toBe('sk-provider-secret-123');
  });
  it('uses a fresh IV each time', () => {
    expect(box.seal('x')).not.toBe(box.seal('x'));
  });
  it('refuses a value sealed with another key, and a tampered one', () => {
    const other = new SecretBox(randomBytes(32));
    expect(() => other.open(box.seal('x'))).toThrow(/master key/);
    const parts = box.seal('hello').split(':');
    parts[4] = Buffer.from('jello').toString('base64url');
    expect(() => box.open(parts.join(':'))).toThrow();
  });
});

describe('secrets and globs', () => {
  it('makes prefixed, distinct secrets', () => {
    const a = newSecret('sk-gw-');
    expect(a.startsWith('sk-gw-')).toBe(true);
    expect(a).not.toBe(newSecret('sk-gw-'));
    expect(sha256Hex(a)).toHaveLength(64);
  });
  it('matches model globs', () => {
    expect(globToRegExp('gpt-oss*').test('gpt-oss:20b')).toBe(true);
    expect(globToRegExp('*/*').test('anthropic/claude-3.5-sonnet')).toBe(true);
    expect(globToRegExp('*/*').test('gpt-4o')).toBe(false);
    expect(matchesAny(['gpt-4o*'], 'gpt-4o-mini')).toBe(true);
    expect(matchesAny(['gpt-4o'], 'gpt-4o-mini')).toBe(false);
    expect(matchesAny(null, 'anything')).toBe(true);
    expect(patternSpecificity('gpt-4o')).toBeGreaterThan(patternSpecificity('gpt-*'));
    expect(patternSpecificity('gpt-*')).toBeGreaterThan(patternSpecificity('*'));
  });
});
