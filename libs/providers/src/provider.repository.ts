import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ProviderEntity } from '@gw/db';
import { Repository } from 'typeorm';

/** Providers are instance-wide (root admin only), hence no tenant id here. */
@Injectable()
export class ProviderRepository {
  constructor(@InjectRepository(ProviderEntity) private readonly repo: Repository<ProviderEntity>) {}

  list(): Promise<ProviderEntity[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }
  get(id: string): Promise<ProviderEntity | null> {
    return this.repo.findOne({ where: { id } });
  }
  findByName(name: string): Promise<ProviderEntity | null> {
    return this.repo.findOne({ where: { name } });
  }
  save(data: Partial<ProviderEntity>): Promise<ProviderEntity> {
    return this.repo.save(this.repo.create(data));
  }
  async update(id: string, patch: Partial<ProviderEntity>): Promise<ProviderEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id }, patch as Parameters<Repository<ProviderEntity>['update']>[1]);
    return this.get(id);
  }
  async delete(id: string): Promise<boolean> {
    return ((await this.repo.delete({ id })).affected ?? 0) > 0;
  }

  /**
   * Master-key rotation, inside its transaction: every sealed credential, locked until the transaction ends
   * (a provider saved meanwhile waits rather than being sealed with the old key after the rotation read it).
   */
  lockSealedCredentials(): Promise<{ id: string; name: string; credentialEnc: string }[]> {
    return this.repo.query(`SELECT id, name, credential_enc AS "credentialEnc" FROM providers WHERE credential_enc IS NOT NULL ORDER BY name FOR UPDATE`);
  }
  async setSealedCredential(id: string, credentialEnc: string): Promise<void> {
    await this.repo.query(`UPDATE providers SET credential_enc = $1, updated_at = now() WHERE id = $2`, [credentialEnc, id]);
  }
}
