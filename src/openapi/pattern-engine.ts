/**
 * The regular-expression engine of the OpenAPI validators (ajv's `code.regExp`): a schema's
 * `pattern` and `patternProperties` run on the caller's strings, and JavaScript's backtracking
 * RegExp takes exponential time on some of them — `^([a-zA-Z0-9]+\s?)*$` held the event loop
 * 10–12 s on a 32-byte query value (docs/adversarial.md defect 115). Patterns run on RE2 (Google's
 * linear-time engine, as WebAssembly: re2-wasm), except those V8 provably runs in linear time
 * (backtrack-linear.ts), which keep V8's faster RegExp. RE2 has no lookaround and no
 * backreferences: a pattern that needs them is refused at load (`patternProblem`).
 *
 * RE2 reads `\s`, `\S` and `.` otherwise than JavaScript (ASCII whitespace; `.` takes `\r` and
 * U+2028): they are rewritten to JavaScript's meaning, so the verdicts are the document's.
 */
import { isBacktrackLinear, SPACE } from './backtrack-linear.js';
import { dropRe2Instance, hasRoomFor, isAbort, oneLine, re2Instance, type CompiledIn } from './re2-runtime.js';

/**
 * The longest string (in UTF-16 units, as `s.length`) a pattern on RE2 is tested on: a longer one
 * is refused (PatternInputRefused, 400 at its pointer). RE2 runs in a 16 MiB WebAssembly memory
 * (re2-runtime.ts) of which ~11 MiB is heap, and a test needs up to ~6 bytes of it per unit
 * (measured: 1.9 Mi units of U+20AC, 3 bytes each in UTF-8, was the most a fresh instance took,
 * 2.9 Mi ASCII ones): 512 Ki units need at most 3 MiB, which LOAD_RESERVE keeps free with as much
 * again for DFA caches. A base64 value of 384 KiB passes; a larger value should not be matched by
 * a pattern but by maxLength, contentEncoding, or the malware scan.
 */
export const MAX_PATTERN_INPUT = 512 * 1024;

/** What a document's patterns must leave free in the instance, at once: a test on a MAX_PATTERN_INPUT value and DFA caches. */
export const LOAD_RESERVE = 6 * 1024 * 1024;

const hex = (n: number) => `\\x{${n.toString(16)}}`;
const SPACE_ITEMS = SPACE.map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`)).join('');
const DOT = '[^\\x{a}\\x{d}\\x{2028}\\x{2029}]';

/** The pattern in RE2's syntax with JavaScript's `\s`, `\S` and `.`; throws for `\S` inside a class (RE2 would read it as ASCII). */
function withJavaScriptMeanings(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '\\') {
      const e = pattern[i + 1] ?? '';
      i++;
      if (e === 's') out += inClass ? SPACE_ITEMS : `[${SPACE_ITEMS}]`;
      else if (e === 'S' && !inClass) out += `[^${SPACE_ITEMS}]`;
      else if (e === 'S') throw new SyntaxError('\\S inside a character class; write the class with [^\\s…] instead');
      else out += c + e;
    } else if (c === '[' && !inClass) {
      inClass = true;
      out += c;
      if (pattern[i + 1] === '^') out += pattern[++i];
      if (pattern[i + 1] === ']') out += pattern[++i]; // `[]` and `[^]`: RE2 reports them
    } else if (c === ']' && inClass) {
      inClass = false;
      out += c;
    } else out += c === '.' && !inClass ? DOT : c;
  }
  return out;
}

/**
 * RE2 objects live in WebAssembly memory, which no garbage collection frees: each is deleted when
 * the JavaScript object holding it goes (a reload drops the previous generation's patterns).
 */
const wasmObjects = new FinalizationRegistry<{ delete(): void }>((wrapped) => {
  try {
    wrapped.delete();
  } catch {
    // its instance aborted and was dropped: its memory goes with it
  }
});

type Compiled = { test(s: string): boolean };

/** Compiles into the current instance; throws SyntaxError when RE2 cannot compile it, a RuntimeError when it aborts. */
function compileRe2(source: string, flags: string, owner?: unknown): Compiled {
  const RE2 = re2Instance(owner).RE2;
  const re = new RE2(source, flags.includes('u') ? flags : `${flags}u`);
  const wrapped = (re as unknown as { wrapper?: { delete(): void } }).wrapper;
  if (wrapped) wasmObjects.register(re, wrapped);
  return re;
}

/** A caller's string a pattern was not tested on: 400 at its pointer (request-validator.ts finds it). */
export class PatternInputRefused extends Error {
  constructor(
    readonly value: string,
    readonly why: string,
  ) {
    super(why);
  }
}

/**
 * A pattern on RE2 that outlives its instance: when the instance aborts (out of memory), it is
 * dropped and this compiles again into a fresh one, and the test that aborted is run once more
 * there. Only a value that aborts a fresh instance on its own is refused (PatternInputRefused).
 */
class Re2Handle implements CompiledIn {
  private re: Compiled | undefined;
  private readonly ref = new WeakRef<CompiledIn>(this);

  constructor(
    private readonly source: string,
    private readonly flags: string,
    private readonly owner?: unknown,
  ) {
    this.re = this.compile();
  }

  drop(): void {
    this.re = undefined;
  }

  /** Into the current instance, now (a document's patterns moved to an instance of their own). */
  compileAgain(): void {
    this.compile();
  }

  private compile(): Compiled {
    const re = compileRe2(this.source, this.flags, this.owner);
    re2Instance().compiled.add(this.ref);
    return (this.re = re);
  }

  test(s: string): boolean {
    if (s.length > MAX_PATTERN_INPUT)
      throw new PatternInputRefused(s, `is longer than ${MAX_PATTERN_INPUT} characters, the most a pattern is tested on`);
    try {
      return (this.re ?? this.compile()).test(s);
    } catch (err) {
      if (!isAbort(err)) throw err;
    }
    dropRe2Instance();
    try {
      return this.compile().test(s);
    } catch (err) {
      if (!isAbort(err)) throw err;
      dropRe2Instance();
      throw new PatternInputRefused(s, `is too costly for the pattern engine (${oneLine(err)})`);
    }
  }
}

/** A pattern on RE2 in JavaScript's meanings of `\s`, `\S` and `.`; throws SyntaxError when RE2 cannot compile it. */
export function re2Pattern(pattern: string, flags: string, owner?: unknown): Compiled {
  return new Re2Handle(withJavaScriptMeanings(pattern), flags, owner);
}

/** One line for a document whose patterns do not fit in RE2's memory. */
const tooManyPatterns = (count: number) =>
  `the document's patterns need more memory than the linear-time engine (RE2) has: ${count} of them run there, and with this one ` +
  `less than ${LOAD_RESERVE / 1024 / 1024} MiB of its 16 MiB would stay free for a request's values; use fewer or simpler patterns`;

