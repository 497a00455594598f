import { Inject, Injectable, Optional } from '@nestjs/common';
import { Errors, OpenAIError, SecretBox } from '@gw/common';
import { ChangeFeed, ProviderEntity, ProviderKind, ProviderSettings } from '@gw/db';
import { EGRESS_POLICY, EgressChecker, EgressPolicy, hostPortOf } from './egress.policy';
import { adapterFor } from './provider.registry';
import { ProviderRepository } from './provider.repository';

export const SECRET_BOX = Symbol('SECRET_BOX');

export interface ProviderInput {
  name: string;
  kind: ProviderKind;
  baseUrl?: string;
  /** Write-only: sealed before it reaches the database, never returned. */
  credential?: string | null;
  settings?: ProviderSettings;
  enabled?: boolean;
}

/** What the API returns: the credential is replaced by whether one is set; credential-like headers are redacted. */
export type ProviderView = Omit<ProviderEntity, 'credentialEnc'> & { hasCredential: boolean };

/** What a redacted header value reads as. Sent back unchanged in a PATCH, it keeps the stored value. */
export const REDACTED = '[redacted]';
/**
 * Header names whose values are credentials: anything naming a key, token, secret, password, credential,
 * cookie, signature or authorization (`Authorization`, `X-Api-Key`, `X-Goog-Api-Key`, `X-Auth-Token`…).
 * The audit log applies the same rule (@gw/auth `redactForAudit`).
 */
const CREDENTIAL_HEADER = /authorization|cookie|token|secret|passw|credential|key|signature/i;

export function isCredentialHeader(name: string): boolean {
  return CREDENTIAL_HEADER.test(name);
}

/** Extra headers as the API shows them: credential-like values write-only, like `credential`. */
export function redactProviderHeaders(headers: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!headers || typeof headers !== 'object') return headers;
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, isCredentialHeader(k) ? REDACTED : v]));
}

export function toProviderView(p: ProviderEntity): ProviderView {
  const { credentialEnc, ...rest } = p;
  const settings = rest.settings?.headers ? { ...rest.settings, headers: redactProviderHeaders(rest.settings.headers) } : rest.settings;
  return { ...rest, settings, hasCredential: !!credentialEnc };
}

/**
 * A provider's baseUrl against the egress policy, as written (an address literal, or a name: names are judged
 * again on what they resolve to, at connect time). Returns the refusal, for the admin API (400) and the
 * environment bootstrap (a logged refusal).
 */
export function egressRefusal(policy: EgressChecker, baseUrl: string): OpenAIError | undefined {
  let protocol: string;
  try {
    protocol = new URL(baseUrl).protocol;
  } catch {
    return Errors.badRequest(`baseUrl "${baseUrl}" is not a valid URL.`, 'baseUrl');
  }
  const hp = hostPortOf(baseUrl);
  if ((protocol !== 'http:' && protocol !== 'https:') || !hp) return Errors.badRequest('baseUrl must be an http(s) URL with a host.', 'baseUrl');
  const v = policy.check(hp.host, hp.port);
  if (v.allowed) return undefined;
  const where = hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
  return Errors.badRequest(
    `baseUrl ${where} is not allowed by the gateway's egress policy (${v.rule}). See EGRESS_ALLOW / EGRESS_DENY in docs/access-control.md.`,
    'baseUrl',
    'egress_denied',
  );
}

/** How `update` treats a new baseUrl that would carry the stored credential to another host. */
export type BaseUrlChange = 'refuse' | 'clear';

@Injectable()
export class ProviderService {
  constructor(
    private readonly providers: ProviderRepository,
    private readonly changes: ChangeFeed,
    @Inject(SECRET_BOX) private readonly box: SecretBox,
    @Optional() @Inject(EGRESS_POLICY) policy?: EgressChecker,
  ) {
    this.policy = policy ?? new EgressPolicy();
  }

  private readonly policy: EgressChecker;

  async list(): Promise<ProviderView[]> {
    return (await this.providers.list()).map(toProviderView);
  }

  async get(id: string): Promise<ProviderView> {
    return toProviderView(await this.getEntity(id));
  }

  async create(input: ProviderInput): Promise<ProviderView> {
    const baseUrl = (input.baseUrl ?? adapterFor(input.kind).defaultBaseUrl).replace(/\/+$/, '');
    this.checkEgress(baseUrl);
    if (await this.providers.findByName(input.name)) throw Errors.conflict(`A provider named "${input.name}" already exists.`, 'name');
    const p = await this.providers.save({
      name: input.name,
      kind: input.kind,
      baseUrl,
      credentialEnc: input.credential ? this.box.seal(input.credential) : null,
      settings: input.settings ?? {},
      enabled: input.enabled ?? true,
    });
    await this.changes.bump();
    return toProviderView(p);
  }

