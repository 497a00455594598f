import { Injectable } from '@nestjs/common';
import { Principal } from '@gw/tenancy';

/** What a request is expected to consume, reserved before it is forwarded. */
export interface UsageEstimate {
  model: string;
  tokens: number;
  costUsd: number;
}

export interface ActualUsage {
  tokens: number;
  costUsd: number;
}

/** A request's claim on its tenant's and key's limits; settle or release exactly once. */
export interface Admission {
  /** `x-ratelimit-*` headers to put on the response. */
  readonly headers: Record<string, string>;
  settle(actual: ActualUsage): void;
  release(): void;
}

const NOOP_ADMISSION: Admission = { headers: {}, settle: () => undefined, release: () => undefined };

/**
 * Rate limits, concurrency and budgets (issue 5 fills this in: throttler counters in memory or Redis,
 * token and money reservations). Throws an OpenAI-shaped 429 when a limit refuses.
 */
@Injectable()
export class LimitsService {
  async admit(_principal: Principal, _estimate: UsageEstimate): Promise<Admission> {
    return NOOP_ADMISSION;
  }
}
