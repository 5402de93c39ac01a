/**
 * Whether JavaScript's backtracking RegExp runs a pattern in linear time, for the patterns most
 * OpenAPI documents use (`^[A-Z0-9-]{3,20}$`, `^\d{4}-\d{2}-\d{2}$`, `^\+?[1-9]\d{1,14}$`): those keep
 * V8's RegExp, which tests a short string ~50× faster than RE2 through WebAssembly; every other
 * pattern runs on RE2 (pattern-engine.ts).
 *
 * Accepted: `^`, then characters, escapes, classes and `.`, each with an optional greedy quantifier,
 * then an optional `$`. No groups, alternation or lookaround. And where a quantifier may stop at
 * several lengths, no character it takes may start what follows it (up to and including the next
 * atom that must match): then a character it gives back can only fail the rest at once, so each
 * position is taken once and given back at most once, and `^` allows one start. Anything this
 * does not recognise is answered false: the rule only has to be sure when it says true.
 */
type Ranges = readonly (readonly [number, number])[];

const MAX = 0x10ffff;
const DIGIT: Ranges = [[48, 57]];
const WORD: Ranges = [
  [48, 57],
  [65, 90],
  [95, 95],
  [97, 122],
];
/** JavaScript's `\s`: WhiteSpace and LineTerminator (ECMA-262 §22.2.2.9). */
export const SPACE: Ranges = [
  [9, 13],
  [32, 32],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Ranges = [
  [10, 10],
  [13, 13],
  [0x2028, 0x2029],
];
const CONTROL: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13 };
const SYNTAX = '^$\\.*+?()[]{}|/-';

function complement(set: Ranges): Ranges {
  const sorted = [...set].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX) out.push([next, MAX]);
  return out;
}

const intersects = (a: Ranges, b: Ranges) => a.some(([lo, hi]) => b.some(([l, h]) => lo <= h && l <= hi));

/** A pattern read as far as this rule needs: code points and the position. */
class Reader {
  private i = 0;
  constructor(private readonly s: string) {}
  get done() {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.done ? '' : String.fromCodePoint(this.s.codePointAt(this.i) as number);
  }
  next(): string {
    const c = this.peek();
    this.i += c.length;
    return c;
  }
  /** `\u{…}`, `\uXXXX`, `\xHH` after the backslash and letter; undefined if malformed. */
  hex(digits: number | 'braced'): number | undefined {
    const m = (digits === 'braced' ? /^\{([0-9a-fA-F]{1,6})\}/ : new RegExp(`^[0-9a-fA-F]{${digits}}`)).exec(this.s.slice(this.i));
    if (!m) return undefined;
    this.i += m[0].length;
    const n = parseInt(m[1] ?? m[0], 16);
    return n <= MAX ? n : undefined;
  }
}

/** An escape's characters, after the backslash; undefined for one this rule does not take (\b, \p, \1, …). */
function escape(r: Reader, inClass: boolean): Ranges | undefined {
  const c = r.next();
  const single = (n: number | undefined): Ranges | undefined => (n === undefined ? undefined : [[n, n]]);
  if (c === 'd') return DIGIT;
  if (c === 'D') return complement(DIGIT);
  if (c === 'w') return WORD;
  if (c === 'W') return complement(WORD);
  if (c === 's') return SPACE;
  if (c === 'S') return complement(SPACE);
  if (c in CONTROL) return single(CONTROL[c]);
  if (c === 'u') return single(r.peek() === '{' ? r.hex('braced') : r.hex(4));
  if (c === 'x') return single(r.hex(2));
  if (c === '0' && !/[0-9]/.test(r.peek())) return single(0);
  if (c === 'b' && inClass) return single(8);
  if (c !== '' && SYNTAX.includes(c)) return single(c.codePointAt(0));
  return undefined;
}

function charClass(r: Reader): Ranges | undefined {
  const negated = r.peek() === '^';
  if (negated) r.next();
  const set: (readonly [number, number])[] = [];
  const atom = (): Ranges | undefined => {
    const c = r.next();
    if (c === '' || c === '[') return undefined;
    if (c === '\\') return escape(r, true);
    const n = c.codePointAt(0) as number;
    return [[n, n]];
  };
  while (r.peek() !== ']') {
    const from = atom();
    if (!from) return undefined;
    if (r.peek() === '-') {
      r.next();
      if (r.peek() === ']') {
        set.push(...from, [45, 45]);
        continue;
      }
      const to = atom();
      const [a, b] = [from[0], to?.[0]];
      if (from.length !== 1 || to?.length !== 1 || !a || !b || a[0] !== a[1] || b[0] !== b[1] || a[0] > b[0]) return undefined;
      set.push([a[0], b[0]]);
    } else set.push(...from);
  }
  r.next();
  if (set.length === 0) return undefined;
  return negated ? complement(set) : set;
}

interface Atom {
  readonly set: Ranges;
  readonly min: number;
  readonly max: number;
}

function quantifier(r: Reader): [number, number] | undefined {
  const c = r.peek();
  let q: [number, number] | undefined;
  if (c === '?' || c === '*' || c === '+') {
    r.next();
    q = c === '?' ? [0, 1] : c === '*' ? [0, Infinity] : [1, Infinity];
  } else if (c === '{') {
    let text = '';
    while (!r.done && r.peek() !== '}') text += r.next();
    r.next();
    const m = /^\{(\d+)(,(\d*))?$/.exec(text);
    if (!m) return undefined;
    q = [Number(m[1]), m[2] === undefined ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3])];
  } else return [1, 1];
  // Lazy quantifiers change the order of the tries; not taken here.
  return r.peek() === '?' || r.peek() === '+' || r.peek() === '*' || r.peek() === '{' ? undefined : q;
}

function atoms(pattern: string): Atom[] | undefined {
  const r = new Reader(pattern);
  if (r.next() !== '^') return undefined;
  const out: Atom[] = [];
  while (!r.done) {
    const c = r.next();
    let set: Ranges | undefined;
    if (c === '$') return r.done ? out : undefined;
    if (c === '\\') set = escape(r, false);
    else if (c === '[') set = charClass(r);
    else if (c === '.') set = complement(LINE_TERMINATORS);
    else if (!SYNTAX.includes(c) || c === '-' || c === '/') set = [[c.codePointAt(0) as number, c.codePointAt(0) as number]];
    if (!set) return undefined;
    const q = quantifier(r);
    if (!q) return undefined;
    out.push({ set, min: q[0], max: q[1] });
  }
  return out;
}

export function isBacktrackLinear(pattern: string): boolean {
  const list = atoms(pattern);
  if (!list) return false;
  for (let i = 0; i < list.length; i++) {
    const a = list[i] as Atom;
    if (a.min === a.max) continue;
    // What may follow: the next atoms up to and including the first that must match.
    for (let j = i + 1; j < list.length; j++) {
      const b = list[j] as Atom;
      if (intersects(a.set, b.set)) return false;
      if (b.min > 0) break;
    }
  }
  return true;
}
