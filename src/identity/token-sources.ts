/**
 * Where a caller's token is read from — `Authorization: Bearer` (RFC 6750 §2.1) or `DPoP`
 * (RFC 9449 §7.1, checked against its proof by token-binding.ts), a header, a
 * cookie, a query parameter (§2.3; off unless configured) — and its removal from what the backend
 * receives: an external token is replaced, never forwarded.
 */
import type { TokenSourceConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { cookieTrimmed } from '../net/cookie-trim.js';
import { compileNameReadings, cookieNameSpellings, isPlainName, plainReadingOf, readingOf } from '../openapi/name-readings.js';
import { memoizedByName } from '../openapi/name-verdicts.js';
import { strippedHeaders, tokenPlacesOf } from '../config/token-places.js';
import type { IncomingHttpHeaders } from 'node:http';

/** The parts of a request a token source reads and strips (a subset of the pipeline's RequestContext). */
export interface CredentialCarrier {
  readonly headers: IncomingHttpHeaders;
  /** What goes to the backend; a header set to undefined is not sent. */
  readonly upstreamHeaders: Record<string, string | string[] | undefined>;
  search: string;
}

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** Whether a string could be presented as a bearer token at all (RFC 6750 §2.1 b64token). */
export const isB64Token = (token: string): boolean => B64TOKEN.test(token);

export interface TokenSources {
  /** The token, undefined when no source carries one, or the refusal for malformed credentials. */
  extract(ctx: CredentialCarrier): string | undefined | WardenError;
  /**
   * Whether the token `extract` returned came in `Authorization: DPoP` rather than `Bearer`. Only
   * meaningful after `extract` returned a token.
   */
  dpopScheme(ctx: CredentialCarrier): boolean;
  /** Removes every configured source (and the minted-token header, and a DPoP proof) from what goes upstream. */
  strip(ctx: CredentialCarrier): void;
}

const malformed = (rule: string, detail: string) => new WardenError('ERR_AUTHN_TOKEN_MALFORMED', { rule, detail });

export function compileTokenSources(
  sources: readonly TokenSourceConfig[],
  maxBytes: number,
  mintedHeader: string | undefined,
): TokenSources {
  const places = tokenPlacesOf(sources, mintedHeader);
  const headerNames = strippedHeaders(sources, mintedHeader);
  const isCookieSource = cookieNameReading([...places.cookies]);
  const isQuerySource = queryNameReading([...places.query]);
  const readers = sources.map((s) => reader(s));
  const readsAuthorization = sources.some((s) => s.from === 'authorization');

  return {
    extract(ctx) {
      let found: string | undefined;
      for (const read of readers) {
        const value = read(ctx);
        if (value === undefined) continue;
        if (value instanceof WardenError) return value;
        // RFC 6750 §2: a client MUST NOT use more than one method to send the token.
        if (found !== undefined) return malformed('token.multiple', 'Send the access token in one place only.');
        found = value;
      }
      if (found === undefined) return undefined;
      if (found.length > maxBytes) return malformed('token.size', `The access token may be at most ${maxBytes} bytes.`);
      if (!B64TOKEN.test(found)) return malformed('token.characters', 'The access token contains characters a bearer token cannot have.');
      return found;
    },
    dpopScheme(ctx) {
      // extract accepted the header, so it is one string starting with a scheme and a space. Every
      // request asks: a Bearer one is told by its first character, without a copy.
      const value = ctx.headers.authorization;
      if (!readsAuthorization || typeof value !== 'string') return false;
      const first = value.charCodeAt(0) | 0x20;
      return first === 0x64 /* d */ && value.length > 5 && value.slice(0, 5).toLowerCase() === 'dpop ';
    },
    strip(ctx) {
      const up = ctx.upstreamHeaders;
      // Cleared, not deleted: undici skips a header whose value is undefined, and deleting a
      // property turns the object into a dictionary, slower for every later write and for undici's walk over it.
      for (const name of headerNames) if (up[name] !== undefined) up[name] = undefined;
      if (places.cookies.size > 0 && up.cookie !== undefined) {
        const kept = String(up.cookie)
          .split(';')
          .filter((pair) => !isCookieSource(cookieTrimmed(pair.split('=', 1)[0] ?? '')));
        up.cookie = kept.length > 0 ? kept.join(';').trim() : undefined;
      }
      if (places.query.size > 0 && ctx.search.length > 1) {
        // Only the token's pairs go; the others reach the backend exactly as the client sent them.
        const pairs = ctx.search.slice(1).split('&');
        const kept = pairs.filter((pair, i) => !isQuerySource(decodeName(pair, i === 0)));
        if (kept.length !== pairs.length) ctx.search = kept.length > 0 ? `?${kept.join('&')}` : '';
      }
    },
  };
}

/**
 * Whether a query key (as URLSearchParams decodes it) is one of `names` to a backend: the name
 * itself, or a key PHP, qs, Rails or System.Web read as it (name-readings.ts: `access.token`,
 * `access+token`, `access[token`, `access_token[]`, `%u0061ccess_token`, `access_token%00`,
 * ` access_token`, `ACCESS_TOKEN`). Read as only the exact name, `?access.token=<another token>`
 * beside an Authorization header reached PHP as `$_GET['access_token']` (red team 22a).
 */
function queryNameReading(names: readonly string[]): (key: string) => boolean {
  return nameReading(names, 'query', (key) => [key]);
}

/**
 * Whether a cookie's name (trimmed as Python and JS trim it: cookieTrimmed) is one of `names` to a backend: the name, or one PHP reads as
 * it (`access.token`, `access token`, `access[token`, `access_token[]`: `$_COOKIE['access_token']`,
 * whose first cookie of a name wins), ASP.NET Core's any letter case — and the same once decoded,
 * as request validation reads cookie names (request-validator.ts `cookieReadAs`): PHP 8 keeps
 * `acc%65ss_token` as it is (since 7.4.11, bug #79699), but PHP before that and ASP.NET Core 2
 * decode it, and that PHP read `access+token` as `access token` (cookieNameSpellings). Read as only
 * the exact name, `access.token=<another token>` beside an Authorization header reached PHP as the
 * token cookie (red team 22 review).
 */
function cookieNameReading(names: readonly string[]): (name: string) => boolean {
  return nameReading(names, 'cookie', cookieNameSpellings);
}

function nameReading(
  names: readonly string[],
  place: 'query' | 'cookie',
  spellings: (name: string) => string[],
): (name: string) => boolean {
  if (names.length === 0) return () => false;
  const readings = compileNameReadings(names.map((name) => ({ name, in: place })));
  const reads = (name: string) => readings.owns(name) || readings.readAs(name) !== undefined;
  // Kept per name (bounded): reading a name as those backends do costs ~0.6 µs, on every request's every key or cookie.
  const verdict = memoizedByName((name) => (spellings(name).some(reads) ? true : undefined));
  // Most names are plain (plainReadingOf: no escape, dot, bracket or `+`): their one reading is compared
  // with the names' readings, without the full reading or the memo, which a client sending many
  // names would otherwise fill.
  const plainReadings = new Set(names.map(readingOf));
  // Such a reading is as long as the name without its leading white space: most names are told apart by that alone.
  const lengths = new Set([...plainReadings].map((reading) => reading.length));
  return (name) => {
    if (!isPlainName(name)) return verdict(name) === true;
    return lengths.has(name.trimStart().length) && plainReadings.has(plainReadingOf(name) ?? '');
  };
}

/**
 * A query pair's name exactly as the reader (URLSearchParams over the whole query) reads it: "+" is
 * a space, escapes are decoded leniently ("%74ok%" is "tok%"), and the first pair loses a leading
 * "?" ("/p??access_token=…"). Anything else would leave a token the reader found for the backend.
 */
function decodeName(pair: string, first: boolean): string {
  for (const [name] of new URLSearchParams(first ? pair : `&${pair}`)) return name;
  return '';
}

/** Bearer (RFC 6750) or DPoP (RFC 9449 §7.1); auth schemes are case-insensitive (RFC 9110 §11.1). */
function isTokenScheme(scheme: string): boolean {
  const s = scheme.toLowerCase();
  return s === 'bearer' || s === 'dpop';
}

function reader(source: TokenSourceConfig): (ctx: CredentialCarrier) => string | undefined | WardenError {
  switch (source.from) {
    case 'authorization':
      return (ctx) => {
        const value = ctx.headers.authorization;
        if (value === undefined) return undefined;
        if (typeof value !== 'string') return malformed('authorization.multiple', 'Send one Authorization header.');
        const space = value.indexOf(' ');
        // "Bearer " arrives as "Bearer": the parser trims trailing whitespace.
        if (space < 0 && isTokenScheme(value)) return malformed('authorization.empty', 'The Authorization header carries no token.');
        if (space < 0 || !isTokenScheme(value.slice(0, space))) {
          return malformed('authorization.scheme', 'The Authorization header must use the Bearer or DPoP scheme.');
        }
        const token = value.slice(space + 1).trim();
        return token.length > 0 ? token : malformed('authorization.empty', 'The Authorization header carries no token.');
      };
    case 'header': {
      const name = source.name.toLowerCase();
      return (ctx) => {
        const value = ctx.headers[name];
        if (value === undefined) return undefined;
        return typeof value === 'string' ? value.trim() : malformed(`header.${name}.multiple`, `Send one ${name} header.`);
      };
    }
    case 'cookie': {
      // Every cookie a backend reads as the name is this source (cookieNameReading), as for a query source.
      const isSource = cookieNameReading([source.name]);
      return (ctx) => {
        const header = ctx.headers.cookie;
        if (header === undefined) return undefined;
        let found: string | undefined;
        for (const pair of String(header).split(';')) {
          const p = pair.trim();
          const eq = p.indexOf('=');
          if (eq <= 0 || !isSource(cookieTrimmed(p.slice(0, eq)))) continue;
          if (found !== undefined) return malformed(`cookie.${source.name}.multiple`, `Send one ${source.name} cookie.`);
          found = p.slice(eq + 1);
        }
        return found;
      };
    }
    case 'query': {
      // Every key a backend reads as the name is this source: two are two tokens, one beside a
      // token elsewhere is a second token (RFC 6750 §2), not a parameter left for the backend.
      const isSource = queryNameReading([source.name]);
      return (ctx) => {
        if (ctx.search.length < 2) return undefined;
        let found: string | undefined;
        for (const [key, value] of new URLSearchParams(ctx.search.slice(1))) {
          if (!isSource(key)) continue;
          if (found !== undefined) return malformed(`query.${source.name}.multiple`, `Send one ${source.name} parameter.`);
          found = value;
        }
        return found;
      };
    }
  }
}
