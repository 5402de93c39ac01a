/**
 * A bound on the cookies one request may carry. The token sources and request validation read
 * every cookie's name as backends do (name-readings.ts), 2–3 µs a name that is not plain; a 16 KiB
 * Cookie header holds ~1 400 such names (`a1%zz=1; a2%zz=1; …`), and over h2 a client resends it
 * from the HPACK table for a few bytes: ~7 ms of event loop per request. Browsers keep at most 180
 * cookies a site (Chrome; RFC 6265 asks for at least 50), so 300 pairs refuse no real client.
 */
import { WardenError } from '../errors.js';

export const MAX_COOKIE_PAIRS = 300;

/** A header shorter than this holds fewer pairs than the bound (`a=;` is the shortest pair, 3 characters): not counted. */
const COUNTED_FROM = MAX_COOKIE_PAIRS * 3;

/** 431 for a Cookie header (over h2, its crumbs joined) of more than MAX_COOKIE_PAIRS pairs. */
export function checkCookiePairs(cookie: string | undefined): WardenError | undefined {
  if (cookie === undefined || cookie.length < COUNTED_FROM) return undefined;
  let pairs = 1;
  for (let i = cookie.indexOf(';'); i !== -1; i = cookie.indexOf(';', i + 1)) if (++pairs > MAX_COOKIE_PAIRS) return tooManyCookies();
  return undefined;
}

const tooManyCookies = () =>
  new WardenError('ERR_HEADERS_TOO_LARGE', {
    rule: 'limits.cookie_pairs',
    detail: `At most ${MAX_COOKIE_PAIRS} cookies a request are accepted.`,
  });
