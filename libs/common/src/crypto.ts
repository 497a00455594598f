import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function safeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/** URL-safe random secret with a readable prefix, e.g. `sk-gw-…`. */
export function newSecret(prefix: string, bytes = 24): string {
  return prefix + randomBytes(bytes).toString('base64url');
}

/**
 * AES-256-GCM envelope for provider credentials: `v1:<key id>:<iv>:<tag>:<ciphertext>` (base64url parts).
 * The key id lets a rotation tell which master key sealed a value.
 */
export class SecretBox {
  readonly keyId: string;
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('master key must be 32 bytes');
    this.keyId = sha256Hex(key.toString('hex')).slice(0, 8);
  }

  /** A 32-byte key for another purpose (HKDF-SHA256 with `purpose` as info): never the master key itself. */
  derive(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), purpose, 32));
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', this.keyId, iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join(':');
  }

  open(sealed: string): string {
    const [v, keyId, iv, tag, ct] = sealed.split(':');
    if (v !== 'v1' || !ct) throw new Error('not a sealed secret');
    if (keyId !== this.keyId) throw new Error(`secret was sealed with master key ${keyId}, not ${this.keyId}`);
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
