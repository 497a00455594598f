import { Injectable } from '@nestjs/common';
import { Errors } from '@gw/common';
import { JsonDialect, PASS_THROUGH_JSON } from '@gw/providers';
import type { Body, CallPlan, EndpointHandler } from '../pipeline/call-plan';

/** `POST /v1/embeddings`: no output to reserve, never streamed, the answer's bytes passed through. */
@Injectable()
export class EmbeddingsHandler implements EndpointHandler {
  readonly endpoint = 'embeddings';

  plan(body: Body): CallPlan {
    const input = body.input;
    if (input === undefined || input === null || input === '' || (Array.isArray(input) && input.length === 0)) {
      throw Errors.badRequest('`input` must be a non-empty string or array.', 'input');
    }
    return new EmbeddingsPlan(body);
  }
}

class EmbeddingsPlan implements CallPlan {
  readonly stream = false;
  readonly maxOutput = 0;
  readonly choices = 1;

  constructor(private readonly client: Body) {}

  operation(): 'embeddings' {
    return 'embeddings';
  }

  body(): Body {
    return this.client;
  }

  shape(): void {}

  relay(): JsonDialect {
    return PASS_THROUGH_JSON.embeddings;
  }
}
