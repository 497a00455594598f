/** A JSON object (not null, not an array): the shape check behind every parse of client or upstream JSON. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
