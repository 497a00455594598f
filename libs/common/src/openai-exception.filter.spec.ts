import { HttpException } from '@nestjs/common';
import { toOpenAIError } from './openai-exception.filter';

/** What TypeORM's QueryFailedError carries from the pg driver: the SQLSTATE as `code`, and `detail`. */
function pgError(code: string, message: string, detail?: string) {
  return Object.assign(new Error(message), { name: 'QueryFailedError', code, detail, driverError: { code, detail } });
}

describe('toOpenAIError', () => {
  it('a data exception (class 22: NUL byte, bad encoding) is a 400 invalid_value, not a 500', () => {
    for (const code of ['22021', '22P05', '22003']) {
      const e = toOpenAIError(pgError(code, 'invalid byte sequence for encoding "UTF8": 0x00', undefined));
      expect(e.getStatus()).toBe(400);
      expect(e.body.error.code).toBe('invalid_value');
    }
  });

  it('a not-null or check violation (23502, 23514) is a 400 invalid_value, not a 500', () => {
    for (const code of ['23502', '23514']) {
      const e = toOpenAIError(pgError(code, 'null value in column "name" of relation "tenants" violates not-null constraint'));
      expect(e.getStatus()).toBe(400);
      expect(e.body.error.code).toBe('invalid_value');
    }
  });

  it('a unique violation (23505) is a 409 conflict naming the field', () => {
    const e = toOpenAIError(
      pgError('23505', 'duplicate key value violates unique constraint "prices_model_pattern_key"', 'Key (model_pattern)=(gpt-4o) already exists.'),
    );
    expect(e.getStatus()).toBe(409);
    expect(e.body.error).toMatchObject({ code: 'conflict', param: 'modelPattern', type: 'invalid_request_error' });
    const multi = toOpenAIError(pgError('23505', 'duplicate key', 'Key (tenant_id, model_pattern)=(…, x) already exists.'));
    expect(multi.body.error.param).toBe('tenantId');
    expect(toOpenAIError(pgError('23505', 'duplicate key')).body.error).toMatchObject({ code: 'conflict', param: null });
  });

  it('a foreign-key violation (23503) is a 400 invalid_reference, or a 409 when the row is still referred to', () => {
    const insert = toOpenAIError(
      pgError('23503', 'insert or update on table "api_keys" violates foreign key constraint', 'Key (tenant_id)=(…) is not present in table "tenants".'),
    );
    expect(insert.getStatus()).toBe(400);
    expect(insert.body.error.code).toBe('invalid_reference');
    const del = toOpenAIError(
      pgError('23503', 'update or delete on table "tenants" violates foreign key constraint', 'Key (id)=(…) is still referenced from table "x".'),
    );
    expect(del.getStatus()).toBe(409);
  });

  it('other database errors stay internal errors (500), and HTTP exceptions keep their status', () => {
    expect(toOpenAIError(pgError('42P01', 'relation "x" does not exist')).getStatus()).toBe(500);
    expect(toOpenAIError(new HttpException('gone', 410)).getStatus()).toBe(410);
    expect(toOpenAIError(Object.assign(new SyntaxError('bad'), { type: 'entity.parse.failed' })).body.error.code).toBe('invalid_json');
  });
});
