/** Model patterns: `*` matches any run of characters (including `/`), `?` one character. */
export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** How specific a pattern is: exact names beat globs, longer literal parts beat shorter ones. */
export function patternSpecificity(pattern: string): number {
  if (!isGlob(pattern)) return 1_000_000;
  return pattern.replace(/[*?]/g, '').length;
}

export function matchesAny(patterns: readonly string[] | null | undefined, name: string): boolean {
  if (!patterns || patterns.length === 0) return true;
  return patterns.some((p) => (isGlob(p) ? globToRegExp(p).test(name) : p === name));
}
