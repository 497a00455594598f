import { OpenAIChatObserver, OpenAIResponsesObserver, PASS_THROUGH_JSON, ResponsesFromChatTranslator, SseObserver } from '@gw/providers';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import type { CallContext } from './call-context';
import type { ClientSink } from './client-sink';
import { context, provider, target } from './pipeline.spec-helpers';
import { RelayStep } from './relay.step';
import type { SettleStep } from './settle.step';

/** Real loopback servers: an upstream that writes `chunks` (then ends or breaks), and the gateway side running the relay. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const settled: CallContext[] = [];
const settle = {
  end(ctx: CallContext, res: ClientSink, body?: string | Buffer) {
    settled.push(ctx);
    if (body === undefined) res.end();
    else res.end(body);
  },
} as unknown as SettleStep;
const relay = new RelayStep(settle);
const servers: Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));
beforeEach(() => (settled.length = 0));

/** Relays what the upstream sends through `dialectOf(ctx)`; returns the client's status and body text and the context. */
async function relayed(
  upstream: { chunks: string[]; contentType: string; breakAfter?: boolean; latin1?: boolean; gapMs?: number },
  dialectOf: (ctx: CallContext) => Parameters<RelayStep['run']>[3],
  p = provider(),
) {
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- nothing in it rejects
  const up = await serve(async (_req, res) => {
    res.writeHead(200, { 'content-type': upstream.contentType });
    // latin1: each chunk is raw bytes (e.g. cut inside a UTF-8 character), written as they are; gapMs apart so
    // the relay reads them as separate chunks.
    for (const c of upstream.chunks) {
      res.write(c, upstream.latin1 ? 'latin1' : 'utf8');
      if (upstream.gapMs) await new Promise((r) => setTimeout(r, upstream.gapMs));
    }
    if (upstream.breakAfter) setTimeout(() => res.destroy(), 20);
    else res.end();
  });
  const ctx = context();
  ctx.target = target('up-model', p);
  ctx.upstreamModel = 'up-model';
  let error: unknown;
  // eslint-disable-next-line @typescript-eslint/no-misused-promises -- the handler catches what it throws into `error`
  const gw = await serve(async (_req, res) => {
    const upRes = await request(up.url);
    try {
      await relay.run(ctx, res, { res: upRes, target: ctx.target!, op: 'chat' }, dialectOf(ctx));
    } catch (e) {
      error = e;
      res.end();
    }
  });
  servers.push(up.server, gw.server);
  const res = await request(gw.url);
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, ctx, error: error as { status?: number; body?: { error: { code: string } } } | undefined };
}

