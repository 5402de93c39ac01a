/**
 * Other readings of a request path that common backends route by. The policy applied is the one of
 * the route the path as sent names; when the backend would read the path as another declared route,
 * that policy is not the one for the operation the backend runs, so the request is refused
 * (400 `ERR_PATH_INVALID`):
 *
 * - `;parameters` dropped from segments (Tomcat, Jetty, Spring): `/public/..;/admin`,
 *   `/admin;x/users`. Refused also when that reading names no route at all.
 * - case-insensitive (Express and ASP.NET Core by default): `/ADMIN/users` is `/admin/users` there,
 *   and `/admin` is a declared `/Admin` (taken for every path when a pattern has upper case).
 * - without its trailing slash (Express and ASP.NET Core by default, Spring before 6):
 *   `/admin/` is `/admin` there.
 * - with a trailing slash, where a declared pattern ends in one: Express serves `/secret` from a
 *   router mounted at `/secret` (the root of a `/secret/*` rule), and a non-strict `/orders/` route
 *   answers `/orders`. Not for a path that names a route of its own other than by a wildcard
 *   (`/files` declared beside `/files/*`): the operator said what it is.
 *
 * The readings combine, as the servers chained behind the sidecar combine them: Tomcat drops `;x`
 * from `/admin;x/` and hands `/admin/` to Spring, which serves `/admin`. So the slash and case
 * readings are taken of the path as sent and of the path without its parameters (rule
 * `path.segment_parameters` for the latter).
 *
 * Readings that name no declared route, or the same one, change nothing and pass: `/orders/AbC`
 * under `/orders/:id`, or `/orders/` for an API that declares only `/orders/` (Django REST style).
 * A path without `;`, upper-case letters or a trailing slash costs one failed lookup of the slash
 * reading, and none when no declared pattern ends in a slash (one caseless lookup more when a
 * declared pattern has upper case).
 */
import { WardenError } from '../errors.js';
import type { Plan, RoutePlan } from '../pipeline/plan.js';
import { pathWithoutParameters } from '../net/request-target.js';

const HAS_UPPER = /[A-Z]/;

type Rule = 'path.trailing_slash' | 'path.case' | 'path.segment_parameters';

const DETAILS: Record<Rule, string> = {
  'path.trailing_slash': 'A trailing slash, sent or left out, that changes which route the path names is not allowed.',
  'path.case': 'Letter case that changes which route the path names is not allowed.',
  'path.segment_parameters': 'Path parameters (";…") that change which route the path names are not allowed.',
};

export function checkPathReadings(plan: Plan, method: string, path: string, route: RoutePlan): WardenError | undefined {
  if (path.includes(';')) {
    const alias = pathWithoutParameters(path);
    if (alias instanceof WardenError) return alias;
    const other = plan.resolve(method, alias);
    if (other instanceof WardenError || other.route !== route || otherReading(plan, method, alias, route) !== undefined) {
      return refusal('path.segment_parameters');
    }
  }
  const rule = otherReading(plan, method, path, route);
  return rule === undefined ? undefined : refusal(rule);
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
