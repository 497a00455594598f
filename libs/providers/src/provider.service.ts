import { Inject, Injectable } from '@nestjs/common';
import { Errors, SecretBox } from '@gw/common';
import { ChangeFeed, ProviderEntity, ProviderKind, ProviderSettings } from '@gw/db';
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

/** What the API returns: the credential is replaced by whether one is set. */
export type ProviderView = Omit<ProviderEntity, 'credentialEnc'> & { hasCredential: boolean };

export function toProviderView(p: ProviderEntity): ProviderView {
  const { credentialEnc, ...rest } = p;
  return { ...rest, hasCredential: !!credentialEnc };
}

@Injectable()
export class ProviderService {
  constructor(
    private readonly providers: ProviderRepository,
    private readonly changes: ChangeFeed,
    @Inject(SECRET_BOX) private readonly box: SecretBox,
  ) {}

  async list(): Promise<ProviderView[]> {
    return (await this.providers.list()).map(toProviderView);
  }

  async get(id: string): Promise<ProviderView> {
    return toProviderView(await this.getEntity(id));
  }

  async create(input: ProviderInput): Promise<ProviderView> {
    if (await this.providers.findByName(input.name)) throw Errors.conflict(`A provider named "${input.name}" already exists.`, 'name');
    const p = await this.providers.save({
      name: input.name,
      kind: input.kind,
      baseUrl: (input.baseUrl ?? adapterFor(input.kind).defaultBaseUrl).replace(/\/+$/, ''),
      credentialEnc: input.credential ? this.box.seal(input.credential) : null,
      settings: input.settings ?? {},
      enabled: input.enabled ?? true,
    });
    await this.changes.bump();
    return toProviderView(p);
  }

  async update(id: string, patch: Partial<ProviderInput>): Promise<ProviderView> {
    const current = await this.getEntity(id);
    if (patch.name && patch.name !== current.name && (await this.providers.findByName(patch.name))) {
      throw Errors.conflict(`A provider named "${patch.name}" already exists.`, 'name');
    }
    const next: Partial<ProviderEntity> = {};
    if (patch.name !== undefined) next.name = patch.name;
    if (patch.kind !== undefined) next.kind = patch.kind;
    if (patch.baseUrl !== undefined) next.baseUrl = patch.baseUrl.replace(/\/+$/, '');
    if (patch.credential !== undefined) next.credentialEnc = patch.credential ? this.box.seal(patch.credential) : null;
    if (patch.settings !== undefined) next.settings = { ...current.settings, ...patch.settings };
    if (patch.enabled !== undefined) next.enabled = patch.enabled;
    const p = (await this.providers.update(id, next))!;
    await this.changes.bump();
    return toProviderView(p);
  }

  /** Create or update by name: used by the zero-config bootstrap from environment variables. */
  async upsertByName(input: ProviderInput): Promise<ProviderView> {
    const existing = await this.providers.findByName(input.name);
    return existing ? this.update(existing.id, input) : this.create(input);
  }

  async delete(id: string): Promise<void> {
    if (!(await this.providers.delete(id))) throw Errors.notFound(`No provider with id ${id}.`, 'provider_not_found');
    await this.changes.bump();
  }

  /** Re-seals every credential with a new master key (see `npm run rotate-master-key`). */
  async reseal(from: SecretBox, to: SecretBox): Promise<number> {
    let n = 0;
    for (const p of await this.providers.list()) {
      if (!p.credentialEnc) continue;
      await this.providers.update(p.id, { credentialEnc: to.seal(from.open(p.credentialEnc)) });
      n++;
    }
    await this.changes.bump();
    return n;
  }

  private async getEntity(id: string): Promise<ProviderEntity> {
    const p = await this.providers.get(id);
    if (!p) throw Errors.notFound(`No provider with id ${id}.`, 'provider_not_found');
    return p;
  }
}
