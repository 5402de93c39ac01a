/**
 * GET /console/status: what the console shows besides events, read from the same Prometheus
 * instruments /metrics serves — requests by status class, security events by name, token cache
 * hit ratios — plus the workload identity and its certificate's expiry. Rates are left to the
 * page (it diffs successive totals), so the sidecar keeps no time series.
 */
import type { Registry } from 'prom-client';
import type { MeshStatus } from '../mesh/identity.js';

export interface ConsoleStatus {
  service: string;
  version: string;
  uptimeSeconds: number;
  identity: MeshStatus | null;
  requests: { total: number; byClass: Record<string, number> };
  events: Record<string, number>;
  caches: Record<string, { hits: number; lookups: number; ratio: number | null }>;
}

interface MetricJson {
  name: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

export function createConsoleStatus(options: {
  registry: Registry;
  service: string;
  version: string;
  identity: () => MeshStatus | undefined;
}): () => Promise<ConsoleStatus> {
  const started = Date.now();
  return async () => {
    const metrics = (await options.registry.getMetricsAsJSON()) as unknown as MetricJson[];
    const byName = new Map(metrics.map((m) => [m.name, m.values]));
    const byClass: Record<string, number> = {};
    let total = 0;
    for (const v of byName.get('warden_http_request_duration_seconds') ?? []) {
      if (v.metricName !== 'warden_http_request_duration_seconds_count') continue;
      const cls = `${String(v.labels.status).slice(0, 1)}xx`;
      byClass[cls] = (byClass[cls] ?? 0) + v.value;
      total += v.value;
    }
    const events: Record<string, number> = {};
    for (const v of byName.get('warden_security_events_total') ?? []) events[String(v.labels.event)] = v.value;
    const caches: ConsoleStatus['caches'] = {};
    for (const v of byName.get('warden_token_cache_total') ?? []) {
      const c = (caches[String(v.labels.cache)] ??= { hits: 0, lookups: 0, ratio: null });
      c.lookups += v.value;
      if (String(v.labels.result).endsWith('hit')) c.hits += v.value;
    }
    for (const c of Object.values(caches)) c.ratio = c.lookups > 0 ? c.hits / c.lookups : null;
    return {
      service: options.service,
      version: options.version,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
      identity: options.identity() ?? null,
      requests: { total, byClass },
      events,
      caches,
    };
  };
}
