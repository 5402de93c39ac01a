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
import { createRequire } from 'node:module';
import type { RE2 as Re2Class } from 're2-wasm';
import { isBacktrackLinear, SPACE } from './backtrack-linear.js';

/**
 * Loaded on the first pattern that needs it: instantiating its WebAssembly costs ~8 MiB of RSS,
 * which a document whose patterns all stay on V8 (or that has none) need not pay.
 */
let re2Class: typeof Re2Class | undefined;
const re2 = (): typeof Re2Class => (re2Class ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: typeof Re2Class }).RE2);

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
const wasmObjects = new FinalizationRegistry<{ delete(): void }>((wrapped) => wrapped.delete());

/** A pattern on RE2; throws SyntaxError when RE2 cannot compile it. */
export function re2Pattern(pattern: string, flags: string): { test(s: string): boolean } {
  const RE2 = re2();
  const re = new RE2(withJavaScriptMeanings(pattern), flags.includes('u') ? flags : `${flags}u`);
  const wrapped = (re as unknown as { wrapper?: { delete(): void } }).wrapper;
  if (wrapped) wasmObjects.register(re, wrapped);
  return re;
}

/** What keeps the pattern from running here, in a sentence; undefined when it runs. */
export function patternProblem(pattern: string): string | undefined {
  try {
    new RegExp(pattern, 'u');
  } catch (err) {
    return `is not a regular expression: ${(err as Error).message}`;
  }
  if (isBacktrackLinear(pattern)) return undefined;
  try {
    re2Pattern(pattern, 'u');
    return undefined;
  } catch (err) {
    const reason = (err as Error).message.replace(/^Invalid regular expression: \/.*\/u?: /s, '');
    return `cannot run on a linear-time engine (RE2: ${reason}); lookahead, lookbehind and backreferences can take exponential time on a caller's value and are refused — rewrite the pattern without them`;
  }
}

/** ajv's `code.regExp`: `code` names it in standalone code, which Warden does not generate. */
export type RegExpEngine = ((pattern: string, flags: string) => { test(s: string): boolean }) & { code: string };

/** An engine for one set of validators (one generation): a pattern used again is compiled once. */
export function createPatternEngine(): RegExpEngine {
  const compiled = new Map<string, { test(s: string): boolean }>();
  const engine = (pattern: string, flags: string) => {
    const key = `${flags}/${pattern}`;
    let rx = compiled.get(key);
    if (rx === undefined) compiled.set(key, (rx = isBacktrackLinear(pattern) ? new RegExp(pattern, flags) : re2Pattern(pattern, flags)));
    return rx;
  };
  return Object.assign(engine, { code: 'warden-pattern-engine' });
}
