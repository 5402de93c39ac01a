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

interface MetricJson {
  name: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

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
      const metrics = (await registry.getMetricsAsJSON()) as unknown as MetricJson[];
      for (const m of metrics) {
        if (m.name === 'warden_token_cache_total') {
          for (const v of m.values)
            observer.observe(cacheLookups, v.value, { cache: String(v.labels.cache), result: String(v.labels.result) });
        } else if (m.name === 'warden_ratelimit_decisions_total') {
          for (const v of m.values)
            observer.observe(rateLimitDecisions, v.value, { 'http.route': String(v.labels.route), decision: String(v.labels.decision) });
        } else if (m.name === 'warden_security_events_total') {
          for (const v of m.values) observer.observe(securityEvents, v.value, { 'event.name': String(v.labels.event) });
        } else if (m.name === 'warden_certificate_expiry_seconds') {
          for (const v of m.values) observer.observe(certificateExpiry, v.value);
        }
      }
    },
    [cacheLookups, rateLimitDecisions, securityEvents, certificateExpiry],
  );
}

type HistogramPoint = HistogramMetricData['dataPoints'][number];

/**
 * `http.server.request.duration` for the OTLP metric reader, from the Prometheus histogram the
 * sidecar records each request in (the OTel API has no asynchronous histogram, hence a producer):
 * cumulative, the same buckets, one point per route, method and status.
 */
export function requestDurationProducer(registry: Registry): (resource: Resource, scope: InstrumentationScope) => MetricProducer {
  // Cumulative since the histogram began counting: the process's start (hrTime(0) is the time origin).
  const startTime: HrTime = hrTime(0);
  return (resource, scope) => ({
    async collect() {
      const metric = registry.getSingleMetric('warden_http_request_duration_seconds');
      const endTime = hrTime();
      const points = new Map<
        string,
        { attributes: Record<string, string | number>; cumulative: [number, number][]; sum: number; count: number }
      >();
      for (const v of metric ? (await metric.get()).values : []) {
        const { le, route, method, status } = v.labels as Record<string, string | number | undefined>;
        const key = `${route}\u0000${method}\u0000${status}`;
        let p = points.get(key);
        if (!p) {
          p = {
            attributes: { 'http.route': String(route), 'http.request.method': String(method), 'http.response.status_code': Number(status) },
            cumulative: [],
            sum: 0,
            count: 0,
          };
          points.set(key, p);
        }
        const name = (v as { metricName?: string }).metricName ?? '';
        if (name.endsWith('_bucket') && le !== '+Inf') p.cumulative.push([Number(le), v.value]);
        else if (name.endsWith('_sum')) p.sum = v.value;
        else if (name.endsWith('_count')) p.count = v.value;
      }
      const dataPoints: HistogramPoint[] = [...points.values()].map((p) => {
        p.cumulative.sort((a, b) => a[0] - b[0]);
        // Prometheus buckets are cumulative (≤ le); OTLP's count each bucket alone, plus one above the last bound.
        const counts = p.cumulative.map(([, c], i) => c - (i === 0 ? 0 : (p.cumulative[i - 1] as [number, number])[1]));
        counts.push(p.count - (p.cumulative.at(-1)?.[1] ?? 0));
        return {
          attributes: p.attributes,
          startTime,
          endTime,
          value: { buckets: { boundaries: p.cumulative.map(([le]) => le), counts }, sum: p.sum, count: p.count },
        };
      });
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
