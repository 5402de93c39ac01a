/**
 * The sidecar's Prometheus instruments, also exported over OTLP: request durations (and counts),
 * security events, token cache lookups (hit ratios), rate-limit decisions, the certificate's
 * seconds to expiry and the CRL's state are read from the same prom-client registry that /metrics serves, at each
 * OTLP collection — one set of numbers, two exports, and one record per request instead of two.
 */
import { ValueType, type Attributes, type HrTime, type Meter, type Observable } from '@opentelemetry/api';
import { hrTime, type InstrumentationScope } from '@opentelemetry/core';
import {
  AggregationTemporality,
  DataPointType,
  type HistogramMetricData,
  type MetricProducer,
  type ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Resource } from '@opentelemetry/resources';
import type { Registry } from 'prom-client';
import { REQUEST_DURATION_BOUNDS, type RequestDurations } from './request-durations.js';

interface MetricJson {
  name: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

type MetricValue = MetricJson['values'][number];

export function exportPrometheusInstruments(meter: Meter, registry: Registry): void {
  const cacheLookups = meter.createObservableCounter('warden.token.cache.lookups', {
    description: 'Token cache lookups by cache (introspection, jwt, minted) and result (hit, miss, stale, negative, shared_hit).',
  });
  const rateLimitDecisions = meter.createObservableCounter('warden.ratelimit.decisions', {
    description: 'Rate-limit decisions by route and decision (allowed, limited, unavailable).',
  });
  const securityEvents = meter.createObservableCounter('warden.security.events', { description: 'Security events by name.' });
  const certificateExpiry = meter.createObservableGauge('warden.certificate.expiry', {
    unit: 's',
    description: 'Seconds until the workload certificate expires.',
  });
  const crlInForce = meter.createObservableGauge('warden.crl.in_force', {
    description: '1 when a verified CRL is in force, 0 when none is (mesh peers refused with 503).',
  });
  const crlStale = meter.createObservableGauge('warden.crl.stale', {
    unit: 's',
    description: 'Seconds since the nextUpdate of the CRL in force passed without a newer one.',
  });
  // Prometheus metric → the OTel instrument it is observed on, and each value's attributes. Only
  // these are read at a collection: the whole registry (the request histogram's buckets, the process
  // metrics) would be built for nothing.
  const bridged: readonly [string, Observable, (labels: MetricValue['labels']) => Attributes | undefined][] = [
    ['warden_token_cache_total', cacheLookups, (l) => ({ cache: String(l.cache), result: String(l.result) })],
    ['warden_ratelimit_decisions_total', rateLimitDecisions, (l) => ({ 'http.route': String(l.route), decision: String(l.decision) })],
    ['warden_security_events_total', securityEvents, (l) => ({ 'event.name': String(l.event) })],
    ['warden_certificate_expiry_seconds', certificateExpiry, () => undefined],
    ['warden_crl_in_force', crlInForce, () => undefined],
    ['warden_crl_stale_seconds', crlStale, () => undefined],
  ];
  meter.addBatchObservableCallback(
    async (observer) => {
      for (const [name, instrument, attributesOf] of bridged) {
        const metric = (await registry.getSingleMetric(name)?.get()) as MetricJson | undefined;
        for (const v of metric?.values ?? []) observer.observe(instrument, v.value, attributesOf(v.labels));
      }
    },
    bridged.map(([, instrument]) => instrument),
  );
}

type HistogramPoint = HistogramMetricData['dataPoints'][number];

/**
 * `http.server.request.duration` for the OTLP metric reader, from the Prometheus histogram the
 * sidecar records each request in (request-durations.ts; the OTel API has no asynchronous
 * histogram, hence a producer): cumulative, the same buckets, one point per route, method and status.
 */
export function requestDurationProducer(durations: RequestDurations): (resource: Resource, scope: InstrumentationScope) => MetricProducer {
  // Cumulative since the histogram began counting: the process's start (hrTime(0) is the time origin).
  const startTime: HrTime = hrTime(0);
  const boundaries = [...REQUEST_DURATION_BOUNDS];
  return (resource, scope) => ({
    async collect() {
      const endTime = hrTime();
      const dataPoints: HistogramPoint[] = [];
      for (const c of durations.snapshot()) {
        dataPoints.push({
          // A folded status (its class, `4xx`: request-durations.ts) goes as that string, as on /metrics.
          attributes: { 'http.route': c.route, 'http.request.method': c.method, 'http.response.status_code': c.code ?? c.status },
          startTime,
          endTime,
          // OTLP counts each bucket alone, plus one above the last bound: as the cells keep them.
          value: { buckets: { boundaries, counts: Array.from(c.counts) }, sum: c.sum, count: c.count },
        });
      }
      const scopeMetrics: ScopeMetrics[] = dataPoints.length
        ? [
            {
              scope,
              metrics: [
                {
                  descriptor: {
                    name: 'http.server.request.duration',
                    description: 'Requests through the sidecar, by route and status.',
                    unit: 's',
                    valueType: ValueType.DOUBLE,
                  },
                  aggregationTemporality: AggregationTemporality.CUMULATIVE,
                  dataPointType: DataPointType.HISTOGRAM,
                  dataPoints,
                },
              ],
            },
          ]
        : [];
      return { resourceMetrics: { resource, scopeMetrics }, errors: [] };
    },
  });
}
