/**
 * The sidecar's Prometheus instruments, also exported over OTLP: request durations (and counts),
 * security events, token cache lookups (hit ratios), rate-limit decisions, and the certificate's
 * seconds to expiry are read from the same prom-client registry that /metrics serves, at each
 * OTLP collection — one set of numbers, two exports, and one record per request instead of two.
 */
import { ValueType, type HrTime, type Meter } from '@opentelemetry/api';
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
  meter.addBatchObservableCallback(
    async (observer) => {
      // Prometheus metric → how each of its values is observed. Only these are read: the whole
      // registry (the request histogram's buckets, the process metrics) would be built for nothing.
      const bridged: Record<string, (v: MetricValue) => void> = {
        warden_token_cache_total: (v) =>
          observer.observe(cacheLookups, v.value, { cache: String(v.labels.cache), result: String(v.labels.result) }),
        warden_ratelimit_decisions_total: (v) =>
          observer.observe(rateLimitDecisions, v.value, { 'http.route': String(v.labels.route), decision: String(v.labels.decision) }),
        warden_security_events_total: (v) => observer.observe(securityEvents, v.value, { 'event.name': String(v.labels.event) }),
        warden_certificate_expiry_seconds: (v) => observer.observe(certificateExpiry, v.value),
      };
      for (const [name, observe] of Object.entries(bridged)) {
        const metric = (await registry.getSingleMetric(name)?.get()) as MetricJson | undefined;
        for (const v of metric?.values ?? []) observe(v);
      }
    },
    [cacheLookups, rateLimitDecisions, securityEvents, certificateExpiry],
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
          attributes: { 'http.route': c.route, 'http.request.method': c.method, 'http.response.status_code': c.status },
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
