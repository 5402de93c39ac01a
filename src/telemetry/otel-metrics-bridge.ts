/**
 * The sidecar's Prometheus instruments, also exported over OTLP: token cache lookups (hit ratios),
 * rate-limit decisions, and the certificate's seconds to expiry are read from the same
 * prom-client registry that /metrics serves, at each OTLP collection — one set of numbers, two
 * exports. (Requests and security events have native OTel instruments in request-tracing.ts.)
 */
import type { Meter } from '@opentelemetry/api';
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
        } else if (m.name === 'warden_certificate_expiry_seconds') {
          for (const v of m.values) observer.observe(certificateExpiry, v.value);
        }
      }
    },
    [cacheLookups, rateLimitDecisions, certificateExpiry],
  );
}