  /**
   * Credentials (the sealed `credential` and credential-like `settings.headers`) are bound to the host they
   * were given for. A new `baseUrl` without them in the same request would send them to the new host:
   * the admin API (`onBaseUrlChange: 'refuse'`) answers 400 `credential_required` (send the credential
   * again, or `null` to drop it); the environment bootstrap (`'clear'`) drops what it did not resend.
   */
  async update(id: string, patch: Partial<ProviderInput>, opts: { onBaseUrlChange?: BaseUrlChange } = {}): Promise<ProviderView> {
    const current = await this.getEntity(id);
    if (patch.name && patch.name !== current.name && (await this.providers.findByName(patch.name))) {
      throw Errors.conflict(`A provider named "${patch.name}" already exists.`, 'name');
    }
    const next: Partial<ProviderEntity> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.kind !== undefined) next.kind = patch.kind;
    if (patch.baseUrl !== undefined) {
      next.baseUrl = patch.baseUrl.replace(/\/+$/, '');
      this.checkEgress(next.baseUrl);
    }
    if (patch.credential !== undefined) next.credentialEnc = patch.credential ? this.box.seal(patch.credential) : null;
    if (patch.settings !== undefined) {
      next.settings = { ...current.settings, ...patch.settings };
      if (patch.settings.headers) next.settings.headers = keepRedacted(patch.settings.headers, current.settings?.headers);
    }
    if (patch.enabled !== undefined) next.enabled = patch.enabled;
    if (next.baseUrl !== undefined && next.baseUrl !== current.baseUrl) this.unbindCredentials(current, patch, next, opts.onBaseUrlChange ?? 'refuse');
    const p = (await this.providers.update(id, next))!;
    await this.changes.bump();
    return toProviderView(p);
  }

  /** Create or update by name: used by the zero-config bootstrap from environment variables. */
  async upsertByName(input: ProviderInput): Promise<ProviderView> {
    const existing = await this.providers.findByName(input.name);
    return existing ? this.update(existing.id, input, { onBaseUrlChange: 'clear' }) : this.create(input);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.providers.delete(id))) throw Errors.notFound(`No provider with id ${id}.`, 'provider_not_found');
    await this.changes.bump();
  }

  private checkEgress(baseUrl: string): void {
    const refused = egressRefusal(this.policy, baseUrl);
    if (refused) throw refused;
  }

  private unbindCredentials(current: ProviderEntity, patch: Partial<ProviderInput>, next: Partial<ProviderEntity>, mode: BaseUrlChange): void {
    const missing: string[] = [];
    if (current.credentialEnc && patch.credential === undefined) {
      if (mode === 'clear') next.credentialEnc = null;
      else missing.push('credential');
    }
    const headers = (next.settings ?? current.settings)?.headers ?? {};
    const resent = (h: string) => {
      const v = patch.settings?.headers?.[h];
      return v !== undefined && v !== REDACTED;
    };
    // Credential-like headers stored before this request and not given again in it.
    const kept = Object.keys(headers).filter((h) => isCredentialHeader(h) && !resent(h) && current.settings?.headers?.[h] !== undefined);
    if (kept.length) {
      if (mode === 'clear')
        next.settings = { ...(next.settings ?? current.settings), headers: Object.fromEntries(Object.entries(headers).filter(([h]) => !kept.includes(h))) };
      else missing.push(`settings.headers (${kept.join(', ')})`);
    }
    if (missing.length) {
      throw Errors.badRequest(
        `Changing baseUrl would send the stored ${missing.join(' and ')} to ${next.baseUrl}: send ${missing.length > 1 ? 'them' : 'it'} again in the same request (credential: null drops it).`,
        missing[0].startsWith('credential') ? 'credential' : 'settings.headers',
        'credential_required',
      );
    }
  }

  private async getEntity(id: string): Promise<ProviderEntity> {
    const p = await this.providers.get(id);
    if (!p) throw Errors.notFound(`No provider with id ${id}.`, 'provider_not_found');
    return p;
  }
}

/** `[redacted]` values sent back (a view PATCHed as read) keep the stored value of that header. */
function keepRedacted(headers: Record<string, string>, stored: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter(([k, v]) => v !== REDACTED || stored?.[k] !== undefined)
      .map(([k, v]) => [k, v === REDACTED ? stored![k] : v]),
  );
}
