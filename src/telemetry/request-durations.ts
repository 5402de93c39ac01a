/**
 * `warden_http_request_duration_seconds`: per route, method and status, plain bucket counts that the
 * request path increments, read by /metrics (as a prom-client metric of the sidecar's registry) and
 * by the OTLP producer (otel-metrics-bridge.ts) only when they collect.
 *
 * Why not prom-client's Histogram: its observe converts, validates and hashes the labels into a
 * key string on every call, even through a child from `labels()` (prom-client 15), which is work the
 * label set's own cell does once here. The exposition is prom-client's: same name, labels,
 * cumulative `le` buckets, `_sum` and `_count`.
 */
import type { Metric, Registry } from 'prom-client';

export const REQUEST_DURATION_METRIC = 'warden_http_request_duration_seconds';
export const REQUEST_DURATION_BOUNDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One label set's counts: `counts[i]` for durations ≤ bounds[i] (and > bounds[i-1]); the last is above every bound. */
export interface DurationCell {
  readonly route: string;
  readonly method: string;
  readonly status: number;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A value as prom-client's registry formats it (its own type for this is not exported). */
interface PromValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly sharedLabels?: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Methods kept as labels; any other (clients choose them) is folded into OTHER, so label sets stay bounded. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'OTHER'];
const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]));
const OTHER = METHODS.length - 1;

export class RequestDurations {
  /**
   * By route id (the plan's own strings), then by method index × 1000 + status: no key string is
   * built per request.
   */
  private readonly byRoute = new Map<string, Map<number, DurationCell>>();
  private size = 0;

  constructor(
    /** Label sets kept; past it a new one is not recorded. Routes come from the plan and methods are folded, so this guards memory. */
    private readonly maxCells = 10_000,
  ) {}

  observe(route: string, method: string, status: number, seconds: number): void {
    let cells = this.byRoute.get(route);
    if (cells === undefined) this.byRoute.set(route, (cells = new Map<number, DurationCell>()));
    const m = METHOD_INDEX.get(method) ?? OTHER;
    const key = m * 1000 + status;
    let cell = cells.get(key);
    if (cell === undefined) {
      if (this.size >= this.maxCells) return;
      this.size++;
      cell = {
        route,
        method: METHODS[m] as string,
        status,
        counts: new Float64Array(REQUEST_DURATION_BOUNDS.length + 1),
        sum: 0,
        count: 0,
      };
      cells.set(key, cell);
    }
    let i = 0;
    while (i < REQUEST_DURATION_BOUNDS.length && seconds > (REQUEST_DURATION_BOUNDS[i] as number)) i++;
    (cell.counts[i] as number)++;
    cell.sum += seconds;
    cell.count++;
  }

  /** The label sets seen so far, counts cumulative since the start. */
  *snapshot(): Iterable<Readonly<DurationCell>> {
    for (const cells of this.byRoute.values()) yield* cells.values();
  }

  /** Registers the histogram with prom-client, which reads it at each scrape. */
  register(registry: Registry): void {
    const about = {
      name: REQUEST_DURATION_METRIC,
      help: 'Time from request headers to the end of the response, by route, method and status (its _count is the request count).',
      type: 'histogram',
      aggregator: 'sum',
    } as const;
    const read = (forText: boolean) => ({ ...about, values: this.promValues(forText) });
    const metric = {
      ...about,
      get: async () => read(false),
      // As prom-client's Histogram: for the text format, the label set rides as shared labels after `le`.
      getForPromString: async () => read(true),
      reset: () => {
        this.byRoute.clear();
        this.size = 0;
      },
    };
    registry.registerMetric(metric as unknown as Metric);
  }

  private promValues(forText: boolean): PromValue[] {
    const values: PromValue[] = [];
    const bucket = `${REQUEST_DURATION_METRIC}_bucket`;
    for (const c of this.snapshot()) {
      const labels = { route: c.route, method: c.method, status: String(c.status) };
      const value = (metricName: string, own: Record<string, string | number>, v: number): PromValue =>
        forText ? { metricName, labels: own, sharedLabels: labels, value: v } : { metricName, labels: { ...own, ...labels }, value: v };
      let cumulative = 0;
      REQUEST_DURATION_BOUNDS.forEach((le, i) => {
        cumulative += c.counts[i] as number;
        values.push(value(bucket, { le }, cumulative));
      });
      values.push(value(bucket, { le: '+Inf' }, c.count));
      values.push(value(`${REQUEST_DURATION_METRIC}_sum`, {}, c.sum));
      values.push(value(`${REQUEST_DURATION_METRIC}_count`, {}, c.count));
    }
    return values;
  }
}
