/**
 * Request-target normalisation, so that policy cannot be bypassed with an alternative spelling of
 * a path and the backend receives exactly the path policy was decided on.
 *
 * - only origin-form targets ("/path?query") are accepted, of printable ASCII (0x21–0x7E) only:
 *   node:http2 hands `:path` over as Latin-1 (one character per byte) where HTTP/1.1's parser
 *   refuses such bytes, and a backend would read raw UTF-8 (`?q=1＇`) the checks here read as
 *   mojibake;
 * - percent-encoded unreserved characters are decoded once ("%61dmin" → "admin"); other escapes are
 *   kept with upper-case hex; an encoded "/", "\", NUL or control character is refused;
 * - "." and ".." segments are resolved (RFC 3986 §5.2.4), ".." above the root is refused;
 * - empty segments ("//") are collapsed; a literal "\" is refused;
 * - the query is passed on as sent, but an unencoded ";" in it is refused: Rack 2 (Rails before
 *   7.1, Sinatra) splits the query at ";" as well as "&", so `?q=x;limit=1000` is one parameter
 *   here and `limit=1000` there (Go's net/url refuses it since 1.17 for the same reason); and so is
 *   a "%" that starts no escape, which Jetty reads as one (`l%6@mit` is `limit`: malformed-escape.ts).
 */
import { WardenError } from '../errors.js';
import { hasMalformedEscape } from './malformed-escape.js';

export interface NormalisedTarget {
  path: string;
  /** Query including its "?", or "". Passed on untouched. */
  search: string;
}

const NEEDS_WORK = /%|\/\.|\/\/|\\|#/;
/** Anything but printable ASCII: spaces, controls, DEL and bytes past 0x7F (RFC 3986 has them percent-encoded). */
const NOT_TARGET_CHAR = /[^\x21-\x7e]/;

function invalid(detail: string, rule: string): WardenError {
  return new WardenError('ERR_PATH_INVALID', { detail, rule });
}

export function normaliseTarget(target: string): NormalisedTarget | WardenError {
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    return invalid('The request target must be an absolute path such as "/orders?id=1".', 'path.origin_form');
  }
  if (NOT_TARGET_CHAR.test(target))
    return invalid('The request target may hold printable ASCII only; percent-encode other bytes (RFC 3986).', 'path.characters');
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? '' : target.slice(q);
  if (search.includes(';'))
    return invalid('A ";" in the query separates parameters for some backends and not for others; send it as %3B.', 'path.query_semicolon');
  if (hasMalformedEscape(search))
    return invalid('A "%" in the query is not followed by two hex digits; send a "%" as %25.', 'path.query_bad_escape');
  if (!NEEDS_WORK.test(rawPath)) return { path: rawPath, search };

  const decoded = decodeUnreserved(rawPath);
  if (decoded instanceof WardenError) return decoded;
  const path = removeDotSegments(decoded);
  if (path === undefined) return invalid('The path climbs above the root with "..".', 'path.dot_segments');
  return { path, search };
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function decodeUnreserved(path: string): string | WardenError {
  let out = '';
  let last = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c /* \ */) return invalid('A backslash is not allowed in the path.', 'path.backslash');
    if (c === 0x23 /* # */) return invalid('A fragment ("#") is not allowed in a request target.', 'path.fragment');
    if (c !== 0x25 /* % */) continue;
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return invalid('A "%" in the path is not followed by two hex digits.', 'path.bad_escape');
    const byte = hi * 16 + lo;
    if (byte === 0x2f || byte === 0x5c) return invalid('An encoded "/" or "\\" is not allowed in the path.', 'path.encoded_separator');
    if (byte < 0x20 || byte === 0x7f) return invalid('An encoded control character is not allowed in the path.', 'path.encoded_control');
    out += path.slice(last, i) + (isUnreserved(byte) ? String.fromCharCode(byte) : `%${path[i + 1]}${path[i + 2]}`.toUpperCase());
    last = i + 3;
    i += 2;
  }
  return last === 0 ? path : out + path.slice(last);
}

/**
 * Resolves "." and ".." and collapses empty segments; undefined when ".." would leave the root. Also
 * how route patterns are held to the form requests are matched in (pattern-form.ts).
 */
export function removeDotSegments(path: string): string | undefined {
  const input = path.split('/');
  const output: string[] = [];
  let trailingSlash = false;
  for (let i = 1; i < input.length; i++) {
    const seg = input[i] as string;
    const last = i === input.length - 1;
    if (seg === '') {
      trailingSlash = last;
      continue;
    }
    if (seg === '.') {
      trailingSlash = last;
      continue;
    }
    if (seg === '..') {
      if (output.length === 0) return undefined;
      output.pop();
      trailingSlash = last;
      continue;
    }
    output.push(seg);
    trailingSlash = false;
  }
  const joined = '/' + output.join('/');
  return trailingSlash && output.length > 0 ? joined + '/' : joined;
}

/**
 * The path as a server that drops `;parameters` from every segment reads it ("/a/..;/b" → "/b"),
 * normalised the same way; an error when that reading climbs above the root.
 */
export function pathWithoutParameters(path: string): string | WardenError {
  const stripped = normaliseTarget(path.replace(/;[^/]*/g, ''));
  return stripped instanceof WardenError ? stripped : stripped.path;
}
