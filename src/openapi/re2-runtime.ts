/**
 * The re2-wasm module instance the RE2 patterns compile into, and its replacement when it breaks.
 *
 * re2-wasm is built with a fixed 16 MiB WebAssembly memory (no growth, an aborting malloc): when
 * a compile, a match or a DFA cache needs more, emscripten aborts with a WebAssembly.RuntimeError
 * that unwinds past the C++ frames, so what they held (a copy of the input) is never freed. A
 * process whose heap filled that way answered 500 to every later value on every RE2 pattern
 * (red team 25 F1). The module is not MODULARIZE'd, but requiring it afresh (its require cache
 * cleared) instantiates a new memory: an aborted instance is dropped and the patterns compiled in
 * it recompile on their next use (pattern-engine.ts). If no instance can be made, the engine is
 * broken: /readyz says so (`patternEngineFailure`) and the listeners hear it once.
 */
import { createRequire } from 'node:module';
import type { RE2 as Re2Class } from 're2-wasm';

const require = createRequire(import.meta.url);

/** A pattern compiled into an instance, told when that instance is dropped. */
export interface CompiledIn {
  /** The instance it was compiled into is gone: compile again before the next test. */
  drop(): void;
}

interface Instance {
  readonly RE2: typeof Re2Class;
  readonly malloc: (bytes: number) => number;
  readonly free: (pointer: number) => void;
  /** Weak: a reload's patterns go with their generation; these are told when the instance goes. */
  readonly compiled: Set<WeakRef<CompiledIn>>;
  /** The engine that asked for this instance (pattern-engine.ts: a document refused only on an instance of its own). */
  readonly owner: unknown;
}

let instance: Instance | undefined;
let failure: string | undefined;
const failureListeners: ((reason: string) => void)[] = [];
/** The last line emscripten printed: it prints an abort's reason before throwing it. */
let lastPrinted = '';

/** Emscripten binds console.log and console.warn when the module loads: these go nowhere but lastPrinted. */
function quietRequire(): { RE2: typeof Re2Class; malloc: (n: number) => number; free: (p: number) => void } {
  for (const key of Object.keys(require.cache)) if (key.includes(`${'node_modules'}/re2-wasm/`)) delete require.cache[key];
  const { log, warn } = console;
  const keep = (...args: unknown[]) => void (lastPrinted = args.map(String).join(' ').split('\n', 1)[0] ?? '');
  console.log = keep;
  console.warn = keep;
  try {
    const { RE2 } = require('re2-wasm') as { RE2: typeof Re2Class };
    const wasm = require('re2-wasm/build/wasm/re2.js') as { _malloc: (n: number) => number; _free: (p: number) => void };
    return { RE2, malloc: wasm._malloc, free: wasm._free };
  } finally {
    console.log = log;
    console.warn = warn;
  }
}

/**
 * The current instance, loaded on the first pattern that needs it (instantiating costs ~8 MiB of
 * RSS, which a document whose patterns all stay on V8 need not pay). Throws PatternEngineBroken.
 */
export function re2Instance(owner?: unknown): Instance {
  if (instance) return instance;
  if (failure !== undefined) throw new PatternEngineBroken(failure);
  try {
    const loaded = quietRequire();
    return (instance = { ...loaded, compiled: new Set(), owner });
  } catch (err) {
    const reason = `re2-wasm cannot be instantiated: ${oneLine(err)}`;
    failure = reason;
    for (const listener of failureListeners) listener(reason);
    throw new PatternEngineBroken(reason);
  }
}

/** Drops the current instance (it aborted, or a document needs one of its own): its patterns recompile on their next use. */
export function dropRe2Instance(): void {
  const old = instance;
  instance = undefined;
  for (const ref of old?.compiled ?? []) ref.deref()?.drop();
}

/** Whether `bytes` can still be allocated at once in the instance (a failed malloc aborts, and leaves nothing behind). */
export function hasRoomFor(bytes: number): boolean {
  const current = instance;
  if (!current) return true;
  try {
    const pointer = current.malloc(bytes);
    if (pointer === 0) return false;
    current.free(pointer);
    return true;
  } catch (err) {
    if (isAbort(err)) return false;
    throw err;
  }
}

// Not in the TypeScript libs the project uses (no DOM).
const { RuntimeError } = (globalThis as unknown as { WebAssembly: { RuntimeError: new () => Error } }).WebAssembly;

/** Emscripten's abort (out of memory, mostly): a WebAssembly.RuntimeError. */
export const isAbort = (err: unknown): boolean => err instanceof RuntimeError;

/** An error's message on one line: emscripten's abort text carries a stack and advice to recompile. */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = (message.split('\n', 1)[0] ?? '').replace(/^abort\((.*?)(\) at .*)?$/, '$1');
  const oom = /Cannot enlarge memory arrays to size (\d+) bytes/.exec(first);
  return oom ? `out of memory (needed ${oom[1]} bytes of its 16 MiB)` : first.slice(0, 300) || lastPrinted.slice(0, 300);
}

/** Why RE2 patterns cannot run in this process any more; undefined while they can. */
export const patternEngineFailure = (): string | undefined => failure;

/** Called once, when the engine breaks for good (the sidecar logs it). */
export function onPatternEngineFailure(listener: (reason: string) => void): void {
  failureListeners.push(listener);
}

/** RE2 cannot run in this process: 503, the sidecar is not ready. */
export class PatternEngineBroken extends Error {
  constructor(readonly reason: string) {
    super(`the linear-time pattern engine is unavailable: ${reason}`);
  }
}

/** Tests: the engine as if the next instantiation failed with `reason`. */
export function breakPatternEngineForTests(reason: string | undefined): void {
  failure = reason;
  if (reason !== undefined) {
    dropRe2Instance();
    for (const listener of failureListeners) listener(reason);
  }
}
