/**
 * Prometheus instruments (prom-client) on a registry of the sidecar's own, so several sidecars can
 * share a process (tests, `warden dev`). Children are cached per label set so the request path does
 * one Map lookup, not a label hash.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';
import type { EventName } from './events.js';

export interface RequestObserver {
  (route: string, method: string, status: number, seconds: number): void;
}

/** Token translation's instruments: cache outcomes and IdP calls. */
export interface TokenMetrics {
  cache(cache: 'introspection' | 'jwt' | 'minted', result: 'hit' | 'miss' | 'stale' | 'negative' | 'shared_hit'): void;
  idpCall(kind: 'introspection' | 'jwks' | 'revocation', outcome: string, seconds: number): void;
}

/** A rate-limit stage's answer: within the limit, over it, or the store could not say. */
export type RateLimitDecision = 'allowed' | 'limited' | 'unavailable';

export interface Metrics {
  readonly registry: Registry;
  readonly tokens: TokenMetrics;
  rateLimitDecision(this: void, route: string, decision: RateLimitDecision): void;
  observeRequest: RequestObserver;
  countEvent(name: EventName): void;
  /** Exposes seconds until the workload certificate expires, read at scrape time. */
  trackCertificateExpiry(secondsToExpiry: () => number): void;
}

export function createMetrics(options: { serviceName: string; processMetrics: boolean }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.serviceName });
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  const duration = new Histogram({
    name: 'warden_http_request_duration_seconds',
    help: 'Time from request headers to the end of the response, by route, method and status (its _count is the request count).',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const events = new Counter({
    name: 'warden_security_events_total',
    help: 'Security events raised, by event name.',
    labelNames: ['event'] as const,
    registers: [registry],
  });

  // Cache lookups happen on every request: counted in plain numbers, handed to the counter at scrape time.
  const cacheCounts = new Map<string, { labels: { cache: string; result: string }; n: number; reported: number }>();
  new Counter({
    name: 'warden_token_cache_total',
    help: 'Token cache lookups by cache (introspection, jwt, minted) and result (hit, miss, stale, negative, shared_hit).',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
    collect() {
      for (const c of cacheCounts.values()) {
        if (c.n > c.reported) this.inc(c.labels, c.n - c.reported);
        c.reported = c.n;
      }
    },
  });
  // Rate-limit decisions, like cache lookups: plain numbers per route and decision until a scrape.
  const decisionCounts = new Map<string, { labels: { route: string; decision: string }; n: number; reported: number }>();
  new Counter({
    name: 'warden_ratelimit_decisions_total',
    help: 'Rate-limit decisions by route and decision (allowed, limited, unavailable: the shared store could not say).',
    labelNames: ['route', 'decision'] as const,
    registers: [registry],
    collect() {
      for (const c of decisionCounts.values()) {
        if (c.n > c.reported) this.inc(c.labels, c.n - c.reported);
        c.reported = c.n;
      }
    },
  });
  const idpCalls = new Histogram({
    name: 'warden_idp_call_duration_seconds',
    help: 'Calls to identity providers by kind and outcome (ok, or the failure reason).',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const tokens: TokenMetrics = {
    cache(cache, result) {
      const key = cache + result;
      const c = cacheCounts.get(key);
      if (c !== undefined) c.n++;
      else cacheCounts.set(key, { labels: { cache, result }, n: 1, reported: 0 });
    },
    idpCall(kind, outcome, seconds) {
      idpCalls.labels({ kind, outcome }).observe(seconds);
    },
  };

  type Child = ReturnType<typeof duration.labels>;
  const durationChildren = new Map<string, Child>();
  const eventChildren = new Map<string, ReturnType<typeof events.labels>>();

  return {
    registry,
    tokens,
    rateLimitDecision(route, decision) {
      const key = `${route}\u0000${decision}`;
      const c = decisionCounts.get(key);
      if (c !== undefined) c.n++;
      else decisionCounts.set(key, { labels: { route, decision }, n: 1, reported: 0 });
    },
    trackCertificateExpiry(secondsToExpiry) {
      new Gauge({
        name: 'warden_certificate_expiry_seconds',
        help: 'Seconds until the workload certificate expires (renewal normally happens at 70 % of its lifetime).',
        registers: [registry],
        collect() {
          this.set(secondsToExpiry());
        },
      });
    },
    observeRequest(route, method, status, seconds) {
      const key = `${route}\u0000${method}\u0000${status}`;
      let child = durationChildren.get(key);
      if (child === undefined) {
        // Methods are client-chosen: fold unknown ones so labels stay bounded.
        const labels: LabelValues<'route' | 'method' | 'status'> = {
          route,
          method: STANDARD_METHODS.has(method) ? method : 'OTHER',
          status: String(status),
        };
        child = duration.labels(labels);
        if (durationChildren.size < 10_000) durationChildren.set(key, child);
      }
      child.observe(seconds);
    },
    countEvent(name) {
      let child = eventChildren.get(name);
      if (child === undefined) {
        child = events.labels({ event: name });
        eventChildren.set(name, child);
      }
      child.inc();
    },
  };
}

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);
