/**
 * The budget every fuzz property runs under, and one way to run and report a property.
 *
 *  WARDEN_FUZZ_SECONDS  wall-clock seconds per property (default 1: the whole test/fuzz folder stays
 *                       well under 30 s in CI). When set, a property runs until its time is up
 *                       (long mode: WARDEN_FUZZ_SECONDS=300); when unset, it also stops after its
 *                       own small number of runs.
 *  WARDEN_FUZZ_SEED     seed for every property of the run (default: random, always printed), so a
 *                       failure reproduces with `WARDEN_FUZZ_SEED=<seed> npx tap test/fuzz/<file>`.
 */
import fc from 'fast-check';

/** The part of tap's Test a property reports to. */
interface Reporter {
  comment(...message: unknown[]): void;
  pass(message: string): void;
  fail(message: string): void;
}

const DEFAULT_SECONDS = 1;

function positiveNumber(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return n;
}

const secondsFromEnv = positiveNumber(process.env.WARDEN_FUZZ_SECONDS, 'WARDEN_FUZZ_SECONDS');
const seedFromEnv = positiveNumber(process.env.WARDEN_FUZZ_SEED, 'WARDEN_FUZZ_SEED');

/** Seconds each property may run. */
export const fuzzSeconds = secondsFromEnv ?? DEFAULT_SECONDS;
/** The seed of this run: the same for every property, so one number reproduces a failing file. */
export const fuzzSeed = seedFromEnv === undefined ? (Date.now() ^ (Math.random() * 0x7fffffff)) >>> 0 : Math.floor(seedFromEnv);
/** True when the budget was given explicitly: runs are then bounded by time only. */
export const longMode = secondsFromEnv !== undefined;

export interface FuzzOptions {
  /** Runs in the default (CI) mode; ignored in long mode, where time is the only bound. */
  runs?: number;
}

function parameters<T>(options: FuzzOptions): fc.Parameters<T> {
  return {
    seed: fuzzSeed,
    numRuns: longMode ? Number.MAX_SAFE_INTEGER : (options.runs ?? 200),
    interruptAfterTimeLimit: fuzzSeconds * 1000,
    // Running out of time is the budget working, not a failure.
    markInterruptAsFailure: false,
  };
}

function report<T>(t: Reporter, name: string, details: fc.RunDetails<T>): void {
  t.comment(`fuzz ${name}: seed=${fuzzSeed} runs=${details.numRuns}${details.interrupted ? ' (time budget reached)' : ''}`);
  if (details.failed) t.fail(fc.defaultReportMessage(details) ?? `property ${name} failed (seed ${fuzzSeed})`);
  // A property that never ran asserted nothing.
  else if (details.numRuns === 0) t.fail(`property ${name} ran 0 times within ${fuzzSeconds}s`);
  else t.pass(`${name} held for ${details.numRuns} runs`);
}

/** Checks a synchronous property within the budget; prints seed and runs; fails with the counterexample. */
export function fuzz<Ts extends [unknown, ...unknown[]]>(
  t: Reporter,
  name: string,
  arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => boolean | void,
  options: FuzzOptions = {},
): void {
  const property = fc.property(...arbitraries, predicate);
  report(t, name, fc.check(property, parameters<Ts>(options)));
}

/** The same for an asynchronous property. */
export async function fuzzAsync<Ts extends [unknown, ...unknown[]]>(
  t: Reporter,
  name: string,
  arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => Promise<boolean | void>,
  options: FuzzOptions = {},
): Promise<void> {
  const property = fc.asyncProperty(...arbitraries, predicate);
  report(t, name, await fc.check(property, parameters<Ts>(options)));
}

/** Describes what a call threw, for assertion messages. */
export function describeThrown(err: unknown): string {
  if (err instanceof Error) return `${err.name}${'code' in err ? ` ${String(err.code)}` : ''}: ${err.message.split('\n')[0]}`;
  return `non-Error thrown: ${String(err)}`;
}
