/**
 * Prometheus instruments (prom-client) on a registry of the sidecar's own, so several sidecars can
 * share a process (tests, `warden dev`). What the request path touches is a plain number or cell
 * per label set, looked up once (request-durations.ts, scrapedCounter), not a label hash per call.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventName } from './events.js';
import { CELLS_REFUSED_METRIC, REQUEST_DURATION_METRIC, RequestDurations } from './request-durations.js';
import { DROP_SERIES, type DropCounts, type DropSignal } from './telemetry-drops.js';

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
export type RateLimitCounters = Readonly<Record<RateLimitDecision, () => void>>;

export interface Metrics {
  readonly registry: Registry;
  /** The request duration histogram's cells, for the OTLP producer (otel-metrics-bridge.ts). */
  readonly requestDurations: RequestDurations;
  readonly tokens: TokenMetrics;
  /** One route's decision counters, resolved when its rate-limit stage is compiled. */
  rateLimitCounters(this: void, route: string): RateLimitCounters;
  /** One route's counter of CORS preflights forwarded under its preflight policy, resolved when the plan is compiled. */
  preflightCounter(this: void, route: string): () => void;
  observeRequest: RequestObserver;
  countEvent(name: EventName): void;
  /** A response left unchecked: its copy did not fit in limits.max_buffered_bytes. */
  countSkippedResponseCheck(reason: 'budget' | 'too_large' | 'too_deep'): void;
  /** Exposes seconds until the workload certificate expires, read at scrape time. */
  trackCertificateExpiry(secondsToExpiry: () => number): void;
  /** The CRL in force (mesh): whether there is one, and how long ago its nextUpdate passed (0 before). */
  trackCrl(state: () => { inForce: boolean; secondsPastNextUpdate: number }): void;
  /** Log lines stdout dropped (its backlog full: a log reader slower than the sidecar), read at scrape time. */
  trackLogDrops(dropped: () => Readonly<Record<'access' | 'event' | 'other', number>>): void;
  /** Spans and log records OTLP export dropped (telemetry-drops.ts), read at scrape time: seen without the collector. */
  trackTelemetryDrops(counts: Readonly<Record<DropSignal, Readonly<DropCounts>>>): void;
}

