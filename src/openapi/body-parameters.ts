/**
 * Body fields named as one of the operation's query or path parameters. Backends that merge the
 * query and the body into one set of parameters — Rails' `params`, PHP's `$_REQUEST`, CPython's
 * `cgi.FieldStorage` (which reads the body first) — read a form field `limit=1000` as the query's
 * `limit`, past the `maximum: 100` validation checked on `?limit=5`. A form or multipart field, or a
 * top-level JSON member, whose name or a reading of it (name-readings.ts: `limit[]`, `LIMIT`) is
 * such a parameter is refused, unless the body's schema declares it as a property of its own (then
 * that schema checks it).
 */
import { compileNameReadings, type NameReadings } from './name-readings.js';
import type { ParameterObject } from './operations.js';
import { escapePointer } from './subschemas.js';
import type { Violation } from './violation.js';

/** The first of a body's top-level names a merging backend would read as a parameter, as a violation. */
export type ParameterShadows = (names: Iterable<string>) => Violation | undefined;

/** The parameter a name is read as, if any: itself when the operation owns it, else its reading. */
function parameterOf(name: string, readings: NameReadings): string | undefined {
  return readings.owns(name) ? name : readings.readAs(name)?.declared;
}

/**
 * `bodyProperties`: the names the body's schema declares (case-variants.ts topLevelNames). Undefined
 * when the operation has no query or path parameter: nothing to check per request.
 */
export function compileParameterShadows(
  params: readonly ParameterObject[],
  bodyProperties: readonly string[],
): ParameterShadows | undefined {
  const query = params.filter((p) => p.in === 'query');
  // A path parameter is one name (its style's encoding is in the path, not in any key).
  const path = params.filter((p) => p.in === 'path').map((p) => ({ name: p.name, in: 'query' as const }));
  if (query.length === 0 && path.length === 0) return undefined;
  const locations: [string, NameReadings][] = [];
  if (query.length > 0) locations.push(['query', compileNameReadings(query)]);
  if (path.length > 0) locations.push(['path', compileNameReadings(path)]);
  const declared: ReadonlySet<string> = new Set(bodyProperties);
  return (names) => {
    for (const name of names) {
      if (declared.has(name)) continue;
      for (const [location, readings] of locations) {
        const parameter = parameterOf(name, readings);
        if (parameter === undefined || declared.has(parameter)) continue;
        return {
          pointer: `/body/${escapePointer(name)}`,
          message: `is read as the ${location} parameter ${JSON.stringify(parameter)} by backends that merge the query and the body (Rails params, PHP $_REQUEST, CGI FieldStorage); the body does not declare it`,
        };
      }
    }
    return undefined;
  };
}

/** A query key a merging backend would read as a top-level body property, as a violation. */
export type BodyShadows = (key: string) => Violation | undefined;

/**
 * The reverse: a query key named as a body property (or a reading of one: `role[]`, `ROLE`) is read
 * as that property by backends that merge the two — PHP's `$_REQUEST` (request_order=GP: the query
 * fills what the body did not send), Laravel's `$request->input()`, Symfony's `Request::get()`
 * (which prefers the query) — past the body schema's enum and readOnly. Refused unless the
 * operation declares the key as a query parameter (the caller checks that first). `bodyProperties`:
 * the top-level names of every body schema of the operation; undefined when there are none.
 */
export function compileBodyShadows(bodyProperties: Iterable<string>): BodyShadows | undefined {
  const names = [...new Set(bodyProperties)];
  if (names.length === 0) return undefined;
  const readings = compileNameReadings(names.map((name) => ({ name, in: 'query' as const })));
  return (key) => {
    const property = readings.owns(key) ? key : readings.readAs(key)?.declared;
    if (property === undefined) return undefined;
    return {
      pointer: `/query/${escapePointer(key)}`,
      message: `is read as the body property ${JSON.stringify(property)} by backends that merge the query and the body (PHP $_REQUEST, Laravel input(), Symfony Request::get()); the operation does not declare it as a query parameter`,
    };
  };
}