describe('RelayStep.relaySse', () => {
  const events = [
    'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n',
    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  ];
  const usage = 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\n';

  it('passes the upstream bytes through untouched (usage read), with the SSE head and the target headers, settled once', async () => {
    const chunks = [...events, usage, 'data: [DONE]\n\n'];
    const r = await relayed({ chunks, contentType: 'text/event-stream' }, (ctx) => new OpenAIChatObserver(ctx, ctx.target!.provider.adapter, true));
    expect(r.text).toBe(chunks.join(''));
    expect(r.headers).toMatchObject({ 'content-type': 'text/event-stream; charset=utf-8', 'x-gateway-target': 'local/up-model' });
    expect([r.ctx.streamed, r.ctx.usage.inputTokens, r.ctx.usage.outputTokens, settled.length]).toEqual([true, 5, 2, 1]);
  });

  it('a stream that breaks mid-answer ends with the dialect’s failure event, metered on an estimate', async () => {
    const r = await relayed(
      { chunks: [events[0]], contentType: 'text/event-stream', breakAfter: true },
      (ctx) => new OpenAIChatObserver(ctx, ctx.target!.provider.adapter, false),
    );
    expect(r.text.startsWith(events[0])).toBe(true);
    expect(r.text).toMatch(/data: \{"error":\{.*"code":"stream_error"/);
    expect([r.ctx.status, r.ctx.errorCode, r.ctx.usage.outputTokens, settled.length]).toEqual([502, 'stream_error', 1, 1]);
  });

  it('a stream that finished without usage is metered on the prompt estimate plus one token per delta', async () => {
    const r = await relayed({ chunks: [...events, 'data: [DONE]\n\n'], contentType: 'text/event-stream' }, (ctx) => {
      ctx.promptEstimate = 7;
      return new OpenAIChatObserver(ctx, ctx.target!.provider.adapter, false);
    });
    expect([r.ctx.status, r.ctx.usageReported, r.ctx.usage.inputTokens, r.ctx.usage.outputTokens]).toEqual([200, false, 7, 1]);
  });

  it('an adapter chunk hook sees every event before the observer (a non-OpenAI provider)', async () => {
    const adapter = Object.assign(Object.create(provider().adapter), { chunk: (_op: string, ev: string) => ev.replace('Hi', 'Ho') });
    const seen: string[] = [];
    const observer: SseObserver = {
      kind: 'sse',
      deltas: 0,
      start: () => '',
      events: (evs) => (seen.push(...evs), evs.map((e) => e + '\n\n').join('')),
      end: () => '',
      failure: () => '',
    };
    const r = await relayed({ chunks: [events[0]], contentType: 'text/event-stream' }, () => observer, provider({ adapter }));
    expect(r.text).toContain('"Ho"');
    expect(seen).toHaveLength(1);
  });
});

describe('RelayStep.relaySse, byte path (a pass-through Responses stream)', () => {
  const frame = (o: object) => `event: ${(o as { type: string }).type}\ndata: ${JSON.stringify(o)}\n\n`;
  const created = frame({ type: 'response.created', sequence_number: 0, response: { id: 'resp_up1', status: 'in_progress' } });
  const deltas = ['héllo ', '☃ 🙂'].map((d, i) => frame({ type: 'response.output_text.delta', sequence_number: i + 1, delta: d }));
  const completed = frame({
    type: 'response.completed',
    sequence_number: 3,
    response: { id: 'resp_up1', status: 'completed', service_tier: 'priority', usage: { input_tokens: 11, output_tokens: 3 } },
  });
  let bytesCalls = 0;
  /** The pass-through Responses observer, counting the relay's calls to its byte path. */
  const responses = (ctx: CallContext) => {
    const o = new OpenAIResponsesObserver(ctx, ctx.target!.provider.adapter, 'resp_ours', 'gpt-x');
    const bytes = o.bytes.bind(o);
    o.bytes = (chunk) => (bytesCalls++, bytes(chunk));
    return o;
  };
  beforeEach(() => (bytesCalls = 0));

  it('forwards the upstream bytes unchanged, written in pieces cut inside characters and events, and meters the terminal event', async () => {
    const all = Buffer.from(created + deltas.join('') + completed);
    const cuts = [5, all.indexOf('☃') + 1, all.indexOf('response.completed') + 3, all.length];
    const chunks = cuts.map((c, i) => all.subarray(i ? cuts[i - 1] : 0, c).toString('latin1'));
    const r = await relayed({ chunks, contentType: 'text/event-stream', latin1: true, gapMs: 15 }, responses);
    expect(r.text).toBe(all.toString());
    expect(bytesCalls).toBeGreaterThanOrEqual(cuts.length);
    expect([r.ctx.status, r.ctx.usageReported, r.ctx.usage.inputTokens, r.ctx.usage.outputTokens, r.ctx.serviceTier, settled.length]).toEqual([
      200,
      true,
      11,
      3,
      'priority',
      1,
    ]);
  });

  it('a stream that breaks inside an event: no part of it reaches the client; response.failed names the upstream response', async () => {
    const partial = completed.slice(0, 60);
    const r = await relayed({ chunks: [created, ...deltas, partial], contentType: 'text/event-stream', breakAfter: true, gapMs: 5 }, responses);
    const whole = created + deltas.join('');
    expect(r.text.startsWith(whole)).toBe(true);
    const failure = r.text.slice(whole.length);
    expect(failure).toMatch(/^event: response\.failed\ndata: /);
    expect(JSON.parse(failure.split('data: ')[1])).toMatchObject({
      type: 'response.failed',
      sequence_number: 4,
      response: { id: 'resp_up1', status: 'failed', error: { code: 'stream_error' } },
    });
    expect([r.ctx.status, r.ctx.errorCode, r.ctx.usage.outputTokens]).toEqual([502, 'stream_error', 2]);
  });

  it('an adapter that rewrites events keeps the string path for the same observer', async () => {
    const adapter = Object.assign(Object.create(provider().adapter), { chunk: (_op: string, ev: string) => ev.replace('héllo', 'hullo') });
    const r = await relayed({ chunks: [created, ...deltas, completed], contentType: 'text/event-stream' }, responses, provider({ adapter }));
    expect(r.text).toBe(created + deltas.join('').replace('héllo', 'hullo') + completed);
    expect([r.ctx.usage.inputTokens, bytesCalls]).toEqual([11, 0]);
  });
});

describe('RelayStep.relayJson', () => {
  const completion =
    '{ "id": "c1", "object": "chat.completion", "choices": [{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}], "usage": {"prompt_tokens": 4, "completion_tokens": 1} }';

  it('passes the answer’s bytes through (spacing and all), usage read out', async () => {
    const r = await relayed({ chunks: [completion], contentType: 'application/json' }, () => PASS_THROUGH_JSON.chat);
    expect(r.text).toBe(completion);
    expect([r.status, r.ctx.usage.inputTokens, r.ctx.usageReported]).toEqual([200, 4, true]);
  });

  it('a translating dialect rewrites the answer (Responses from chat)', async () => {
    const r = await relayed(
      { chunks: [completion], contentType: 'application/json' },
      (ctx) => new ResponsesFromChatTranslator({ model: 'gpt-x', input: 'hi' }, ctx),
    );
    expect(JSON.parse(r.text)).toMatchObject({ id: 'resp_abc', object: 'response', status: 'completed' });
  });

  it('an answer that is not a JSON object is the provider’s 502, thrown for the pipeline to answer', async () => {
    for (const body of ['[1]', 'not json']) {
      const r = await relayed({ chunks: [body], contentType: 'application/json' }, () => PASS_THROUGH_JSON.chat);
      expect([r.error?.status, r.error?.body?.error.code, settled.length]).toEqual([502, 'bad_upstream_response', 0]);
    }
  });
});
