import { Provider } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { GatewayMetrics } from '@gw/observability';
import { CircuitBreaker } from './circuit-breaker';

/** One breaker registry per gateway process, configured from the environment, reporting to metrics. */
export const CIRCUIT_BREAKER_PROVIDER: Provider = {
  provide: CircuitBreaker,
  inject: [APP_CONFIG, GatewayMetrics],
  useFactory: (cfg: AppConfig, metrics: GatewayMetrics) =>
    new CircuitBreaker({
      failureThreshold: cfg.circuitFailureThreshold,
      cooldownMs: cfg.circuitCooldownMs,
      onChange: (l, state) => metrics.circuitState(l.provider, `${l.provider}/${l.model}`, state),
    }),
};
