/**
 * FakeProvider: a real HTTP server on 127.0.0.1 that impersonates an upstream LLM provider
 * (OpenAI, OpenRouter or Ollama) on the wire, so gateway tests exercise real sockets, real
 * SSE framing and real failure modes instead of mocked clients.
 *
 * Served (relative to the flavor's root: `/v1` for openai/ollama, `/api/v1` for openrouter):
 *   POST /chat/completions   (JSON or SSE)         POST /responses   (JSON or SSE with `event:` lines)
 *   POST /embeddings          GET /models, GET /models/{id}
 *   POST /responses/compact  (JSON: the user messages + one `compaction` item, as Codex's CompactClient reads it)
 *   A `/responses` request whose input holds a `compaction_trigger` (remote compaction v2) is answered with exactly
 *   one `compaction` output item, as OpenAI does (`fakeCompactionContent`).
 * Ollama additionally serves its native `GET /api/tags`, `GET /api/version` and `GET /`.
 *
 * Request pipeline (decided synchronously on arrival so queued faults/scripts are consumed in
 * arrival order, then latency is applied before the response head):
 *   record -> auth -> route -> JSON parse -> validate + model check -> fault queue -> script -> reply
 */
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

// ───────────────────────────────────────── public types ─────────────────────────────────────────

export type FakeFlavor = 'openai' | 'openrouter' | 'ollama';

export interface ScriptedToolCall {
  /** Chat: tool_calls[].id; Responses: function_call.call_id. Generated (`call_…`) when omitted. */
  id?: string;
  name: string;
  arguments: string;
  /** Responses flavor: a freeform `custom_tool_call` whose `input` is `arguments` verbatim (chat has no such call). */
  custom?: boolean;
}

export interface ScriptedReply {
  /** Assistant text; streamed split into ~streamChunks pieces. Omitted + no toolCalls -> default text. */
  text?: string;
  toolCalls?: ScriptedToolCall[];
  usage?: { input?: number; output?: number; cached?: number; cost?: number };
  /** `service_tier` the reply reports having served (as OpenAI does); absent: none reported. */
  serviceTier?: string;
  /**
   * Chat flavors only: the model's reasoning, sent before the text as the flavor does: `reasoning` on the
   * message / stream deltas (Ollama's thinking, OpenRouter's plain text) and, for OpenRouter, also as one
   * `reasoning.text` block in `reasoning_details` (streamed in pieces sharing index 0, signature on the last).
   */
  reasoning?: string;
  /** OpenRouter: the signature of that block (default `sig-fake`). */
  reasoningSignature?: string;
  /** When set, the request fails with this status instead of replying. */
  status?: number;
  errorBody?: unknown;
  retryAfter?: string;
}

export interface ReceivedRequest {
  method: string;
  /** Pathname only (no query string), e.g. '/v1/chat/completions'. */
  path: string;
  /** Raw request target including the query string. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or undefined when empty / not JSON. */
  body: any;
  rawBody: string;
  at: number;
}

export interface FakeProviderOptions {
  flavor?: FakeFlavor;
  port?: number;
  /** If non-empty, every request must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  models?: string[];
  strictModels?: boolean;
  latencyMs?: number;
  chunkDelayMs?: number;
  streamChunks?: number;
  /** The reply text when no script sets one ('' : `defaultReplyText`); e.g. long enough for 200 stream deltas (the bench). */
  replyText?: string;
}

/** Runtime-mutable knobs. `apiKey: ''` means "no auth required". */
export type FakeProviderKnobs = Required<Omit<FakeProviderOptions, 'flavor' | 'port'>>;

// ───────────────────────────────────────── constants ─────────────────────────────────────────

export const DEFAULT_MODELS: Readonly<Record<FakeFlavor, readonly string[]>> = {
  openai: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'],
  openrouter: ['openai/gpt-4o-mini', 'anthropic/claude-3.5-sonnet'],
  ollama: ['gpt-oss:20b', 'llama3.2'],
};

const ROOT: Readonly<Record<FakeFlavor, string>> = { openai: '/v1', openrouter: '/api/v1', ollama: '/v1' };
const FINGERPRINT: Readonly<Record<FakeFlavor, string>> = {
  openai: 'fp_fake0001',
  openrouter: 'fp_fakerouter',
  ollama: 'fp_ollama',
};
export const OPENROUTER_PROVIDER_NAME = 'FakeRouter';
/** Fixed so /models and /api/tags are byte-stable across runs. */
const MODEL_CREATED = 1_700_000_000;
export const EMBEDDING_DIMENSIONS = 8;

// ───────────────────────────────────── deterministic helpers ─────────────────────────────────────

