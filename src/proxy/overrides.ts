/**
 * Requests that ask the backend to act on another method or path than the one in the request line:
 * the sidecar routes, authorizes and validates the request line, so a backend that honours an
 * override would run an operation nobody checked (a POST allowed for `orders:write` becoming a
 * DELETE; `X-Original-URL: /admin` on a request for `/public`).
 *
 * Honoured by common frameworks, by default or once enabled: `X-HTTP-Method-Override` (Express's
 * method-override, Rack::MethodOverride, Symfony and Laravel), `X-HTTP-Method` (OData),
 * `X-Method-Override`, `X-Original-URL` / `X-Rewrite-URL` (IIS URL Rewrite; Symfony and Zend
 * until CVE-2018-14773), and a `_method` query parameter (Symfony and Laravel read it from the
 * query string too, method-override when configured with `'_method'`). Names are compared as PHP,
 * qs and Rails read them (src/openapi/name-readings.ts): ` _method`, `.method`, `_method[]` and
 * `_METHOD` are `_method` too, and a header name with `_` for `-` is the dashed one.
 * `headers.overrides: forward` lets all of them through, for backends that need them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../errors.js';
import { isMethodOverrideName } from '../openapi/name-readings.js';
import { ufoQueryNames } from '../net/ufo-query-names.js';

export const OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-original-url',
  'x-rewrite-url',
] as const;

/** Cheap screen before parsing a query: the name spelled out, or any percent-encoding. */
const MAY_NAME_METHOD = /method|%/i;

function overrideParameter(search: string): boolean {
  if (search.length < 2 || !MAY_NAME_METHOD.test(search)) return false;
  for (const name of new URLSearchParams(search).keys()) if (isMethodOverrideName(name)) return true;
  // ufo (h3 1.x) reads `?=_method=DELETE` as `_method` (ufo-query-names.ts).
  for (const name of ufoQueryNames(search.startsWith('?') ? search.slice(1) : search)) if (isMethodOverrideName(name)) return true;
  return false;
}

const OVERRIDE_HEADER_SET: ReadonlySet<string> = new Set(OVERRIDE_HEADERS);

/**
 * An override header spelled with `_` for some of its dashes: CGI and WSGI servers (and some Rack
 * servers) read `X_HTTP_Method_Override` as HTTP_X_HTTP_METHOD_OVERRIDE, as they read the dashed
 * one (as in headers.ts, spellsControlled). Only names with `_` — few, most requests none — are
 * dashed and looked up.
 */
function underscoredOverride(headers: IncomingHttpHeaders): string | undefined {
  for (const name in headers) {
    if (!name.includes('_')) continue;
    const dashed = name.replaceAll('_', '-');
    if (OVERRIDE_HEADER_SET.has(dashed)) return dashed;
  }
  return undefined;
}

/** The refusal of a request that carries a method or path override, or undefined. */
export function checkOverrides(headers: IncomingHttpHeaders, search: string): WardenError | undefined {
  for (const name of OVERRIDE_HEADERS) {
    if (headers[name] !== undefined) return headerRefusal(name, '');
  }
  const dashed = underscoredOverride(headers);
  if (dashed !== undefined) return headerRefusal(dashed, ' spelled with "_"');
  return overrideParameter(search)
    ? refusal('a method-override query parameter (_method, x-tunneled-method or X-HTTP-Method-Override)', 'overrides.method_parameter')
    : undefined;
}

function headerRefusal(name: string, spelling: string): WardenError {
  return refusal(`the ${name} header${spelling}`, `overrides.${name.replaceAll('-', '_')}`);
}

function refusal(what: string, rule: string): WardenError {
  return new WardenError('ERR_REQUEST_OVERRIDE', {
    rule,
    detail: `The request has ${what}, which would make the backend run another method or path than the one checked here.`,
  });
}
