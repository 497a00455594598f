import { OpenAIAdapter } from '../providers/openai/openai.adapter';
import type { ResolvedProvider } from '../provider.adapter';
import type { NormalisedUsage } from '../translate';
import { SseReader } from './sse.reader';
import type { SseByteObserver, SseObserver, StreamMeter } from './sse.observer';

/** A meter as the gateway's call context is one: plain fields. */
export function meter(): StreamMeter & { tier: unknown } {
  const m = {
    usage: { inputTokens: 0, outputTokens: 0, cachedTokens: 0, reasoningTokens: 0 } as NormalisedUsage,
    usageReported: false,
    status: 200,
    errorCode: null as string | null,
    tier: undefined as unknown,
    noteServiceTier(v: unknown) {
      m.tier = v;
    },
  };
  return m;
}

export const provider = (over: Partial<ResolvedProvider> = {}): ResolvedProvider => ({
  id: 'p1',
  name: 'local',
  kind: 'openai',
  baseUrl: 'http://x/v1',
  credential: 'sk-secret-credential-123',
  settings: {},
  enabled: true,
  adapter: new OpenAIAdapter(),
  responsesNative: true,
  ...over,
});

/** `data: {json}` events as an upstream writes them, split into byte chunks of `size` (events cross chunks). */
export function sseBytes(payloads: (object | string)[], size = 7): Buffer[] {
  const text = payloads.map((p) => `data: ${typeof p === 'string' ? p : JSON.stringify(p)}\n\n`).join('');
  const buf = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** Drives an observer the way the gateway's relay does; returns what the client got (end() may throw). */
export function drive(observer: SseObserver, chunks: Buffer[]): string {
  const reader = new SseReader();
  let out = observer.start();
  for (const c of chunks) out += observer.events(reader.push(c));
  out += observer.events(reader.end());
  return out + observer.end();
}

/** Drives an observer's byte path the way the gateway's relay does; returns what the client got, as bytes (end() may throw). */
export function driveBytes(observer: SseByteObserver, chunks: Buffer[]): Buffer {
  const out: Buffer[] = [Buffer.from(observer.start())];
  for (const c of chunks) out.push(Buffer.from(observer.bytes(c)));
  out.push(Buffer.from(observer.bytesEnd()));
  out.push(Buffer.from(observer.end()));
  return Buffer.concat(out);
}

/** The JSON payloads of the `data:` lines of what the client got. */
export function dataOf(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((ev) =>
      ev
        .split('\n')
        .find((l) => l.startsWith('data: '))!
        .slice(6),
    )
    .map((d): unknown => (d === '[DONE]' ? d : JSON.parse(d)));
}