/** The default reply text; exported so tests can assert exact reassembly. */
export function defaultReplyText(flavor: FakeFlavor, model: string): string {
  return `Hello from fake-${flavor} (${model})`;
}

/** Deterministic token estimate used for prompt/input tokens: ceil(JSON.stringify(v).length / 4). */
export function estimateTokens(value: unknown): number {
  if (value === undefined) return 0;
  return Math.ceil(JSON.stringify(value).length / 4);
}

/**
 * Splits text into at most `n` non-empty pieces whose concatenation is exactly `text`.
 * Splits on code points so surrogate pairs never get cut in half.
 */
export function splitIntoChunks(text: string, n: number): string[] {
  const chars = Array.from(text);
  if (chars.length === 0) return [];
  const k = Math.max(1, Math.min(Math.floor(n) || 1, chars.length));
  const out: string[] = [];
  for (let i = 0; i < k; i++) {
    out.push(chars.slice(Math.floor((i * chars.length) / k), Math.floor(((i + 1) * chars.length) / k)).join(''));
  }
  return out;
}

/**
 * 8 floats in [-1, 1) derived from sha256(input). Values are float32-exact so the SDK's default
 * base64 encoding round-trips to the very same numbers.
 */
export function fakeEmbedding(input: string): number[] {
  const digest = createHash('sha256').update(input).digest();
  const out: number[] = [];
  for (let i = 0; i < EMBEDDING_DIMENSIONS; i++) {
    out.push(Math.fround((digest.readUInt32BE(i * 4) / 2 ** 32) * 2 - 1));
  }
  return out;
}

/** The fake's stand-in for OpenAI's opaque compaction blob: recognisable in what later requests carry. */
export function fakeCompactionContent(summary: string): string {
  return 'fake-cmp.' + Buffer.from(summary, 'utf8').toString('base64url');
}

function rid(prefix: string, bytes = 12): string {
  return prefix + randomBytes(bytes).toString('hex');
}

function nowSec(): number {
  return Math.floor(Date.now() / 1000);
}

/** Avoids float noise like 0.00030000000000000003 in reported costs. */
function roundCost(x: number): number {
  return Number(x.toFixed(10));
}