export function createMetrics(options: {
  serviceName: string;
  processMetrics: boolean;
  /** The sidecar's pino warn: told when a metric reaches its cap of label sets. */
  warn?: (fields: object, msg: string) => void;
}): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.serviceName });
  if (options.processMetrics) collectDefaultMetrics({ register: registry });

  const warn = options.warn;
  const requestDurations = new RequestDurations(undefined, (maxCells) =>
    warn?.(
      { metric: REQUEST_DURATION_METRIC, max_label_sets: maxCells },
      `${REQUEST_DURATION_METRIC} holds ${maxCells} label sets: requests of a new route, method and status are no longer recorded in it (${CELLS_REFUSED_METRIC} counts them)`,
    ),
  );
  requestDurations.register(registry);
  const events = new Counter({
    name: 'warden_security_events_total',
    help: 'Security events raised, by event name.',
    labelNames: ['event'] as const,
    registers: [registry],
  });

  // Counted on every request: plain numbers per label pair, handed to the counter at scrape time.
  const cacheCell = scrapedCounter(
    registry,
    'warden_token_cache_total',
    ['cache', 'result'],
    'Token cache lookups by cache (introspection, jwt, minted) and result (hit, miss, stale, negative, shared_hit).',
  );
  const decisionCell = scrapedCounter(
    registry,
    'warden_ratelimit_decisions_total',
    ['route', 'decision'],
    'Rate-limit decisions by route and decision (allowed, limited, unavailable: the shared store could not say).',
  );
  const preflightCell = scrapedCounter(
    registry,
    'warden_cors_preflights_total',
    ['route'],
    'CORS preflights taken under the preflight policy of the route that takes the method they announce (routing.cors_preflight: forward).',
  );
  const idpCalls = new Histogram({
    name: 'warden_idp_call_duration_seconds',
    help: 'Calls to identity providers by kind and outcome (ok, or the failure reason).',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const cacheCells: Record<Parameters<TokenMetrics['cache']>[0], Partial<Record<Parameters<TokenMetrics['cache']>[1], Cell>>> = {
    introspection: {},
    jwt: {},
    minted: {},
  };
  const tokens: TokenMetrics = {
    cache(cache, result) {
      // A few fixed label pairs: nested lookups, no key string per lookup.
      (cacheCells[cache][result] ??= cacheCell(cache, result)).n++;
    },
    idpCall(kind, outcome, seconds) {
      idpCalls.labels({ kind, outcome }).observe(seconds);
    },
  };

  const skippedResponseChecks = new Counter({
    name: 'warden_response_checks_skipped_total',
    help: 'Responses not validated (openapi.validation.responses): limits.max_buffered_bytes could not hold their copy (budget), the body was over the 1 MiB a copy holds (too_large), or it nests deeper than validation reads (too_deep).',
    labelNames: ['reason'],
    registers: [registry],
  });
  // Every series from the start, at 0: a dashboard's rate() needs the series before its first skip.
  for (const reason of ['budget', 'too_large', 'too_deep']) skippedResponseChecks.inc({ reason }, 0);

  const eventChildren = new Map<string, ReturnType<typeof events.labels>>();

  return {
    registry,
    requestDurations,
    tokens,
    preflightCounter(route) {
      const cell = preflightCell(route);
      return () => void cell.n++;
    },
    rateLimitCounters(route) {
      const counter = (decision: RateLimitDecision) => {
        const cell = decisionCell(route, decision);
        return () => void cell.n++;
      };
      return { allowed: counter('allowed'), limited: counter('limited'), unavailable: counter('unavailable') };
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
    trackCrl(state) {
      new Gauge({
        name: 'warden_crl_in_force',
        help: '1 when a verified CRL is in force; 0 when none is (requests from mesh peers are refused with 503 until one is fetched).',
        registers: [registry],
        collect() {
          this.set(state().inForce ? 1 : 0);
        },
      });
      new Gauge({
        name: 'warden_crl_stale_seconds',
        help: 'Seconds since the nextUpdate of the CRL in force passed without a newer one (0 while it is current or none is in force).',
        registers: [registry],
        collect() {
          this.set(state().secondsPastNextUpdate);
        },
      });
    },
    trackLogDrops(dropped) {
      const reported = { access: 0, event: 0, other: 0 };
      const counter = new Counter({
        name: 'warden_log_lines_dropped_total',
        help: 'Log lines dropped because stdout did not take them fast enough and log.buffer_bytes was full, by kind: access (request lines), event (security events), other.',
        labelNames: ['kind'] as const,
        registers: [registry],
        collect() {
          const now = dropped();
          for (const kind of ['access', 'event', 'other'] as const) {
            if (now[kind] > reported[kind]) this.inc({ kind }, now[kind] - reported[kind]);
            reported[kind] = now[kind];
          }
        },
      });
      // The three series from the start, at 0.
      for (const kind of ['access', 'event', 'other']) counter.inc({ kind }, 0);
    },
    trackTelemetryDrops(counts) {
      // What the counter holds: it catches up with the counts at each scrape.
      const reported = { logs: { ...counts.logs }, traces: { ...counts.traces }, metrics: { ...counts.metrics } };
      const counter = new Counter({
        name: 'warden_telemetry_dropped_total',
        help: 'Spans, log records and metric data points OTLP export dropped, by signal (logs, traces, metrics) and reason: queue_full (no room in the export queue), export_failed (the collector refused them or could not be reached), export_timeout (no answer within telemetry.otlp.timeout), breaker_open (dropped unsent in the 5 s after a failure), collector_rejected (the collector took the export but rejected these in its partial_success; the only reason for metrics).',
        labelNames: ['signal', 'reason'] as const,
        registers: [registry],
        collect() {
          for (const [signal, reason] of DROP_SERIES) {
            const n = counts[signal][reason] - reported[signal][reason];
            if (n > 0) this.inc({ signal, reason }, n);
            reported[signal][reason] = counts[signal][reason];
          }
        },
      });
      // Every series from the start.
      for (const [signal, reason] of DROP_SERIES) counter.inc({ signal, reason }, reported[signal][reason]);
    },
    observeRequest(route, method, status, seconds) {
      requestDurations.observe(route, method, status, seconds);
    },
    countSkippedResponseCheck(reason) {
      skippedResponseChecks.inc({ reason });
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

/** One label pair's count: `n++` on the request path, read when the counter is scraped. */
interface Cell {
  n: number;
}

/**
 * A counter for events on the request path: `cellOf(a, b)` is the plain number of one label pair,
 * looked up once (at compile time where the labels are known) and then only incremented; the
 * counter catches up when it is scraped or exported.
 */
function scrapedCounter(
  registry: Registry,
  name: string,
  labelNames: [string] | [string, string],
  help: string,
): (a: string, b?: string) => Cell {
  const cells = new Map<string, Cell & { labels: Record<string, string>; reported: number }>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const c of cells.values()) {
        if (c.n > c.reported) this.inc(c.labels, c.n - c.reported);
        c.reported = c.n;
      }
    },
  });
  return (a, b) => {
    const key = b === undefined ? a : `${a}\u0000${b}`;
    let c = cells.get(key);
    if (c === undefined) {
      const labels = labelNames[1] === undefined ? { [labelNames[0]]: a } : { [labelNames[0]]: a, [labelNames[1]]: b ?? '' };
      cells.set(key, (c = { labels, n: 0, reported: 0 }));
    }
    return c;
  };
}
