/** One sample of the Prometheus text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  samples: Sample[];
  /** Metric family names that have a `# HELP` line. */
  families: Set<string>;
  /** Family name → `# TYPE`. */
  types: Map<string, string>;
  text: string;
}

function unescape(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** Parses the text format (what prom-client writes): enough to compare counters before and after. */
export function parseExposition(text: string): Scrape {
  const samples: Sample[] = [];
  const families = new Set<string>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (line.startsWith('# HELP ')) {
      families.add(line.split(' ')[2]);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l: RegExpExecArray | null;
      while ((l = re.exec(m[2]))) labels[l[1]] = unescape(l[2]);
    }
    const raw = m[3];
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    samples.push({ name: m[1], labels, value });
  }
  return { samples, families, types, text };
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return parseExposition(await res.text());
}

/** Sum of the samples named `name` whose labels include `labels` (0 when none). */
export function metricValue(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const x of s.samples) {
    if (x.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => x.labels[k] === v)) sum += x.value;
  }
  return sum;
}

/** Whether any sample named `name` has (at least) these labels. */
export function hasSeries(s: Scrape, name: string, labels: Record<string, string> = {}): boolean {
  return s.samples.some((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
}

/** How much a counter (or histogram `_count`/`_sum`) moved between two scrapes. */
export function delta(before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}): number {
  return metricValue(after, name, labels) - metricValue(before, name, labels);
}

/**
 * The routes both metrics suites drive traffic through: `gpt-4o-mini` retried once, `ha-model` failing over
 * from the primary provider to `backup`, and `flaky-model` on its own provider with no retry.
 */
export async function addFailoverRoutes(
  stack: { api(method: string, path: string, body?: unknown): Promise<{ body: any }> },
  primaryProviderId: string,
  upstreams: { backupUrl: string; flakyUrl: string },
): Promise<void> {
  const routes = (await stack.api('GET', '/admin/routes')).body as { id: string; modelPattern: string }[];
  const mini = routes.find((r) => r.modelPattern === 'gpt-4o-mini')!;
  await stack.api('PATCH', `/admin/routes/${mini.id}`, { settings: { maxAttempts: 2, backoffMs: 1 } });
  const b = await stack.api('POST', '/admin/providers', { name: 'backup', kind: 'openai', baseUrl: upstreams.backupUrl });
  await stack.api('POST', '/admin/routes', {
    modelPattern: 'ha-model',
    targets: [
      { providerId: primaryProviderId, model: 'gpt-4o-mini', priority: 0 },
      { providerId: b.body.id, model: 'gpt-4o-mini', priority: 1 },
    ],
    settings: { maxAttempts: 1 },
  });
  const f = await stack.api('POST', '/admin/providers', { name: 'flaky', kind: 'openai', baseUrl: upstreams.flakyUrl });
  await stack.api('POST', '/admin/routes', {
    modelPattern: 'flaky-model',
    targets: [{ providerId: f.body.id, model: 'gpt-4o-mini' }],
    settings: { maxAttempts: 1 },
  });
}