function isPlainObject(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ───────────────────────────────────────── error bodies ─────────────────────────────────────────

function openAiError(message: string, type: string, code: string | null = null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** OpenRouter errors carry a numeric `code` (the HTTP status) and no `type`. */
function openRouterError(status: number, message: string) {
  return { error: { message, code: status, metadata: { provider_name: OPENROUTER_PROVIDER_NAME } } };
}

function clientError(flavor: FakeFlavor, status: number, message: string, code: string | null = null, param: string | null = null) {
  return flavor === 'openrouter' ? openRouterError(status, message) : openAiError(message, 'invalid_request_error', code, param);
}

function unauthorizedBody(flavor: FakeFlavor) {
  return flavor === 'openrouter'
    ? { error: { message: 'No auth credentials found', code: 401 } }
    : openAiError('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key');
}

function unknownModelBody(flavor: FakeFlavor, model: string) {
  switch (flavor) {
    case 'openai':
      return openAiError(`The model \`${model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found');
    case 'openrouter':
      return openRouterError(404, `No endpoints found for ${model}.`);
    case 'ollama':
      return openAiError(`model "${model}" not found, try pulling it first`, 'api_error');
  }
}

/** Default body for failNext / scripted failures without an explicit body. */
function upstreamFailureBody(flavor: FakeFlavor, status: number) {
  if (flavor === 'openrouter') {
    return openRouterError(status, status === 429 ? 'Rate limit exceeded' : 'fake upstream failure');
  }
  if (status === 429) {
    return openAiError('Rate limit reached for requests (fake upstream). Please try again later.', 'requests', 'rate_limit_exceeded');
  }
  return openAiError('fake upstream failure', 'server_error');
}

/** What each flavor answers when the account is out of money (bodies as the real services send them). */
export function quotaExhaustedReply(flavor: FakeFlavor): { status: number; body: unknown } {
  if (flavor === 'openrouter') {
    return { status: 402, body: { error: { message: 'Insufficient credits. Add more using https://openrouter.ai/settings/credits', code: 402 } } };
  }
  return {
    status: 429,
    body: openAiError(
      'You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.',
      'insufficient_quota',
      'insufficient_quota',
    ),
  };
}

// ──────────────────────────────────────── reply planning ────────────────────────────────────────

interface PlannedToolCall {
  id: string;
  name: string;
  arguments: string;
  pieces: string[];
  custom: boolean;
}

/** A reply with every random id and every chunk boundary fixed up front, shared by stream and non-stream. */
interface PlannedReply {
  model: string;
  text: string | null;
  textPieces: string[];
  toolCalls: PlannedToolCall[];
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  cost: number;
  serviceTier?: string;
  reasoning?: string;
  reasoningPieces: string[];
  reasoningSignature: string;
}

type Outcome =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'text'; status: number; text: string }
  | { kind: 'sse'; frames: string[]; dropAfter?: number }
  | { kind: 'hang' };

type Fault = { kind: 'fail'; status: number; retryAfter?: string; body?: unknown; headers?: Record<string, string> } | { kind: 'hang' };

// ───────────────────────────────────────── the server ─────────────────────────────────────────

export class FakeProvider {
  readonly flavor: FakeFlavor;
  options: FakeProviderKnobs;
  received: ReceivedRequest[] = [];
  /**
   * The account that seals this fake's encrypted items (as an OpenAI organisation does). When set, every
   * /responses answer starts with a `reasoning` item whose `encrypted_content` only this account can read,
   * and a request carrying encrypted reasoning or `compaction` content sealed by another account is refused
   * as OpenAI refuses it: 400 `invalid_encrypted_content`.
   */
  sealedBy?: string;

  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private scripts: ScriptedReply[] = [];
  private faults: Fault[] = [];
  private drops: number[] = [];
  private inflight = 0;
  private boundPort = 0;
  private closing: Promise<void> | undefined;

  static async start(opts: FakeProviderOptions = {}): Promise<FakeProvider> {
    const fake = new FakeProvider(opts);
    await fake.listen(opts.port ?? 0);
    return fake;
  }

  private constructor(opts: FakeProviderOptions) {
    this.flavor = opts.flavor ?? 'openai';
    this.options = {
      apiKey: opts.apiKey ?? '',
      models: [...(opts.models ?? DEFAULT_MODELS[this.flavor])],
      strictModels: opts.strictModels ?? true,
      latencyMs: opts.latencyMs ?? 0,
      chunkDelayMs: opts.chunkDelayMs ?? 0,
      streamChunks: opts.streamChunks ?? 5,
      replyText: opts.replyText ?? '',
    };
    this.server = http.createServer();
    this.server.on('connection', (socket: Socket) => {
      // Small SSE frames must leave immediately, or chunk timing tests lie.
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('request', (req, res) => this.onRequest(req, res));
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.boundPort = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }
  get origin(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }
  /** OpenAI-compatible root to use as an SDK `baseURL`. */
  get baseUrl(): string {
    return this.origin + ROOT[this.flavor];
  }

  // ── test controls ──

  /** Requests whose pathname ends with the suffix, e.g. requestsTo('/chat/completions'). */
  requestsTo(pathSuffix: string): ReceivedRequest[] {
    return this.received.filter((r) => r.path.endsWith(pathSuffix));
  }

  /** Queue replies; each chat/responses request consumes one (after any pending fault). */
  script(...replies: ScriptedReply[]): void {
    this.scripts.push(...replies);
  }

  /** Makes `other` take its replies from this fake's script queue (one conversation spread over two providers). */
  shareScripts(other: FakeProvider): void {
    other.scripts = this.scripts;
  }

  /**
   * The next n chat/responses/embeddings calls fail with `status` (queued in order with hangNext). `headers`
   * are sent with the error, e.g. OpenAI's `x-ratelimit-reset-requests: 1s`.
   */
  failNext(n: number, status: number, opts: { retryAfter?: string; body?: unknown; headers?: Record<string, string> } = {}): void {
    for (let i = 0; i < n; i++) this.faults.push({ kind: 'fail', status, retryAfter: opts.retryAfter, body: opts.body, headers: opts.headers });
  }

  /**
   * The next n calls answer as the flavor does when the account behind the credential is out of money:
   * OpenAI `429 insufficient_quota`, OpenRouter `402` "Insufficient credits" (Ollama has no billing: OpenAI's shape).
   */
  quotaExhaustedNext(n: number): void {
    const { status, body } = quotaExhaustedReply(this.flavor);
    this.failNext(n, status, { body });
  }

  /** The next n chat/responses/embeddings calls never get a response head (until the client goes away). */
  hangNext(n: number): void {
    for (let i = 0; i < n; i++) this.faults.push({ kind: 'hang' });
  }

  /**
   * The next n *streaming* calls get their socket destroyed after `afterChunks` SSE frames.
   * Capped so the terminal frame ([DONE] / response.completed) is never delivered.
   */
  dropMidStreamNext(n: number, afterChunks: number): void {
    for (let i = 0; i < n; i++) this.drops.push(Math.max(0, Math.floor(afterChunks)));
  }

  /** In-flight requests (not idle keep-alive sockets): a request counts until its response closes. */
  openConnections(): number {
    return this.inflight;
  }

  /** Raw TCP sockets currently open, including idle keep-alive ones. */
  openSockets(): number {
    return this.sockets.size;
  }

  /** Resolves once openConnections() is 0 (server-side close events lag the client slightly). */
  async whenIdle(timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inflight > 0) {
      if (Date.now() > deadline) throw new Error(`FakeProvider: ${this.inflight} request(s) still open after ${timeoutMs}ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  reset(): void {
    this.received = [];
    this.scripts = [];
    this.faults = [];
    this.drops = [];
  }

  /** Stops listening and destroys every socket; resolves once openConnections() is back to 0. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Pending delays are abandoned (their promises never settle) so Jest sees no live timers.
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      this.server.closeAllConnections();
      await closed;
      // Response 'close' events trail socket destruction by a tick or two.
      for (let i = 0; i < 100 && this.inflight > 0; i++) await new Promise((r) => setImmediate(r));
    })();
    return this.closing;
  }

  // ── plumbing ──

  private delay(ms: number): Promise<void> {
    if (!(ms > 0)) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inflight++;
    // 'close' fires both after a completed response and when the client disconnects early.
    res.once('close', () => this.inflight--);
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('error', () => undefined); // client vanished mid-upload; res 'close' does the accounting
    req.on('end', () => {
      const rawBody = Buffer.concat(parts).toString('utf8');
      let outcome: Outcome;
      try {
        outcome = this.decide(req, rawBody);
      } catch (err) {
        outcome = { kind: 'json', status: 500, body: openAiError(`fake provider crashed: ${String(err)}`, 'server_error') };
      }
      this.deliver(req, res, outcome).catch(() => req.socket.destroy());
    });
  }

  private decide(req: http.IncomingMessage, rawBody: string): Outcome {
    const url = new URL(req.url ?? '/', this.origin);
    const method = (req.method ?? 'GET').toUpperCase();
    let body: any;
    let parsed = false;
    if (rawBody.length > 0) {
      try {
        body = JSON.parse(rawBody);
        parsed = true;
      } catch {
        body = undefined;
      }
    }
    this.received.push({
      method,
      path: url.pathname,
      url: req.url ?? '/',
      headers: { ...req.headers },
      body,
      rawBody,
      at: Date.now(),
    });

    const key = this.options.apiKey;
    if (key && req.headers.authorization !== `Bearer ${key}`) {
      return { kind: 'json', status: 401, body: unauthorizedBody(this.flavor) };
    }

    const path = url.pathname.replace(/\/+$/, '') || '/';
    const root = ROOT[this.flavor];
    const notFound: Outcome = {
      kind: 'json',
      status: 404,
      body: clientError(this.flavor, 404, `Invalid URL (${method} ${url.pathname})`),
    };

    if (this.flavor === 'ollama' && method === 'GET') {
      if (path === '/') return { kind: 'text', status: 200, text: 'Ollama is running' };
      if (path === '/api/tags') return { kind: 'json', status: 200, body: this.ollamaTags() };
      if (path === '/api/version') return { kind: 'json', status: 200, body: { version: '0.12.0' } };
    }
    if (!path.startsWith(root + '/')) return notFound;
    const rel = path.slice(root.length);

    if (method === 'GET' && rel === '/models') return { kind: 'json', status: 200, body: this.modelList() };
    if (method === 'GET' && rel.startsWith('/models/')) {
      const id = decodeURIComponent(rel.slice('/models/'.length));
      const m = this.modelList().data.find((x) => x.id === id);
      return m ? { kind: 'json', status: 200, body: m } : { kind: 'json', status: 404, body: unknownModelBody(this.flavor, id) };
    }
    if (method !== 'POST' || !['/chat/completions', '/responses', '/responses/compact', '/embeddings'].includes(rel)) return notFound;

    if (!parsed || !isPlainObject(body)) {
      return {
        kind: 'json',
        status: 400,
        body: openAiError(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
          'invalid_request_error',
        ),
      };
    }
    if (rel === '/chat/completions') return this.chatCompletions(body);
    if (rel === '/responses') return this.responses(body);
    if (rel === '/responses/compact') return this.compact(body);
    return this.embeddings(body);
  }

  private async deliver(req: http.IncomingMessage, res: http.ServerResponse, outcome: Outcome): Promise<void> {
    if (outcome.kind === 'hang') return; // never answer; res 'close' fires when the client gives up
    await this.delay(this.options.latencyMs);
    if (res.destroyed || res.writableEnded) return;
    const requestId = rid('req_', 16);

    if (outcome.kind === 'json' || outcome.kind === 'text') {
      const payload = outcome.kind === 'json' ? JSON.stringify(outcome.body) : outcome.text;
      res.writeHead(outcome.status, {
        'content-type': outcome.kind === 'json' ? 'application/json' : 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(payload),
        'x-request-id': requestId,
        ...(outcome.kind === 'json' ? outcome.headers : undefined),
      });
      res.end(payload);
      return;
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-request-id': requestId,
    });
    res.flushHeaders();
    const { frames } = outcome;
    const cut = outcome.dropAfter === undefined ? undefined : Math.min(outcome.dropAfter, frames.length - 1);
    for (let i = 0; i < frames.length; i++) {
      if (i === cut) break;
      if (i > 0) await this.delay(this.options.chunkDelayMs);
      if (res.destroyed || this.closing) return;
      if (cut !== undefined && i === cut - 1) {
        // Make sure the frames before the cut really reach the client before the reset.
        await new Promise<void>((resolve) => {
          res.once('close', resolve);
          res.write(frames[i], () => resolve());
        });
      } else {
        res.write(frames[i]);
      }
    }
    if (cut !== undefined) {
      if (cut === 0) await new Promise<void>((r) => setImmediate(r));
      req.socket.destroy();
      return;
    }
    res.end();
  }

  // ── fault / script queues ──

  private takeFault(): Outcome | undefined {
    const f = this.faults.shift();
    if (!f) return undefined;
    if (f.kind === 'hang') return { kind: 'hang' };
    return this.failure(f.status, f.body, f.retryAfter, f.headers);
  }

  private failure(status: number, body: unknown, retryAfter: string | undefined, headers?: Record<string, string>): Outcome {
    const h = { ...headers, ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }) };
    return {
      kind: 'json',
      status,
      body: body === undefined ? upstreamFailureBody(this.flavor, status) : body,
      headers: Object.keys(h).length ? h : undefined,
    };
  }

  /** Shared validation: model present and known (strictModels), required field present. */
  private validate(body: Record<string, any>, required: string | undefined): Outcome | undefined {
    if (typeof body.model !== 'string' || body.model.length === 0) {
      return { kind: 'json', status: 400, body: clientError(this.flavor, 400, 'you must provide a model parameter') };
    }
    if (required && body[required] === undefined) {
      return {
        kind: 'json',
        status: 400,
        body: clientError(this.flavor, 400, `Missing required parameter: '${required}'.`, 'missing_required_parameter', required),
      };
    }
    if (this.options.strictModels && !this.knowsModel(body.model)) {
      return { kind: 'json', status: 404, body: unknownModelBody(this.flavor, body.model) };
    }
    return undefined;
  }

  private knowsModel(model: string): boolean {
    const models = this.options.models;
    // Ollama resolves an untagged name to ':latest' and vice versa.
    if (this.flavor === 'ollama') {
      const norm = (m: string) => (m.includes(':') ? m : `${m}:latest`);
      return models.some((m) => norm(m) === norm(model));
    }
    return models.includes(model);
  }

  private plan(reply: ScriptedReply | undefined, model: string, promptBasis: unknown): PlannedReply {
    const n = this.options.streamChunks;
    const toolCalls: PlannedToolCall[] = (reply?.toolCalls ?? []).map((tc) => ({
      id: tc.id ?? rid('call_', 12),
      name: tc.name,
      arguments: tc.arguments,
      pieces: splitIntoChunks(tc.arguments, n),
      custom: tc.custom === true,
    }));
    const text = reply?.text ?? (toolCalls.length > 0 ? null : this.options.replyText || defaultReplyText(this.flavor, model));
    const textPieces = text === null ? [] : splitIntoChunks(text, n);
    const u = reply?.usage ?? {};
    const inputTokens = u.input ?? estimateTokens(promptBasis);
    const outputTokens = u.output ?? textPieces.length + toolCalls.reduce((s, tc) => s + tc.pieces.length, 0);
    return {
      model,
      text,
      textPieces,
      toolCalls,
      inputTokens,
      outputTokens,
      cachedTokens: u.cached ?? 0,
      cost: u.cost ?? roundCost(0.00001 * (inputTokens + outputTokens)),
      serviceTier: reply?.serviceTier,
      reasoning: reply?.reasoning,
      reasoningPieces: reply?.reasoning ? splitIntoChunks(reply.reasoning, n) : [],
      reasoningSignature: reply?.reasoningSignature ?? 'sig-fake',
    };
  }

  /** Faults first, then scripts; returns either a terminal outcome or the plan to render. */
  private nextReply(body: Record<string, any>, promptBasis: unknown): Outcome | PlannedReply {
    const fault = this.takeFault();
    if (fault) return fault;
    const reply = this.scripts.shift();
    if (reply?.status !== undefined) return this.failure(reply.status, reply.errorBody, reply.retryAfter);
    return this.plan(reply, body.model, promptBasis);
  }

  private takeDrop(): number | undefined {
    return this.drops.shift();
  }

  // ── /chat/completions ──

  private chatCompletions(body: Record<string, any>): Outcome {
    const invalid = this.validate(body, 'messages');
    if (invalid) return invalid;
    const next = this.nextReply(body, body.messages);
    if ('kind' in next) return next;
    const p = next;
    const id = rid('chatcmpl-');
    const created = nowSec();
    const finishReason = p.toolCalls.length > 0 ? 'tool_calls' : 'stop';
    const extra = {
      ...(this.flavor === 'openrouter' ? { provider: OPENROUTER_PROVIDER_NAME } : {}),
      ...(p.serviceTier ? { service_tier: p.serviceTier } : {}),
    };

    if (body.stream !== true) {
      const message: Record<string, unknown> = { role: 'assistant', content: p.text };
      if (p.reasoning && this.flavor !== 'openai') {
        message.reasoning = p.reasoning;
        if (this.flavor === 'openrouter') {
          message.reasoning_details = [{ type: 'reasoning.text', text: p.reasoning, signature: p.reasoningSignature, format: 'anthropic-claude-v1', index: 0 }];
        }
      }
      if (p.toolCalls.length > 0) {
        message.tool_calls = p.toolCalls.map((tc) => ({
          id: tc.id,
          type: 'function',
          function: { name: tc.name, arguments: tc.arguments },
        }));
      }
      return {
        kind: 'json',
        status: 200,
        body: {
          id,
          object: 'chat.completion',
          created,
          model: p.model,
          ...extra,
          system_fingerprint: FINGERPRINT[this.flavor],
          choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
          usage: this.chatUsage(p),
        },
      };
    }

    // OpenRouter also honours its own `usage: {include: true}` switch.
    const includeUsage = body.stream_options?.include_usage === true || (this.flavor === 'openrouter' && body.usage?.include === true);
    const base = {
      id,
      object: 'chat.completion.chunk',
      created,
      model: p.model,
      ...extra,
      system_fingerprint: FINGERPRINT[this.flavor],
    };
    // With include_usage OpenAI puts `usage: null` on every regular chunk.
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({
        ...base,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
        ...(includeUsage ? { usage: null } : {}),
      })}\n\n`;

    const frames: string[] = [chunk({ role: 'assistant', content: p.text === null ? null : '' })];
    if (this.flavor !== 'openai') {
      p.reasoningPieces.forEach((piece, i) => {
        const last = i === p.reasoningPieces.length - 1;
        const details = [
          { type: 'reasoning.text', text: piece, format: 'anthropic-claude-v1', index: 0, ...(last ? { signature: p.reasoningSignature } : {}) },
        ];
        frames.push(chunk(this.flavor === 'openrouter' ? { reasoning: piece, reasoning_details: details } : { reasoning: piece }));
      });
    }
    for (const piece of p.textPieces) frames.push(chunk({ content: piece }));
    p.toolCalls.forEach((tc, index) => {
      frames.push(chunk({ tool_calls: [{ index, id: tc.id, type: 'function', function: { name: tc.name, arguments: '' } }] }));
      for (const piece of tc.pieces) frames.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    });
    frames.push(chunk({}, finishReason));
    if (includeUsage) frames.push(`data: ${JSON.stringify({ ...base, choices: [], usage: this.chatUsage(p) })}\n\n`);
    frames.push('data: [DONE]\n\n');
    // Real OpenRouter sends SSE comments while routing; clients must ignore them.
    if (this.flavor === 'openrouter') frames[0] = ': OPENROUTER PROCESSING\n\n' + frames[0];
    return { kind: 'sse', frames, dropAfter: this.takeDrop() };
  }

  private chatUsage(p: PlannedReply) {
    return {
      prompt_tokens: p.inputTokens,
      completion_tokens: p.outputTokens,
      total_tokens: p.inputTokens + p.outputTokens,
      prompt_tokens_details: { cached_tokens: p.cachedTokens },
      ...(this.flavor === 'openrouter' ? { cost: p.cost } : {}),
    };
  }

  // ── /responses ──

  private responses(body: Record<string, any>): Outcome {
    const invalid = this.validate(body, undefined) ?? this.foreignSealed(body.input);
    if (invalid) return invalid;
    const next = this.nextReply(body, body.input);
    if ('kind' in next) return next;
    const p = next;

    type Item = Record<string, any>;
    const items: { item: Item; pieces: string[] }[] = [];
    if (this.sealedBy) {
      const item = { id: rid('rs_', 24), type: 'reasoning', summary: [], encrypted_content: `sealed:${this.sealedBy}:${rid('', 16)}` };
      items.push({ item, pieces: [] });
    }
    const compacting = Array.isArray(body.input) && body.input.some((i: any) => isPlainObject(i) && i.type === 'compaction_trigger');
    if (compacting) {
      // Remote compaction v2: exactly one compaction item, whatever was scripted (its text is the summary).
      items.push({ pieces: [], item: { id: rid('cmp_', 24), type: 'compaction', encrypted_content: fakeCompactionContent(p.text ?? '') } });
    } else if (p.text !== null) {
      items.push({
        pieces: p.textPieces,
        item: {
          id: rid('msg_', 24),
          type: 'message',
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: p.text, annotations: [] }],
        },
      });
    }
    for (const tc of compacting ? [] : p.toolCalls) {
      if (tc.custom) {
        items.push({
          pieces: tc.pieces,
          item: { id: rid('ctc_', 24), type: 'custom_tool_call', status: 'completed', call_id: tc.id, name: tc.name, input: tc.arguments },
        });
        continue;
      }
      items.push({
        pieces: tc.pieces,
        item: {
          id: rid('fc_', 24),
          type: 'function_call',
          status: 'completed',
          arguments: tc.arguments,
          call_id: tc.id,
          name: tc.name,
        },
      });
    }

    const full = {
      id: rid('resp_', 24),
      object: 'response',
      created_at: nowSec(),
      status: 'completed',
      error: null,
      incomplete_details: null,
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      model: p.model,
      output: items.map((x) => x.item),
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      previous_response_id: body.previous_response_id ?? null,
      reasoning: { effort: null, summary: null },
      store: body.store ?? true,
      temperature: body.temperature ?? 1,
      text: body.text ?? { format: { type: 'text' } },
      tool_choice: body.tool_choice ?? 'auto',
      tools: body.tools ?? [],
      top_p: body.top_p ?? 1,
      truncation: 'disabled',
      usage: {
        input_tokens: p.inputTokens,
        input_tokens_details: { cached_tokens: p.cachedTokens },
        output_tokens: p.outputTokens,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: p.inputTokens + p.outputTokens,
        ...(this.flavor === 'openrouter' ? { cost: p.cost } : {}),
      },
      user: null,
      metadata: body.metadata ?? {},
      ...(this.flavor === 'openrouter' ? { provider: OPENROUTER_PROVIDER_NAME } : {}),
      ...(p.serviceTier ? { service_tier: p.serviceTier } : {}),
    };

    if (body.stream !== true) return { kind: 'json', status: 200, body: full };

    let seq = 0;
    const frames: string[] = [];
    const emit = (type: string, fields: Record<string, unknown>) =>
      frames.push(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`);

    const pending = { ...full, status: 'in_progress', output: [], usage: null };
    emit('response.created', { response: pending });
    emit('response.in_progress', { response: pending });
    items.forEach(({ item, pieces }, output_index) => {
      const item_id: string = item.id;
      if (item.type === 'compaction') {
        emit('response.output_item.added', { output_index, item });
      } else if (item.type === 'message') {
        const text: string = item.content[0].text;
        emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } });
        emit('response.content_part.added', {
          item_id,
          output_index,
          content_index: 0,
          part: { type: 'output_text', annotations: [], text: '' },
        });
        for (const delta of pieces) {
          emit('response.output_text.delta', { item_id, output_index, content_index: 0, delta, logprobs: [] });
        }
        emit('response.output_text.done', { item_id, output_index, content_index: 0, text, logprobs: [] });
        emit('response.content_part.done', {
          item_id,
          output_index,
          content_index: 0,
          part: { type: 'output_text', annotations: [], text },
        });
      } else if (item.type === 'reasoning') {
        emit('response.output_item.added', { output_index, item: { ...item, encrypted_content: undefined } });
      } else if (item.type === 'custom_tool_call') {
        emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', input: '' } });
        for (const delta of pieces) emit('response.custom_tool_call_input.delta', { item_id, output_index, delta });
        emit('response.custom_tool_call_input.done', { item_id, output_index, input: item.input });
      } else {
        emit('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } });
        for (const delta of pieces) emit('response.function_call_arguments.delta', { item_id, output_index, delta });
        emit('response.function_call_arguments.done', { item_id, output_index, name: item.name, arguments: item.arguments });
      }
      emit('response.output_item.done', { output_index, item });
    });
    emit('response.completed', { response: full });
    return { kind: 'sse', frames, dropAfter: this.takeDrop() };
  }

  /** With `sealedBy`: encrypted content another account sealed is refused, as OpenAI does. */
  private foreignSealed(input: unknown): Outcome | undefined {
    if (!this.sealedBy || !Array.isArray(input)) return undefined;
    const own = `sealed:${this.sealedBy}:`;
    for (const it of input) {
      const sealed = ['reasoning', 'compaction', 'context_compaction'].includes(it?.type) ? it.encrypted_content : undefined;
      if (typeof sealed === 'string' && !sealed.startsWith(own)) {
        const msg = `The encrypted content ${sealed.slice(0, 4)}...${sealed.slice(-4)} could not be verified. Reason: Encrypted content could not be decrypted or parsed.`;
        return { kind: 'json', status: 400, body: openAiError(msg, 'invalid_request_error', 'invalid_encrypted_content') };
      }
    }
    return undefined;
  }

  // ── /responses/compact ──

  /**
   * OpenAI's compact endpoint as Codex's `CompactClient` reads it (codex-rs/codex-api/src/endpoint/compact.rs:
   * `{output: [ResponseItem]}`): the input's user messages, then one opaque compaction item.
   */
  private compact(body: Record<string, any>): Outcome {
    const invalid = this.validate(body, undefined);
    if (invalid) return invalid;
    const next = this.nextReply(body, body.input);
    if ('kind' in next) return next;
    const p = next;
    const input =
      typeof body.input === 'string'
        ? [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: body.input }] }]
        : Array.isArray(body.input)
          ? body.input
          : [];
    const users = input.filter((i: any) => isPlainObject(i) && (i.type === 'message' || i.type === undefined) && i.role === 'user');
    const compaction = { id: rid('cmp_', 24), type: 'compaction', encrypted_content: fakeCompactionContent(p.text ?? '') };
    return {
      kind: 'json',
      status: 200,
      body: {
        id: rid('resp_', 24),
        object: 'response.compaction',
        created_at: nowSec(),
        output: [...users, compaction],
        usage: {
          input_tokens: p.inputTokens,
          input_tokens_details: { cached_tokens: p.cachedTokens },
          output_tokens: p.outputTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: p.inputTokens + p.outputTokens,
        },
      },
    };
  }

  // ── /embeddings ──

  private embeddings(body: Record<string, any>): Outcome {
    const invalid = this.validate(body, 'input');
    if (invalid) return invalid;
    const fault = this.takeFault();
    if (fault) return fault;

    // Accepts string | string[] | number[] (tokens) | number[][]; token arrays are hashed as JSON.
    const raw = body.input;
    const inputs: unknown[] = Array.isArray(raw) && raw.length > 0 && typeof raw[0] !== 'number' ? raw : [raw];
    const keyOf = (x: unknown) => (typeof x === 'string' ? x : JSON.stringify(x));
    const tokensOf = (x: unknown) => (Array.isArray(x) ? x.length : Math.ceil(keyOf(x).length / 4));
    const base64 = body.encoding_format === 'base64';
    const data = inputs.map((x, index) => {
      const vec = fakeEmbedding(keyOf(x));
      return {
        object: 'embedding',
        index,
        // The SDK asks for base64 by default and decodes little-endian float32 itself.
        embedding: base64 ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec,
      };
    });
    const promptTokens = inputs.reduce<number>((s, x) => s + tokensOf(x), 0);
    return {
      kind: 'json',
      status: 200,
      body: { object: 'list', data, model: body.model, usage: { prompt_tokens: promptTokens, total_tokens: promptTokens } },
    };
  }

  // ── model listings ──

  private modelList(): { object: 'list'; data: { id: string; object: 'model'; created: number; owned_by: string }[] } {
    const ownedBy = (id: string) => (this.flavor === 'openrouter' ? id.split('/')[0] : this.flavor === 'ollama' ? 'library' : 'system');
    return {
      object: 'list',
      data: this.options.models.map((id) => ({ id, object: 'model' as const, created: MODEL_CREATED, owned_by: ownedBy(id) })),
    };
  }

  private ollamaTags() {
    return {
      models: this.options.models.map((name) => {
        const digest = createHash('sha256').update(name).digest('hex');
        const family = name.split(/[:.\d-]/)[0] || 'llama';
        return {
          name,
          model: name,
          modified_at: new Date(MODEL_CREATED * 1000).toISOString(),
          size: 1_000_000_000 + parseInt(digest.slice(0, 6), 16),
          digest,
          details: {
            parent_model: '',
            format: 'gguf',
            family,
            families: [family],
            parameter_size: name.split(':')[1]?.toUpperCase() ?? '3.2B',
            quantization_level: 'Q4_K_M',
          },
        };
      }),
    };
  }
}
