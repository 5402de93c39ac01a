/**
 * How much slower than an idle host this one is running now: the 1-minute load average per core,
 * at least 1. The timing bounds of the stall tests (a 10 MiB hostile body must not hold the event
 * loop past N ms) are scaled by it: they catch a quadratic reading (seconds to hours at 10 MiB),
 * not a host whose two cores run ten processes (a CI run beside other work measured every such
 * bound 1.1–2× over, and nothing else failed).
 */
import { availableParallelism, loadavg } from 'node:os';

export function hostSlowdown(): number {
  return Math.max(1, (loadavg()[0] ?? 0) / availableParallelism());
}
