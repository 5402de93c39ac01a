/**
 * Other readings of a request path that common backends route by. The policy applied is the one of
 * the route the path as sent names; when the backend would read the path as another declared route,
 * that policy is not the one for the operation the backend runs, so the request is refused
 * (400 `ERR_PATH_INVALID`):
 *
 * - `;parameters` dropped from segments (Tomcat, Jetty, Spring): `/public/..;/admin`,
 *   `/admin;x/users`. Refused also when that reading names no route at all.
 * - cut at the first `;`, the rest read as the query (Fastify before 5): anything after a `;` is
 *   refused, rule `path.semicolon_query` (semicolonStartsQuery).
 * - case-insensitive (Express and ASP.NET Core by default): `/ADMIN/users` is `/admin/users` there,
 *   and `/admin` is a declared `/Admin` (taken for every path when a pattern has upper case).
 * - without its trailing slash (Express and ASP.NET Core by default, Spring before 6):
 *   `/admin/` is `/admin` there.
 * - with a trailing slash, where a declared pattern ends in one: Express serves `/secret` from a
 *   router mounted at `/secret` (the root of a `/secret/*` rule), and a non-strict `/orders/` route
 *   answers `/orders`. Not for a path that names a route of its own other than by a wildcard
 *   (`/files` declared beside `/files/*`): the operator said what it is.
 *
 * - the last segment without its format suffix, trailing dots included (Rails routes every path
 *   as `(.:format)`, Spring MVC's suffix pattern match before 5.3, IIS drops trailing dots):
 *   `/login.json`, `/admin.` are `/login`, `/admin` there; and each segment without white space
 *   or control characters at its ends (`/admin%20`: Spring's AntPathMatcher trims tokens,
 *   CVE-2016-5007). Combined with the slash and case readings: `/admin.json`, `/Admin.json` are the
 *   root of a `/admin/*` rule. Rule `path.suffix`. Not for a path declared literally (`/openapi.json`).
 *
 * The readings combine, as the servers chained behind the sidecar combine them: Tomcat drops `;x`
 * from `/admin;x/` and hands `/admin/` to Spring, which serves `/admin`. So the slash and case
 * readings are taken of the path as sent and of the path without its parameters (rule
 * `path.segment_parameters` for the latter).
 *
 * - with `: @ ! $ & ' ( ) * + , =` decoded where they are percent-encoded (the router keeps them
 *   encoded; Werkzeug, ASP.NET Core, Spring's PathPattern and Go decode them): `/users/%40me` is a
 *   declared `/users/@me` there, not `/users/{id}`. Rule `path.encoded_delimiter`.
 *
 * - without a script name before the path info (PHP's built-in server, nginx's usual
 *   fastcgi_split_path_info, CGI and ASP.NET run `/v1/index.php` with PATH_INFO `/admin/stats`, and
 *   front controllers — Symfony, Laravel, Slim — route on it): `/v1/index.php/admin/stats` is
 *   `/v1/admin/stats` there. Any segment with an extension (`.php`, `.cgi`, `.aspx`) followed by more
 *   segments, as which extensions run as scripts is the server's choice. Only for a path no declared
 *   route names but by a wildcard (the passthrough route, `/v1/*`): a literally declared path is
 *   the operator's. Rule `path.script_prefix`.
 *
 * Readings that name no declared route, or the same one, change nothing and pass: `/orders/AbC`
 * under `/orders/:id`, or `/orders/` for an API that declares only `/orders/` (Django REST style).
 * A path without `;`, upper-case letters or a trailing slash costs one failed lookup of the slash
 * reading, and none when no declared pattern ends in a slash (one caseless lookup more when a
 * declared pattern has upper case); one with a dot in its last segment, the same again for its stem.
 */
import { WardenError } from '../errors.js';
import type { Plan, RouteMatch, RoutePlan } from '../pipeline/plan.js';
import { pathWithoutParameters } from '../net/request-target.js';

const HAS_UPPER = /[A-Z]/;

type Rule =
  | 'path.trailing_slash'
  | 'path.case'
  | 'path.segment_parameters'
  | 'path.semicolon_query'
  | 'path.suffix'
  | 'path.encoded_delimiter'
  | 'path.script_prefix';

