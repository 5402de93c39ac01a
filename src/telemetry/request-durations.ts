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
import { STATUS_CODES } from 'node:http';
import { Counter, type Metric, type Registry } from 'prom-client';

export const REQUEST_DURATION_METRIC = 'warden_http_request_duration_seconds';
export const REQUEST_DURATION_BOUNDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One label set's counts: `counts[i]` for durations ≤ bounds[i] (and > bounds[i-1]); the last is above every bound. */
export interface DurationCell {
  readonly route: string;
  readonly method: string;
  /** The status label: a registered code (`404`), `0` (no answer went out), or its class (`4xx`). */
  readonly status: string;
  /** The status as a number when the label is one (not for a class). */
  readonly code: number | undefined;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** A route's cells, by method index × 1000 + status slot, and how many named statuses each method holds. */
interface RouteCells {
  readonly cells: Map<number, DurationCell>;
  readonly named: Uint8Array;
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

/**
 * Statuses kept as labels: the codes Node names (http.STATUS_CODES, the registered ones) and 0 (no
 * answer went out). A backend may answer any 100–999 (httpbin's /status/N relays the caller's):
 * each would be a label set per route and method, so any other is folded into its class (`4xx`).
 * Each status's slot in a cell key: the code itself, or 1–9 for a class (10 for anything else).
 */
const OTHER_STATUS = 10;
const STATUS_SLOT = new Uint16Array(1000);
const SLOT_LABEL: string[] = ['0'];
for (let c = 1; c <= 9; c++) SLOT_LABEL[c] = `${c}xx`;
SLOT_LABEL[OTHER_STATUS] = 'other';
for (let s = 1; s < 1000; s++) STATUS_SLOT[s] = s < 100 ? OTHER_STATUS : Math.floor(s / 100);
for (const code of Object.keys(STATUS_CODES).map(Number)) {
  STATUS_SLOT[code] = code;
  SLOT_LABEL[code] = String(code);
}

/**
 * Named statuses kept per route and method; past them a status is folded into its class too. A
 * route answers a handful; a backend relaying the caller's choice made each route and method 74
 * label sets, and with 14 such routes the scrape was back at the cap (18.9 MiB, 1 s of event loop).
 * Which statuses get their label is the order they first came in: the class cells keep the rest.
 */
const NAMED_STATUSES_PER_METHOD = 16;

/** Cells refused past the cap: `warden_metric_cells_refused_total{metric}`. */
export const CELLS_REFUSED_METRIC = 'warden_metric_cells_refused_total';

export class RequestDurations {
  /**
   * By route id (the plan's own strings), then by method index × 1000 + status slot: no key string is
   * built per request.
   */
  private readonly byRoute = new Map<string, RouteCells>();
  private size = 0;
  /** Observations of a label set the cap kept out: counted, never silent. */
  private refused = 0;

  constructor(
    /**
     * Label sets kept; past it a new one is not recorded. Routes come from the plan, methods and
     * statuses are folded (at most 16 named statuses and 11 classes × 10 methods a route), so this guards memory.
     */
    private readonly maxCells = 10_000,
    /** Told once, when the cap first keeps a label set out. */
    private readonly onFull?: (maxCells: number) => void,
  ) {}

  observe(route: string, method: string, status: number, seconds: number): void {
    let routeCells = this.byRoute.get(route);
    if (routeCells === undefined) this.byRoute.set(route, (routeCells = { cells: new Map(), named: new Uint8Array(METHODS.length) }));
    const { cells, named } = routeCells;
    const m = METHOD_INDEX.get(method) ?? OTHER;
    let slot = STATUS_SLOT[status] ?? OTHER_STATUS;
    let key = m * 1000 + slot;
    let cell = cells.get(key);
    if (cell === undefined && slot >= 100 && (named[m] as number) >= NAMED_STATUSES_PER_METHOD) {
      slot = Math.floor(slot / 100);
      key = m * 1000 + slot;
      cell = cells.get(key);
    }
    if (cell === undefined) {
      if (this.size >= this.maxCells) {
        if (this.refused++ === 0) this.onFull?.(this.maxCells);
        return;
      }
      this.size++;
      if (slot >= 100) (named[m] as number)++;
      cell = {
        route,
        method: METHODS[m] as string,
        status: SLOT_LABEL[slot] as string,
        code: slot === 0 || slot >= 100 ? slot : undefined,
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
    for (const { cells } of this.byRoute.values()) yield* cells.values();
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
    // Read at scrape time, as the histogram is: the request path only counts.
    let reported = 0;
    const refused = new Counter({
      name: CELLS_REFUSED_METRIC,
      help: `Observations not recorded because their metric had reached its cap of label sets, by metric (${REQUEST_DURATION_METRIC}: ${this.maxCells}).`,
      labelNames: ['metric'] as const,
      registers: [registry],
      collect: () => {
        if (this.refused > reported) refused.inc({ metric: REQUEST_DURATION_METRIC }, this.refused - reported);
        reported = this.refused;
      },
    });
    refused.inc({ metric: REQUEST_DURATION_METRIC }, 0); // the series from the start
  }

  private promValues(forText: boolean): PromValue[] {
    const values: PromValue[] = [];
    const bucket = `${REQUEST_DURATION_METRIC}_bucket`;
    for (const c of this.snapshot()) {
      const labels = { route: c.route, method: c.method, status: c.status };
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
