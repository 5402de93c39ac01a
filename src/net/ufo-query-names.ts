/**
 * The names ufo reads from query pairs that start with `=` (red team 28, F1). h3 1.x's `getQuery` —
 * the server layer of Nitro 2, Nuxt 3, Vinxi and SolidStart, and any app calling ufo's `getQuery` —
 * is ufo's `parseQuery`, which splits each `&`-separated pair with the unanchored
 * `/([^=]+)=?(.*)/`: a pair's leading `=` signs are skipped, so `=limit=1000` is `limit=1000` to it,
 * where URLSearchParams (every other reader here) reads an empty name holding `limit=1000`. Every
 * other pair ufo reads as URLSearchParams does (the name up to the first `=`; ufo's all-or-nothing
 * decoding yields no name the lenient one does not).
 *
 * The name is ufo's: up to the next raw `=` (or the pair's end), `+` a space, then
 * decodeURIComponent, kept as sent when that throws; a pair of `=` signs only has none, and ufo
 * drops `__proto__` and `constructor`. One pass over the query, however hostile.
 */

/** ufo's names of the pairs of `query` (without its `?`) that start with `=`; empty for most queries, which have none. */
export function ufoQueryNames(query: string): string[] {
  const names: string[] = [];
  // Most queries have no such pair: one scan for a pair starting with `=`.
  if (query.charCodeAt(0) !== 0x3d /* = */ && !query.includes('&=')) return names;
  let i = 0;
  while (i < query.length) {
    // At a pair's start.
    if (query.charCodeAt(i) !== 0x3d) {
      i = skipPair(query, i);
      continue;
    }
    while (i < query.length && query.charCodeAt(i) === 0x3d) i++;
    const start = i;
    while (i < query.length && query.charCodeAt(i) !== 0x3d && query.charCodeAt(i) !== 0x26 /* & */) i++;
    if (i > start) {
      const name = decoded(query.slice(start, i));
      if (name !== '__proto__' && name !== 'constructor') names.push(name);
    }
    i = skipPair(query, i);
  }
  return names;
}

/** The index past the `&` that ends the pair at or around `i` (the query's length at its last pair). */
function skipPair(query: string, i: number): number {
  while (i < query.length && query.charCodeAt(i) !== 0x26) i++;
  return i + 1;
}

function decoded(raw: string): string {
  // split and join: a third of replaceAll's time on a name of `+` signs (1 µs per 3 of them).
  const text = raw.includes('+') ? raw.split('+').join(' ') : raw;
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
