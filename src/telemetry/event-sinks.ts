/** Sinks that fan security events out: a pino line each, and a Prometheus counter. */
import type { EventSink } from './events.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export function pinoEventSink(logger: Logger): EventSink {
  return (name, severity, attributes) => {
    logger[severity]({ event: name, ...attributes }, name);
  };
}

export function metricsEventSink(metrics: Metrics): EventSink {
  return (name) => metrics.countEvent(name);
}
