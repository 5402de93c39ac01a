/**
 * Cookies named as one of the operation's query or path parameters or top-level body properties.
 * PHP's compiled-in defaults (no php.ini, as the official Docker images ship: request_order empty,
 * variables_order EGPCS) build `$_REQUEST` from GET, then POST, then COOKIE: the cookie wins.
 * `Cookie: role=admin; limit=1000` beside a valid `?limit=5` and body `role=user` gave
 * `$_REQUEST` `{limit: 1000, role: admin}`, past `maximum` and `enum`. Such a cookie, or one whose
 * name a backend reads as such a name (name-readings.ts: `role[]` for `role`, `is.admin`, `is admin`
 * for `is_admin`; also `role%00`, `%72ole`, `ROLE`, which PHP 8.2 keeps as they are — it stopped
 * decoding cookie names in 8.0.24/8.1.11 — but older PHP or another backend need not), is refused
 * unless the operation declares it as a cookie (then its own schema checks it).
 */
import { percentDecoded } from '../net/percent-decoded.js';
import { compileNameReadings } from './name-readings.js';
import type { ParameterObject } from './operations.js';
import type { Violation } from './violation.js';

/** The violation for a cookie name `$_REQUEST` reads as a parameter or body property, if it is one. */
export type CookieShadows = (name: string) => Violation | undefined;

/**
 * `bodyProperties`: the top-level names of the body's form schemas (urlencoded, multipart/form-data:
 * what `$_POST` holds; a JSON body never reaches `$_REQUEST`, and naming its properties refused
 * cookies such as a `token` beside a JSON `{token}` for nothing). Undefined when the
 * operation has no query or path parameter and no body property: nothing to check per request.
 */
export function compileCookieShadows(params: readonly ParameterObject[], bodyProperties: Iterable<string>): CookieShadows | undefined {
  const cookies: ReadonlySet<string> = new Set(params.filter((p) => p.in === 'cookie').map((p) => p.name));
  const asNames = (names: Iterable<string>) => [...names].map((name) => ({ name, in: 'query' as const }));
  // A path parameter and a body property are one name each (their own keys are not PHP's to read).
  const groups: [string, ParameterObject[]][] = [
    ['query parameter', params.filter((p) => p.in === 'query')],
    ['path parameter', asNames(params.filter((p) => p.in === 'path').map((p) => p.name))],
    ['body property', asNames(new Set(bodyProperties))],
  ];
  const locations = groups.filter(([, list]) => list.length > 0).map(([where, list]) => [where, compileNameReadings(list)] as const);
  if (locations.length === 0) return undefined;
  return (raw) => {
    if (cookies.has(raw)) return undefined;
    const name = raw.includes('%') ? percentDecoded(raw) : raw;
    for (const [where, readings] of locations) {
      const read = readings.owns(name) ? name : readings.readAs(name)?.declared;
      if (read === undefined || cookies.has(read)) continue;
      return {
        pointer: `/cookie/${raw}`,
        message: `is read as the ${where} ${JSON.stringify(read)} by PHP's $_REQUEST, where a cookie overrides the query and the body; the operation declares no such cookie (declare it as a cookie parameter of the operation if the backend reads it as one)`,
      };
    }
    return undefined;
  };
}
