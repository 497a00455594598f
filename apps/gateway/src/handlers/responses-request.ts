import { Errors } from '@gw/common';
import { CompactionSeal, expandGatewayCompactions } from '@gw/providers';
import type { ResolvedTarget } from '@gw/routing';
import type { CallContext } from '../pipeline/call-context';
import type { Body } from '../pipeline/call-plan';
import { validateResponsesRequest } from './responses.validation';

const nativeOnly = (t: ResolvedTarget): boolean => t.provider.responsesNative;

export interface ResponsesRequest {
  /** The client's body with the gateway's own compaction items read back into text (they never reach a provider). */
  body: Body;
  /** Set when only native targets may serve (the request continues a stored response). */
  accept: ((t: ResolvedTarget) => boolean) | undefined;
  /** A chat-only target may serve: translate up front, so an untranslatable request is the client's 400 before anything is reserved. */
  translateNow: boolean;
}

/**
 * What both Responses endpoints (`/v1/responses`, `/v1/responses/compact`) do with a body first. Translation is
 * stateless: a chat-only provider cannot continue a stored response, so such a request goes to the route's native
 * targets only (never silently dropping the reference on fallback), or is refused when there are none.
 */
export function responsesRequestOf(client: Body, ctx: CallContext, seal: CompactionSeal): ResponsesRequest {
  validateResponsesRequest(client);
  const body = expandGatewayCompactions(client, seal, ctx.principal.tenantId);
  const continues = typeof body.previous_response_id === 'string' && body.previous_response_id !== '';
  const targets = ctx.route!.groups.flat();
  if (continues && !targets.some(nativeOnly)) {
    throw Errors.badRequest(
      '`previous_response_id` needs a provider that speaks the Responses API natively; send the full `input` history instead.',
      'previous_response_id',
    );
  }
  return { body, accept: continues ? nativeOnly : undefined, translateNow: !continues && !targets.every(nativeOnly) };
}