const DETAILS: Record<Rule, string> = {
  'path.trailing_slash': 'A trailing slash, sent or left out, that changes which route the path names is not allowed.',
  'path.case': 'Letter case that changes which route the path names is not allowed.',
  'path.segment_parameters': 'Path parameters (";…") that change which route the path names are not allowed.',
  'path.semicolon_query':
    'Text after a ";" in the path is not allowed: Fastify before 5 ends the path at the first ";" and reads the rest as the query. Send a ";" in a segment as %3B.',
  'path.suffix':
    'A format suffix (".json"), trailing dots or white space in a segment that change which route the path names are not allowed.',
  'path.script_prefix':
    'A script name before the path ("/index.php/…") that a front controller reads as a declared route is not allowed: send that route\'s path.',
  'path.encoded_delimiter':
    'A percent-encoded ":", "@", "!", "$", "&", "\'", "(", ")", "*", "+", "," or "=" that changes which route the path names is not allowed: send the character itself.',
};

/**
 * Characters a path segment may hold as they are (RFC 3986 pchar) that the router, like the
 * normalised target, keeps percent-encoded: Werkzeug, ASP.NET Core, Spring's PathPattern and Go
 * route on the decoded path, where `/users/%40me` is a declared `/users/@me`.
 */
const ENCODED_SEGMENT_CHARACTER = /%(?:3A|40|21|24|26|27|28|29|2A|2B|2C|3D)/gi;

/** White space and control characters at either end of a segment, percent-encoded (the only way a request target holds them). */
const SEGMENT_PADDING = /(^|\/)(?:%[01][0-9a-f]|%20)+|(?:%[01][0-9a-f]|%20)+(?=\/|$)/gi;

/**
 * The path as a backend that drops format suffixes and trims segments reads it, or undefined when
 * that is the path itself. The suffix: from the first dot of the last segment, unless the segment
 * starts with one (`/.well-known`); a trailing slash goes first, as Rails' router drops it before it
 * reads the format (`/login.json/` is `/login`). Costs one `indexOf` and one `includes` for a path
 * with neither.
 */
function suffixReading(path: string): string | undefined {
  let reading = path.includes('%') ? path.replace(SEGMENT_PADDING, '$1') : path;
  const end = reading.length > 1 && reading.endsWith('/') ? reading.length - 1 : reading.length;
  const segment = reading.lastIndexOf('/', end - 1) + 1;
  const dot = reading.indexOf('.', segment);
  if (dot > segment && dot < end) reading = reading.slice(0, dot);
  return reading === path ? undefined : reading;
}

/**
 * Whether `path` without its format suffix (and segment padding) names another declared route than
 * `route`, as it is or read with a slash added or its case folded (`/admin.json`, `/Admin.json` are
 * the root of a `/admin/*` rule, which Express serves from the router mounted there); not for a path
 * declared as it is, with no parameter or wildcard taking it (`/openapi.json` beside `/openapi`): the
 * operator said what it is.
 */
function suffixNamesOther(plan: Plan, method: string, path: string, route: RoutePlan, hasParams: boolean): boolean {
  const stem = suffixReading(path);
  if (stem === undefined) return false;
  const other = plan.declared(method, stem);
  if ((other === undefined || other === route) && otherReading(plan, method, stem, route) === undefined) return false;
  return hasParams || plan.declared(method, path) !== route;
}

/**
 * Whether a backend that ends the path at its first `;` would read anything after it as the query:
 * Fastify 4 (find-my-way's `useSemicolonDelimiter`, on by default before Fastify 5) routes
 * `/docs/1;/summary` as `/docs/1` with the query `/summary`, and `/files/a;limit=1000` as
 * `/files/a` with the query `limit=1000`, which validation never saw (the query it checked, after
 * `?`, Fastify reads as part of that one). Which keys a backend reads cannot be told here, so any
 * text after the first `;` is refused; a `;` that ends the path is the `;parameters` reading's
 * (`/admin;` is `/admin` to Fastify and Tomcat alike). Only for a path holding a `;` (unencoded:
 * the normalised path keeps `%3B` as sent, and Fastify does not cut at it).
 */
