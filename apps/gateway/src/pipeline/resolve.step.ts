import { Injectable } from '@nestjs/common';
import { Errors, matchesAny } from '@gw/common';
import { RouteTable } from '@gw/routing';
import type { Body } from './call-plan';
import type { CallContext } from './call-context';
import { ambiguousKey } from './ambiguous-key';
import { MAX_MODEL_CHARS, MODEL_NAME } from './model-name';
import { MAX_CHOICES } from './output-cap';

/** The largest output a request may ask for (`max_tokens` & co.); also what its reservation is capped at. */
export const MAX_OUTPUT_TOKENS = 10_000_000;

/**
 * Step 2: the fields every endpoint shares (`model`, `stream`, `service_tier`) checked, the key's model
 * allow-list applied and the route resolved, from memory. OpenAI-shaped 400/403/404/503.
 */
@Injectable()
export class ResolveStep {
  constructor(private readonly routes: RouteTable) {}

  run(ctx: CallContext, body: unknown): Body {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw Errors.badRequest('The request body must be a JSON object.');
    const b = body as Body;
    const ambiguous = ambiguousKey(b);
    if (ambiguous !== undefined) {
      throw Errors.badRequest(
        `\`${ambiguous.slice(0, 64)}\` differs only in case from a parameter name: a provider could read it as that parameter. Send each parameter once, in lower case.`,
        ambiguous.slice(0, 64),
        'ambiguous_parameter',
      );
    }
    if (typeof b.model !== 'string' || !b.model.trim()) throw Errors.badRequest('You must provide a model parameter.', 'model', 'missing_required_parameter');
    if (b.model.length > MAX_MODEL_CHARS) throw Errors.badRequest(`\`model\` must be at most ${MAX_MODEL_CHARS} characters.`, 'model');
    if (!MODEL_NAME.test(b.model)) {
      throw Errors.badRequest('`model` may contain only letters, digits and the characters - _ . : / @ +', 'model');
    }
    if (b.stream !== undefined && typeof b.stream !== 'boolean') throw Errors.badRequest('`stream` must be a boolean.', 'stream');
    if (b.service_tier !== undefined && b.service_tier !== null && typeof b.service_tier !== 'string') {
      throw Errors.badRequest('`service_tier` must be a string.', 'service_tier');
    }
    ctx.noteRequestedTier(b.service_tier);
    const model = b.model;
    if (!matchesAny(ctx.principal.allowedModels, model)) {
      throw Errors.forbidden(`This API key is not allowed to use model \`${model}\`.`, 'model_not_allowed');
    }
    const route = this.routes.resolve(ctx.principal.tenantId, model);
    if (!route) throw Errors.modelNotFound(model);
    if (!route.groups.length) throw Errors.unavailable(`No enabled provider serves model \`${model}\` right now.`);
    ctx.route = route;
    const total = route.settings.totalTimeoutMs;
    if (total) ctx.setDeadline(total, () => Errors.timeout(`total request time of ${total} ms exceeded`));
    return b;
  }
}

/**
 * The output cap the client asked for in `fields`, each checked: an integer in [1, MAX_OUTPUT_TOKENS], else
 * 400 naming the field. `null` counts as not set. The largest wins: providers read different fields
 * (Ollama and OpenRouter only `max_tokens`), so a small one beside a large one must not size the reservation.
 */
export function maxOutputOf(body: Body, fields: readonly string[]): number | undefined {
  let out: number | undefined;
  for (const f of fields) {
    const v = body[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_OUTPUT_TOKENS) {
      throw Errors.badRequest(`\`${f}\` must be an integer between 1 and ${MAX_OUTPUT_TOKENS}.`, f, 'invalid_value');
    }
    out = Math.max(out ?? 0, v);
  }
  return out;
}

/** `n` (chat): how many choices, each up to the output cap, so a multiplier of the worst case. */
export function choicesOf(body: Body): number {
  const v = body.n;
  if (v === undefined || v === null) return 1;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_CHOICES) {
    throw Errors.badRequest(`\`n\` must be an integer between 1 and ${MAX_CHOICES}.`, 'n', 'invalid_value');
  }
  return v;
}
