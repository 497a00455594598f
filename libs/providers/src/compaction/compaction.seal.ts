import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SecretBox } from '@gw/common';

/** What every `encrypted_content` the gateway made starts with: how it tells its own items from a provider's. */
export const GATEWAY_COMPACTION_PREFIX = 'gwc1.';

/** What a gateway-made compaction item holds once opened. */
export interface OpenedCompaction {
  summary: string;
  /** The provider whose model wrote the summary (informational: the summary is plain text, any target may read it). */
  providerId: string;
}

/**
 * Seals the summaries the gateway writes for chat-only providers into the `encrypted_content` of a Responses
 * `compaction` item, so Codex stores and resends them like OpenAI's own. AES-256-GCM under a key derived from the
 * master key (never the master key itself), with the tenant as associated data: an item is readable only by the
 * gateway, and only for the tenant it was made for. `gwc1.<base64url(iv | tag | ciphertext)>`.
 */
export class CompactionSeal {
  private readonly key: Buffer;

  constructor(box: SecretBox) {
    this.key = box.derive('gateway compaction item v1');
  }

  static isGatewayMade(content: unknown): content is string {
    return typeof content === 'string' && content.startsWith(GATEWAY_COMPACTION_PREFIX);
  }

  seal(summary: string, tenantId: string, providerId: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(tenantId, 'utf8'));
    const ct = Buffer.concat([c.update(JSON.stringify({ s: summary, p: providerId }), 'utf8'), c.final()]);
    return GATEWAY_COMPACTION_PREFIX + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64url');
  }

  /** The summary, or undefined when the item was not made by this gateway for this tenant (or the master key changed). */
  open(content: string, tenantId: string): OpenedCompaction | undefined {
    if (!CompactionSeal.isGatewayMade(content)) return undefined;
    try {
      const raw = Buffer.from(content.slice(GATEWAY_COMPACTION_PREFIX.length), 'base64url');
      if (raw.length < 29) return undefined;
      const d = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
      d.setAAD(Buffer.from(tenantId, 'utf8'));
      d.setAuthTag(raw.subarray(12, 28));
      const plain = JSON.parse(Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8')) as { s?: unknown; p?: unknown };
      if (typeof plain.s !== 'string') return undefined;
      return { summary: plain.s, providerId: typeof plain.p === 'string' ? plain.p : '' };
    } catch {
      return undefined;
    }
  }
}
