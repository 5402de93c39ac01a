/**
 * Runs a route's stages in order. Synchronous stages stay synchronous (no promise per request on
 * the common path); the first asynchronous one switches the rest of the run onto promises.
 */
import { WardenError } from '../errors.js';
import type { RequestContext, Stage, Verdict } from './stage.js';

export function runStages(stages: readonly Stage[], ctx: RequestContext, from = 0): Verdict | Promise<Verdict> {
  for (let i = from; i < stages.length; i++) {
    const verdict = (stages[i] as Stage).run(ctx);
    if (verdict === undefined) continue;
    if (verdict instanceof WardenError) return verdict;
    const next = i + 1;
    return verdict.then((v) => (v === undefined ? runStages(stages, ctx, next) : v));
  }
  return undefined;
}
