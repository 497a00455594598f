import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { RouteEntity } from '@gw/db';
import { IsNull, Repository } from 'typeorm';

/** Scope first: `null` is the global scope, otherwise a tenant id. */
@Injectable()
export class RouteRepository {
  constructor(@InjectRepository(RouteEntity) private readonly repo: Repository<RouteEntity>) {}

  list(tenantId: string | null): Promise<RouteEntity[]> {
    return this.repo.find({ where: { tenantId: tenantId ?? IsNull() }, order: { createdAt: 'ASC' } });
  }
  /** Every scope, global and every tenant's: root callers and the gateway's route table. */
  listAll(): Promise<RouteEntity[]> {
    return this.repo.find({ order: { createdAt: 'ASC' } });
  }
  get(tenantId: string | null, id: string): Promise<RouteEntity | null> {
    return this.repo.findOne({ where: { id, tenantId: tenantId ?? IsNull() } });
  }
  /** Root callers only: the one read that ignores the scope. */
  getAnyScope(id: string): Promise<RouteEntity | null> {
    return this.repo.findOne({ where: { id } });
  }
  findByPattern(tenantId: string | null, modelPattern: string): Promise<RouteEntity | null> {
    return this.repo.findOne({ where: { modelPattern, tenantId: tenantId ?? IsNull() } });
  }
  save(tenantId: string | null, data: Partial<RouteEntity>): Promise<RouteEntity> {
    return this.repo.save(this.repo.create({ ...data, tenantId }));
  }
  async update(tenantId: string | null, id: string, patch: Partial<RouteEntity>): Promise<RouteEntity | null> {
    // An empty patch (PATCH {}) changes nothing; TypeORM refuses an UPDATE without values.
    if (Object.keys(patch).length) await this.repo.update({ id, tenantId: tenantId ?? IsNull() }, patch as Parameters<Repository<RouteEntity>['update']>[1]);
    return this.get(tenantId, id);
  }
  async delete(tenantId: string | null, id: string): Promise<boolean> {
    return ((await this.repo.delete({ id, tenantId: tenantId ?? IsNull() })).affected ?? 0) > 0;
  }
}
