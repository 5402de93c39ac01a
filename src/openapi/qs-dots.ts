/**
 * A key as qs reads it with `allowDots`: each `.name` is `[name]`, so `.role` is `[role]` (qs drops
 * the empty parent: `role`), `role.0` is `role[0]` (an array) and `profile.role` is `profile[role]`.
 * co-body sets `allowDots: true` unless told otherwise, so every form koa-bodyparser and koa-body
 * read; restify's `queryParser`, koa-qs and the qs setups of Express and hapi take it as an option.
 * qs before 6.17 rewrites with `key.replace(/\.([^.[]+)/g, '[$1]')`; 6.17 leaves dots inside
 * brackets (`[a.b]`), where the name before the first bracket is the same, and that name is what
 * name-readings.ts compares.
 */
/** Linear: a `.` not followed by a name fails at once, and a match consumes the name. */
const DOT_NAME = /\.([^.[]+)/g;

/** The key rewritten as qs rewrites it, or undefined when it holds no `.`: then qs reads it as without allowDots. */
export const qsDotsKey = (key: string): string | undefined => (key.includes('.') ? key.replace(DOT_NAME, '[$1]') : undefined);

const DOT = 0x2e;
const OPEN = 0x5b;
const CLOSE = 0x5d;

/**
 * The name before any bracket of the rewritten key (qsDotsKey), brackets before it skipped as
 * readingOf skips them, without rewriting it: `.role`, `.]role`, `role.0`, `role.]` give `role`,
 * `role..x` gives `role.` (a `.` before another `.`, a `[` or the end stays). It is a substring of
 * the key, found in one pass. Undefined for a key without a `.`.
 */
export function qsDotsRoot(key: string): string | undefined {
  if (!key.includes('.')) return undefined;
  const n = key.length;
  // qs rewrites a `.` followed by a name: `.x` is `[x]`.
  const rewrites = (i: number) => i + 1 < n && key.charCodeAt(i + 1) !== DOT && key.charCodeAt(i + 1) !== OPEN;
  let i = 0;
  // Within a rewritten `.x`, whose name ends at the next `.` or `[` (its `]` emitted there).
  let inName = false;
  for (; i < n; i++) {
    const c = key.charCodeAt(i);
    if (inName && (c === DOT || c === OPEN)) inName = false;
    if (c === OPEN || c === CLOSE) continue;
    if (c === DOT && rewrites(i)) inName = true;
    else break;
  }
  const start = i;
  for (; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c === OPEN || c === CLOSE || (c === DOT && (inName || rewrites(i)))) break;
  }
  return key.slice(start, i);
}

/**
 * The first `limit` segments of the path qs reads a (rewritten) key as: the name before the first
 * `[` (or, when there is none, the first group's), then each `[…]` group's content; qs drops text
 * between and after groups (`user[email]x` is user, email) and keeps an unclosed group whole.
 * Each search starts where the last one ended: linear in the key.
 */
export function qsPath(key: string, limit: number): string[] {
  const path: string[] = [];
  let open = key.indexOf('[');
  if (open !== 0) path.push(open === -1 ? key : key.slice(0, open));
  while (open !== -1 && path.length < limit) {
    const close = key.indexOf(']', open + 1);
    if (close === -1) {
      path.push(key.slice(open));
      break;
    }
    path.push(key.slice(open + 1, close));
    open = key.indexOf('[', close + 1);
  }
  return path;
}

/**
 * qsPath(qsDotsKey(key) ?? key, limit) read without rewriting the key (a form key may be 10 MiB:
 * review rt26 F3), stopping at a segment longer than `max`, which ends the path as `null`: the
 * caller compares segments with declared ones no longer than `max`. Rewritten characters are read
 * one at a time, in one pass; text qs drops between groups is skipped, not kept.
 */
export function qsDotsPath(key: string, limit: number, max: number): (string | null)[] {
  const n = key.length;
  let i = 0;
  // Within a rewritten `.name`, whose `]` is emitted where the name ends (at a `.`, a `[` or the end).
  let inName = false;
  const next = (): number => {
    if (inName) {
      const c = i < n ? key.charCodeAt(i) : DOT;
      if (c !== DOT && c !== OPEN) {
        i++;
        return c;
      }
      inName = false;
      return CLOSE;
    }
    if (i >= n) return -1;
    const c = key.charCodeAt(i++);
    if (c === DOT && i < n && key.charCodeAt(i) !== DOT && key.charCodeAt(i) !== OPEN) {
      inName = true;
      return OPEN;
    }
    return c;
  };
  const path: (string | null)[] = [];
  const codes: number[] = [];
  // The characters up to `stop` (or the end); false once more than `max` (the segment too long).
  const read = (stop: number): number | false => {
    codes.length = 0;
    for (let c = next(); ; c = next()) {
      if (c === -1 || c === stop) return c;
      if (codes.length === max + 1) return false;
      codes.push(c);
    }
  };
  const segment = () => String.fromCharCode(...codes);
  let c = read(OPEN);
  if (c === false) return [null];
  if (codes.length > 0 || c === -1) path.push(segment());
  while (c === OPEN && path.length < limit) {
    c = read(CLOSE);
    // An unclosed group is kept whole, its `[` too.
    if (c === false || (c === -1 && codes.length === max)) {
      path.push(null);
      break;
    }
    if (c === -1) {
      path.push(`[${segment()}`);
      break;
    }
    path.push(segment());
    for (c = next(); c !== -1 && c !== OPEN; c = next());
  }
  return path;
}
