import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { CreateKeyDto, CreateRouteDto, UpdateProviderDto, UpdateTenantDto } from './admin.dto';
import { nullWhereNotNullable } from './nullable.guard';

describe('nullWhereNotNullable', () => {
  it('finds a null where the OpenAPI document does not allow one, with its path', () => {
    expect(nullWhereNotNullable(plainToInstance(UpdateTenantDto, { name: null }))).toBe('name');
    expect(nullWhereNotNullable(plainToInstance(UpdateProviderDto, { settings: { responsesApi: null } }))).toBe('settings.responsesApi');
    expect(nullWhereNotNullable(plainToInstance(CreateRouteDto, { modelPattern: 'm', targets: [{ providerId: 'x', weight: null }] }))).toBe(
      'targets[0].weight',
    );
  });

  it('lets null through where it is documented (clearing a limit, a key restriction, a target model)', () => {
    expect(nullWhereNotNullable(plainToInstance(UpdateTenantDto, { limits: { requestsPerMinute: null, unknownModelPricing: null } }))).toBeNull();
    expect(nullWhereNotNullable(plainToInstance(CreateKeyDto, { name: 'k', allowedModels: null, allowedIps: null, expiresAt: null }))).toBeNull();
    expect(
      nullWhereNotNullable(plainToInstance(CreateRouteDto, { modelPattern: 'm', tenantId: null, targets: [{ providerId: 'x', model: null }] })),
    ).toBeNull();
  });

  it('does not look inside free-form objects', () => {
    expect(nullWhereNotNullable(plainToInstance(UpdateProviderDto, { settings: { headers: { a: null }, providerPreferences: { b: null } } }))).toBeNull();
  });
});
