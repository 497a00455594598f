/** Where @nestjs/swagger keeps each DTO property's documented options (`nullable` among them). */
const API_MODEL_PROPERTIES = 'swagger/apiModelProperties';

/**
 * The first `null` in a field the API does not document as nullable, with its path. `@IsOptional()` lets null
 * through class-validator as it does undefined, and a null name, kind or target list reached the services
 * (TypeError) and the database (NOT NULL): 500s. The OpenAPI document is the contract: null only where it says so.
 */
export function nullWhereNotNullable(value: unknown, path = ''): string | null {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nullWhereNotNullable(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (!value || typeof value !== 'object') return null;
  const proto = Object.getPrototypeOf(value) as object | null;
  // Only DTO instances are checked: free-form objects (headers, providerPreferences) may hold anything.
  if (!proto || proto === Object.prototype) return null;
  for (const [k, v] of Object.entries(value)) {
    const param = path ? `${path}.${k}` : k;
    const doc = Reflect.getMetadata(API_MODEL_PROPERTIES, proto, k) as { nullable?: boolean } | undefined;
    if (v === null && doc && doc.nullable !== true) return param;
    const found = nullWhereNotNullable(v, param);
    if (found) return found;
  }
  return null;
}
