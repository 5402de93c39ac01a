/**
 * Marks a forwarded response as the answer to one caller (red team 29, F2). RFC 9111 §3.5 keeps a
 * shared cache from storing the response to a request with Authorization; Warden also authenticates
 * from other headers, cookies and the query, and admits by client address and certificate, none of
 * which a cache in front of it sees. Varnish's stock VCL stored such an answer under its URL and
 * served it to the next caller, anonymous ones included. On a route that makes such a decision the
 * response gets `Cache-Control: private`, unless the backend already said who may store it:
 * `private`, `no-store`, or, as §3.5 honours them, `public` and `s-maxage`. `must-revalidate`,
 * which §3.5 also honours, is not taken as that word: it is commonly sent for other reasons
 * (`max-age=0, must-revalidate`), and a fresh stored answer is served without revalidation.
 *
 * And a `Vary` naming the minted-token header varies on a value the front never sees (every caller
 * falls into its one "absent" variant): the headers the caller's token may come in are added to it.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface CacheScope {
  /** Marks the response head going to the client (the forwarder's own object). */
  mark(headers: IncomingHttpHeaders): void;
}

const COMMA = 0x2c;
const SP = 0x20;
const HTAB = 0x09;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

const isOws = (c: number) => c === SP || c === HTAB;

/** Whether the directive `name` (start..end of `value`) says who may store the response. */
function decides(value: string, start: number, end: number, qualified: boolean): boolean {
  const length = end - start;
  // Only names of these lengths are sliced: public 6, private 7, no-store and s-maxage 8.
  if (length < 6 || length > 8) return false;
  const name = value.slice(start, end).toLowerCase();
  // `private="Set-Cookie"` keeps only the fields it names from shared caches (RFC 9111 §5.2.2.7).
  if (name === 'private') return !qualified;
  return name === 'public' || name === 'no-store' || name === 's-maxage';
}

/**
 * Whether a Cache-Control value already decides shared storage. One pass: directives split at commas
 * outside quoted strings (a `no-cache="a, no-store"` names fields, not directives); linear on any value.
 */
export function decidesSharedStorage(value: string): boolean {
  const n = value.length;
  let i = 0;
  while (i < n) {
    let c = value.charCodeAt(i);
    if (c === COMMA || isOws(c)) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && (c = value.charCodeAt(i)) !== COMMA && c !== EQUALS && !isOws(c)) i++;
    const end = i;
    while (i < n && isOws(value.charCodeAt(i))) i++;
    const qualified = i < n && value.charCodeAt(i) === EQUALS;
    if (decides(value, start, end, qualified)) return true;
    if (qualified) {
      i++;
      while (i < n && isOws(value.charCodeAt(i))) i++;
      if (i < n && value.charCodeAt(i) === QUOTE) {
        i++;
        while (i < n && (c = value.charCodeAt(i)) !== QUOTE) i += c === BACKSLASH ? 2 : 1;
        i++;
      }
    }
    while (i < n && value.charCodeAt(i) !== COMMA) i++;
  }
  return false;
}

const joined = (value: string | string[]): string => (typeof value === 'string' ? value : value.join(', '));

/**
 * The members of `names` (lower case) a Vary value lists, as a bit set, when it also lists `mint`;
 * -1 when it lists `*` or not `mint`. One pass; names are sliced only when their length fits one.
 */
function listed(value: string, mint: string, names: readonly string[], lengths: ReadonlySet<number>): number {
  let found = 0;
  let mintListed = false;
  const n = value.length;
  let i = 0;
  while (i < n) {
    const c = value.charCodeAt(i);
    if (c === COMMA || isOws(c)) {
      i++;
      continue;
    }
    const start = i;
    while (i < n && value.charCodeAt(i) !== COMMA) i++;
    let end = i;
    while (end > start && isOws(value.charCodeAt(end - 1))) end--;
    if (end - start === 1 && value.charCodeAt(start) === 0x2a) return -1; // `*`: varies on everything already
    if (!lengths.has(end - start)) continue;
    const name = value.slice(start, end).toLowerCase();
    if (name === mint) mintListed = true;
    const at = names.indexOf(name);
    if (at >= 0) found |= 1 << at;
  }
  return mintListed ? found : -1;
}

export interface CacheScopeOptions {
  /** tokens.mint.header (lower case) on a route that mints; undefined otherwise. */
  mintHeader?: string | undefined;
  /** The request headers a caller's token may come in (lower case, at most 30): `authorization`, header sources' names, `cookie`. */
  tokenHeaders?: readonly string[] | undefined;
}

/** Made once per route that decides who its caller is (plan.ts); undefined routes cost nothing. */
export function createCacheScope(options: CacheScopeOptions): CacheScope {
  const mint = options.mintHeader;
  // The mint header in Vary is only a problem where the caller's token comes in another header.
  const names = (options.tokenHeaders ?? []).filter((name) => name !== mint).slice(0, 30);
  const lengths = new Set([...names, mint ?? ''].map((name) => name.length));
  const varies = mint !== undefined && names.length > 0;
  return {
    mark(headers) {
      const cacheControl = headers['cache-control'];
      if (cacheControl === undefined) headers['cache-control'] = 'private';
      else {
        const value = joined(cacheControl);
        if (value.trim() === '') headers['cache-control'] = 'private';
        else if (!decidesSharedStorage(value)) headers['cache-control'] = `${value}, private`;
      }
      const vary = headers.vary;
      if (!varies || vary === undefined) return;
      const value = joined(vary);
      const found = listed(value, mint, names, lengths);
      if (found < 0) return;
      let added = value;
      for (let k = 0; k < names.length; k++) if ((found & (1 << k)) === 0) added += `, ${names[k]}`;
      headers.vary = added;
    },
  };
}