function semicolonStartsQuery(path: string): boolean {
  return path.indexOf(';') < path.length - 1;
}

/** A segment with an extension (`/index.php`) and more segments after it: a script name and its path info. */
const SCRIPT_SEGMENT = /\/[^/.]+\.[^/]*(?=\/)/g;

/**
 * Whether `path` read as a script name and its path info — the script's segment dropped, its
 * directory kept — names a declared route other than `route`, when `path` names none but by a
 * wildcard (or only the passthrough route). Costs one `includes` for a path with no dot.
 */
function scriptPrefixNamesOther(plan: Plan, method: string, path: string, match: RouteMatch): boolean {
  if (!path.includes('.')) return false;
  if (match.params['*'] === undefined && plan.declared(method, path) === match.route) return false;
  for (const script of path.matchAll(SCRIPT_SEGMENT)) {
    const stripped = path.slice(0, script.index) + path.slice(script.index + script[0].length);
    const other = plan.declared(method, stripped);
    if (other !== undefined && other !== match.route) return true;
    // Combined with the other readings: a router behind the script also trims a trailing slash,
    // folds case or drops a suffix (`/v1/index.php/admin/stats/` ran `admin/stats` in Laravel).
    if (otherReading(plan, method, stripped, match.route) !== undefined) return true;
    if (suffixNamesOther(plan, method, stripped, match.route, false)) return true;
  }
  return false;
}

export function checkPathReadings(plan: Plan, method: string, path: string, match: RouteMatch): WardenError | undefined {
  const route = match.route;
  if (scriptPrefixNamesOther(plan, method, path, match)) return refusal('path.script_prefix');
  const hasParams = Object.keys(match.params).length > 0;
  if (path.includes('%')) {
    const decoded = path.replace(ENCODED_SEGMENT_CHARACTER, decodeURIComponent);
    if (decoded !== path) {
      // Combined with the other readings, as the backends that decode also fold case (ASP.NET Core)
      // or drop a suffix: `/users/%40ME`, `/users/%40me.json` are `/users/@me` there.
      const other = plan.declared(method, decoded);
      if (
        (other !== undefined && other !== route) ||
        otherReading(plan, method, decoded, route) !== undefined ||
        suffixNamesOther(plan, method, decoded, route, hasParams)
      )
        return refusal('path.encoded_delimiter');
    }
  }
  if (path.includes(';')) {
    const alias = pathWithoutParameters(path);
    if (alias instanceof WardenError) return alias;
    const other = plan.resolve(method, alias);
    if (other instanceof WardenError || other.route !== route || otherReading(plan, method, alias, route) !== undefined) {
      return refusal('path.segment_parameters');
    }
    if (semicolonStartsQuery(path)) return refusal('path.semicolon_query');
  }
  const rule = otherReading(plan, method, path, route);
  if (rule !== undefined) return refusal(rule);
  return suffixNamesOther(plan, method, path, route, hasParams) ? refusal('path.suffix') : undefined;
}

/**
 * The rule of the first reading of `path` — its trailing slash dropped or one added, its case
 * folded, or both — that names another declared route than `route`; undefined when none does.
 */
function otherReading(plan: Plan, method: string, path: string, route: RoutePlan): Rule | undefined {
  const elsewhere = (other: RoutePlan | undefined) => other !== undefined && other !== route;
  const upper = plan.declaresUpperCase || HAS_UPPER.test(path);
  if (path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f /* / */) {
    const stripped = path.slice(0, -1);
    if (elsewhere(plan.declared(method, stripped))) return 'path.trailing_slash';
    if (upper && (elsewhere(plan.declaredCaseless(method, path)) || elsewhere(plan.declaredCaseless(method, stripped)))) return 'path.case';
    return undefined;
  }
  if (elsewhere(plan.declaredWithSlash(method, path, false))) return 'path.trailing_slash';
  if (upper && (elsewhere(plan.declaredCaseless(method, path)) || elsewhere(plan.declaredWithSlash(method, path, true))))
    return 'path.case';
  return undefined;
}

const refusal = (rule: Rule) => new WardenError('ERR_PATH_INVALID', { rule, detail: DETAILS[rule] });
