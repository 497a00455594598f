import { ProviderKind, ProviderSettings } from '@gw/db';
import type { Dispatcher } from 'undici';
import { NormalisedUsage } from './translate';

/** A provider as the hot path sees it: decrypted credential, adapter, all in memory. */
export interface ResolvedProvider {
  id: string;
  name: string;
  kind: ProviderKind;
  /** OpenAI-compatible root, e.g. https://api.openai.com/v1 */
  baseUrl: string;
  credential: string | null;
  settings: ProviderSettings;
  enabled: boolean;
  adapter: ProviderAdapter;
  /** Whether /v1/responses is passed through (native) or translated to chat. */
  responsesNative: boolean;
}

/** What a provider is asked to do; `responses_compact` is the Responses API's `/responses/compact` (native providers only). */
export type Operation = 'chat' | 'responses' | 'responses_compact' | 'embeddings';

/** Per-request context an adapter may use to shape the upstream body. */
export interface PrepareContext {
  /** Route-level provider preferences (OpenRouter), overridden by what the client sent. */
  providerPreferences?: Record<string, unknown>;
}

/**
 * One provider's differences from plain OpenAI, as data and small pure functions (Portkey-style), so a
 * provider that does not speak OpenAI's wire format is one folder: where each operation is posted (`path`),
 * the request (`prepare`), the answer (`response`), each stream event (`chunk`) and its errors (`errorHint`).
 * Everything else (HTTP, streaming, retries, metering) is shared. Without `response` and `chunk` the answer's
 * bytes pass through untouched.
 */
export interface ProviderAdapter {
  readonly kind: ProviderKind;
  readonly defaultBaseUrl: string;
  /** Serves the Responses API natively unless a provider's settings say otherwise. */
  readonly responsesNativeByDefault: boolean;
  /** Headers for every upstream call: credential and static extras. */
  headers(p: ResolvedProvider): Record<string, string>;
  /** The path, under `baseUrl`, an operation is posted to. */
  path(op: Operation): string;
  /** Shapes the (already model-rewritten) body in place before it is sent. */
  prepare(op: Operation, body: Record<string, unknown>, p: ResolvedProvider, ctx: PrepareContext): void;
  /** A non-stream answer into OpenAI's shape (only a provider that needs it: else the bytes pass through). */
  response?(op: Operation, answer: Record<string, unknown>): Record<string, unknown>;
  /** One stream event (the text between blank lines) into OpenAI's shape; same rule. */
  chunk?(op: Operation, event: string): string;
  /** Usage in one shape, whatever the provider reports (OpenRouter adds its own cost). */
  usage(op: Operation, raw: unknown): NormalisedUsage;
  /** Extra words for an upstream error the user can act on (e.g. `ollama pull`). */
  errorHint(status: number, model: string): string;
  /** Models the provider serves, when it can tell (Ollama /api/tags). */
  discoverModels?(p: ResolvedProvider, signal: AbortSignal, dispatcher?: Dispatcher): Promise<string[]>;
}
