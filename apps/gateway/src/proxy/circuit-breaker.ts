export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitOptions {
  /** Consecutive failures that open a circuit; 0 disables the breaker. */
  failureThreshold: number;
  /** How long an open circuit rejects before it lets one probe through. */
  cooldownMs: number;
  /** Injectable clock (ms), for tests. */
  now?: () => number;
  /** Called on every state change (metrics). */
  onChange?: (labels: CircuitLabels, state: CircuitState) => void;
}

/** What a circuit is about: one provider serving one upstream model. */
export interface CircuitLabels {
  providerId: string;
  provider: string;
  model: string;
}

/** A pass through the breaker: `probe` is the single request a half-open circuit lets through. */
export interface CircuitPass {
  key: string;
  probe: boolean;
}

export interface CircuitSnapshot extends CircuitLabels {
  target: string;
  state: CircuitState;
  consecutiveFailures: number;
  openedAt: string | null;
  /** Until an open circuit lets a probe through; 0 when closed or half-open. */
  retryInMs: number;
  lastError: string | null;
}

interface Circuit {
  labels: CircuitLabels;
  state: CircuitState;
  failures: number;
  openedAt: number;
  probing: boolean;
  lastError: string | null;
}

/** Healthy circuits are forgotten first once this many are tracked (glob routes pass arbitrary model names). */
const MAX_CIRCUITS = 10_000;

export function circuitKey(providerId: string, model: string): string {
  return providerId + '\u0000' + model;
}

/**
 * Per-target circuit breakers (target = provider + upstream model, so one broken model on OpenRouter
 * does not take the provider's other models down with it).
 *
 *   closed ──N consecutive failures──► open ──cool-down──► half_open ──probe ok──► closed
 *                                       ▲                      │
 *                                       └──── probe failed ────┘
 *
 * Only upstream health counts: connection errors, timeouts and 5xx are failures; any other answer
 * (2xx, other 4xx) is a success. A request abandoned by its client is neither, and so is a 429 or an empty
 * provider account (the dispatcher backs the target off instead: a busy upstream is not a broken one).
 */
export class CircuitBreaker {
  private readonly circuits = new Map<string, Circuit>();
  private readonly now: () => number;

  constructor(readonly options: CircuitOptions) {
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.failureThreshold > 0;
  }

  /** Whether a request may go to this target now; undefined means skip it (open, or its probe is out). */
  tryPass(labels: CircuitLabels): CircuitPass | undefined {
    const key = circuitKey(labels.providerId, labels.model);
    if (!this.enabled) return { key, probe: false };
    const c = this.circuits.get(key);
    if (!c || c.state === 'closed') return { key, probe: false };
    if (c.state === 'open') {
      if (this.now() - c.openedAt < this.options.cooldownMs) return undefined;
      this.transition(c, 'half_open');
    }
    if (c.probing) return undefined;
    c.probing = true;
    return { key, probe: true };
  }

  success(pass: CircuitPass): void {
    const c = this.circuits.get(pass.key);
    if (!c) return;
    if (pass.probe) c.probing = false;
    // A late success from before the circuit opened proves little; only the probe closes it.
    if (c.state !== 'closed' && !pass.probe) return;
    c.failures = 0;
    c.lastError = null;
    if (c.state !== 'closed') this.transition(c, 'closed');
  }

  failure(pass: CircuitPass, labels: CircuitLabels, error: string): void {
    if (!this.enabled) return;
    const c = this.circuits.get(pass.key) ?? this.create(pass.key, labels);
    c.failures++;
    c.lastError = error;
    if (pass.probe) c.probing = false;
    if (c.state === 'half_open' || (c.state === 'closed' && c.failures >= this.options.failureThreshold)) {
      c.openedAt = this.now();
      this.transition(c, 'open');
    }
  }

  /** The request ended without telling us anything about the upstream (client gone, our own deadline). */
  release(pass: CircuitPass): void {
    const c = this.circuits.get(pass.key);
    if (c && pass.probe) c.probing = false;
  }

  isOpen(labels: CircuitLabels): boolean {
    return this.circuits.get(circuitKey(labels.providerId, labels.model))?.state === 'open';
  }

  /** Shortest wait until one of these open circuits lets a probe through. */
  retryInMs(labels: CircuitLabels[]): number {
    let min = Infinity;
    for (const l of labels) {
      const c = this.circuits.get(circuitKey(l.providerId, l.model));
      if (c?.state === 'open') min = Math.min(min, Math.max(0, c.openedAt + this.options.cooldownMs - this.now()));
    }
    return Number.isFinite(min) ? min : 0;
  }

  snapshot(): CircuitSnapshot[] {
    const now = this.now();
    return [...this.circuits.values()].map((c) => ({
      ...c.labels,
      target: `${c.labels.provider}/${c.labels.model}`,
      state: c.state,
      consecutiveFailures: c.failures,
      openedAt: c.state === 'closed' ? null : new Date(Date.now() - (now - c.openedAt)).toISOString(),
      retryInMs: c.state === 'open' ? Math.max(0, c.openedAt + this.options.cooldownMs - now) : 0,
      lastError: c.lastError,
    }));
  }

  private create(key: string, labels: CircuitLabels): Circuit {
    if (this.circuits.size >= MAX_CIRCUITS) {
      for (const [k, old] of this.circuits) {
        if (old.state === 'closed') {
          this.circuits.delete(k);
          break;
        }
      }
    }
    const c: Circuit = { labels, state: 'closed', failures: 0, openedAt: 0, probing: false, lastError: null };
    this.circuits.set(key, c);
    return c;
  }

  private transition(c: Circuit, state: CircuitState): void {
    c.state = state;
    this.options.onChange?.(c.labels, state);
  }
}