/** Thrown at load: the document has too many or too large patterns for RE2's fixed memory. */
export class PatternsOverBudget extends Error {}

/** What keeps the pattern from running here, in a sentence; undefined when it runs. */
export function patternProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    return `is not a regular expression: ${(err as Error).message}`;
  }
  if (isBacktrackLinear(pattern)) return undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      // Deleted at once: copies waiting for the garbage collector filled RE2's memory at load.
      const RE2 = re2Instance().RE2;
      const re = new RE2(withJavaScriptMeanings(pattern), 'u');
      (re as unknown as { wrapper?: { delete(): void } }).wrapper?.delete();
      return undefined;
    } catch (err) {
      if (isAbort(err)) {
        dropRe2Instance();
        if (attempt === 0) continue;
        return `is too large for the linear-time engine (RE2: ${oneLine(err)})`;
      }
      const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/u?: /s, '');
      return `cannot run on a linear-time engine (RE2: ${reason}); lookahead, lookbehind and backreferences can take exponential time on a caller's value and are refused — rewrite the pattern without them`;
    }
  }
}

/** ajv's `code.regExp`: `code` names it in standalone code, which Warden does not generate. */
export type RegExpEngine = ((pattern: string, flags: string) => { test(s: string): boolean }) & { code: string };

/**
 * An engine for one set of validators (one generation): a pattern used again is compiled once.
 * Its RE2 patterns must leave LOAD_RESERVE free in the instance: when they do not, on an instance
 * that also holds another generation's, they move to a fresh one (the others recompile there on
 * their next use); on one of their own, the document is refused (PatternsOverBudget, one line).
 */
export function createPatternEngine(): RegExpEngine {
  const compiled = new Map<string, Compiled>();
  const onRe2: Re2Handle[] = [];
  const owner = {};
  const fits = () => re2Instance(owner).owner === owner && hasRoomFor(LOAD_RESERVE);
  const onOwnInstance = () => {
    dropRe2Instance();
    re2Instance(owner);
    for (const handle of onRe2) handle.compileAgain();
  };
  const newRe2 = (pattern: string, flags: string): Re2Handle => {
    let handle: Re2Handle;
    try {
      handle = new Re2Handle(withJavaScriptMeanings(pattern), flags, owner);
    } catch (err) {
      if (!isAbort(err)) throw err;
      if (re2Instance(owner).owner === owner) throw new PatternsOverBudget(tooManyPatterns(onRe2.length + 1));
      onOwnInstance();
      return newRe2(pattern, flags);
    }
    onRe2.push(handle);
    if (hasRoomFor(LOAD_RESERVE)) return handle;
    if (re2Instance(owner).owner !== owner) {
      try {
        onOwnInstance();
      } catch (err) {
        if (!isAbort(err)) throw err;
      }
      if (fits()) return handle;
    }
    dropRe2Instance(); // what this document compiled goes; the generation in force recompiles on use
    throw new PatternsOverBudget(tooManyPatterns(onRe2.length));
  };
  const engine = (pattern: string, flags: string) => {
    const key = `${flags}/${pattern}`;
    let rx = compiled.get(key);
    if (rx === undefined) compiled.set(key, (rx = isBacktrackLinear(pattern) ? new RegExp(pattern, flags) : newRe2(pattern, flags)));
    return rx;
  };
  return Object.assign(engine, { code: 'warden-pattern-engine' });
}
