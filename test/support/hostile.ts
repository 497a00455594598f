import * as net from 'node:net';

/**
 * Hostile inputs for the "never 500" suites (test/robustness.e2e-spec.ts, test/fuzz.e2e-spec.ts): one table,
 * so a value found to break something once is tried everywhere afterwards.
 */

/** Raw JSON texts a mutated body splices in after stringify, by placeholder `\u0000raw:<index>`. */
const RAW_TEXTS: string[] = [];

/** Deep nesting cannot be built as a value and stringified (JSON.stringify recurses): it is spliced in as text. */
export function rawJson(text: string): string {
  RAW_TEXTS.push(text);
  return `\u0000raw:${RAW_TEXTS.length - 1}`;
}

export const DEEP = 10_000;
export const deepArrayText = (depth = DEEP): string => '['.repeat(depth) + ']'.repeat(depth);
export const deepObjectText = (depth = DEEP): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** What a single field is replaced by. Strings first (the most frequent finders), then types, numbers, nesting. */
export const HOSTILE_VALUES: readonly (readonly [string, unknown])[] = [
  ['NUL', 'a\u0000b'],
  ['only NUL', '\u0000'],
  ['control characters', 'x\u0001\u001b\u007fy'],
  ['CR LF', 'a\r\nb'],
  ['line separator', 'a\u2028b'],
  ['lone high surrogate', 'a\ud800b'],
  ['lone low surrogate', '\udfff'],
  ['overlong string (100 kB)', 'x'.repeat(100_000)],
  ['empty string', ''],
  ['path traversal', '../../etc/passwd'],
  ['percent NUL text', '%00'],
  ['a number', 123],
  ['true', true],
  ['null', null],
  ['an empty array', []],
  ['an array of strings', ['a', 'b']],
  ['an empty object', {}],
  ['an object', { a: 1 }],
  ['1e308', 1e308],
  ['-1', -1],
  ['-1e308', -1e308],
  ['"NaN"', 'NaN'],
  ['2**63', 2 ** 63],
  ['2**31', 2 ** 31],
  ['1.5', 1.5],
  ['deep array', rawJson(deepArrayText())],
  ['deep object', rawJson(deepObjectText())],
];

/** The values that found something at least once, for the sweeps that repeat a covered path (a second role, a stream). */
export const HOSTILE_CORE: readonly (readonly [string, unknown])[] = HOSTILE_VALUES.filter(([label]) =>
  [
    'NUL',
    'control characters',
    'line separator',
    'lone high surrogate',
    'overlong string (100 kB)',
    'path traversal',
    'empty string',
    'a number',
    'null',
    'an empty array',
    'an empty object',
    '1e308',
    '2**63',
    '2**31',
    'deep array',
  ].includes(label),
);

/** JSON text of `value` with raw placeholders spliced back in: `{"a":"\u0000raw:0"}` → `{"a":[[...]]}`. */
export function stringifyHostile(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000raw:(\d+)"/g, (_m, i: string) => RAW_TEXTS[Number(i)]);
}

type Path = (string | number)[];

/** Paths of every field of `example` (objects and array elements, to `maxDepth`), the containers included. */
export function fieldPaths(example: unknown, maxDepth = 3, prefix: Path = []): Path[] {
  if (prefix.length >= maxDepth || example === null || typeof example !== 'object') return [];
  const out: Path[] = [];
  const entries: [string | number, unknown][] = Array.isArray(example) ? example.slice(0, 1).map((v, i) => [i, v]) : Object.entries(example);
  for (const [k, v] of entries) {
    out.push([...prefix, k]);
    out.push(...fieldPaths(v, maxDepth, [...prefix, k]));
  }
  return out;
}

export function withField(example: unknown, path: Path, value: unknown): unknown {
  const copy = structuredClone(example) as any;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k];
  at[path[path.length - 1]] = value;
  return copy;
}

export const pathLabel = (path: Path): string => path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i ? `.${k}` : k)).join('');

/** Whole bodies that are wrong as a whole: not JSON, not an object, nested too deep, duplicate keys. */
export function hostileBodies(example: Record<string, unknown>): [string, string | Buffer][] {
  const first = Object.keys(example)[0];
  const valid = JSON.stringify(example);
  return [
    ['invalid JSON', '{"a":'],
    ['a bare word', 'nope'],
    ['an empty body', ''],
    ['JSON null', 'null'],
    ['a JSON array', '[1,2]'],
    ['a JSON string', '"x"'],
    ['a JSON number', '1e308'],
    ['a deep array body', deepArrayText()],
    ['a deep object body', deepObjectText()],
    ['a deep object body (100k)', deepObjectText(100_000)],
    ['a NUL byte in the JSON text', valid.replace('{', '{\u0000')],
    ['invalid UTF-8', Buffer.concat([Buffer.from(valid.slice(0, -1)), Buffer.from(',"z":"\xff\xfe\xc0"}', 'latin1')])],
    ['duplicate keys', first ? valid.replace('{', `{${JSON.stringify(first)}:{"x":1},`) : '{"a":1,"a":2}'],
    ['__proto__ key', valid.replace('{', '{"__proto__":{"polluted":true},')],
    ['constructor key', valid.replace('{', '{"constructor":{"prototype":{"polluted":true}},')],
  ];
}

/**
 * One HTTP/1.1 request written by hand on a socket, for header values that fetch and http.request refuse to
 * send (control characters, NUL, bytes above 0x7f). Answers the status code (0 when the server closed silently).
 */
export function rawRequest(url: string, method: string, headers: [string, string][], body = ''): Promise<{ status: number; text: string }> {
  // The path as written: URL() would resolve `..` segments (as fetch does) before they reach the server.
  const [, origin, rawPath] = /^(https?:\/\/[^/]+)(.*)$/.exec(url) ?? [];
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const payload = Buffer.from(body, 'utf8');
    const head =
      `${method} ${rawPath || '/'} HTTP/1.1\r\nhost: ${u.host}\r\nconnection: close\r\ncontent-length: ${payload.length}\r\n` +
      headers.map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      '\r\n';
    sock.setTimeout(10_000, () => sock.destroy(new Error(`raw request to ${url} timed out`)));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text });
    });
    sock.write(Buffer.concat([Buffer.from(head, 'latin1'), payload]));
  });
}

/** Runs `tasks` with at most `n` at once (in order of start), answering their results in order. */
export async function pooled<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]();
      }
    }),
  );
  return out;
}
