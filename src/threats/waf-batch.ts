/**
 * Inspections of the requests that finish arriving in the same event-loop turn, run through
 * libddwaf together. A call into @datadog/native-appsec has a fixed cost (converting the input and
 * the result between JavaScript and C, a context) larger than inspecting a small request's
 * strings, so one call for a turn's requests instead of one each: about half the cost per request
 * in batches of 8 (`node bench/waf-stage.js`), and the waf's throughput under load from 0.70 to
 * 0.85 of the pipeline without it (`node bench/threats.js`, docs/threats.md). The verdict is the
 * one inspecting the request alone gives:
 *
 * - the batch is run once, as one list, under one request's budget;
 * - no match and no timeout: every request in it is clean (each rule is a test of one string);
 * - otherwise each request is inspected again on its own, so an attack is named by the same rule,
 *   path and budget as without batching, and a slow request cannot spend its neighbours' budget.
 *
 * Requests wait only until the end of the turn's I/O (`setImmediate`), never for a timer.
 */

/** A verdict: undefined for clean input. */
export interface BatchableWaf<Found> {
  /** One request's verdict. */
  inspect(texts: readonly string[]): Found | undefined;
  /** Whether no rule matches any of the texts within one request's budget (a single libddwaf call). */
  allClean(texts: readonly string[]): boolean;
}

interface Pending<Found> {
  readonly texts: readonly string[];
  resolve(found: Found | undefined): void;
  reject(err: unknown): void;
}

export interface WafBatcher<Found> {
  inspect(texts: readonly string[]): Promise<Found | undefined>;
  /** Runs what is queued now (before the engine is disposed). */
  flush(): void;
}

/** @param maxTexts strings per batch: what one libddwaf call takes as one flat list. */
export function createWafBatcher<Found>(waf: BatchableWaf<Found>, maxTexts: number): WafBatcher<Found> {
  let queue: Pending<Found>[] = [];
  let scheduled = false;

  const settle = (p: Pending<Found>, verdict: () => Found | undefined) => {
    try {
      p.resolve(verdict());
    } catch (err) {
      p.reject(err);
    }
  };

  const runBatch = (batch: readonly Pending<Found>[]) => {
    if (batch.length === 1) return settle(batch[0] as Pending<Found>, () => waf.inspect((batch[0] as Pending<Found>).texts));
    let clean: boolean;
    try {
      clean = waf.allClean(batch.flatMap((p) => p.texts));
    } catch {
      clean = false;
    }
    for (const p of batch) settle(p, () => (clean ? undefined : waf.inspect(p.texts)));
  };

  const flush = () => {
    scheduled = false;
    const pending = queue;
    queue = [];
    let batch: Pending<Found>[] = [];
    let size = 0;
    for (const p of pending) {
      if (batch.length > 0 && size + p.texts.length > maxTexts) {
        runBatch(batch);
        batch = [];
        size = 0;
      }
      batch.push(p);
      size += p.texts.length;
    }
    if (batch.length > 0) runBatch(batch);
  };

  return {
    inspect(texts) {
      return new Promise<Found | undefined>((resolve, reject) => {
        queue.push({ texts, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    flush() {
      if (queue.length > 0) flush();
    },
  };
}
