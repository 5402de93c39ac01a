/**
 * Other readings of a request path that common backends route by. The policy applied is the one of
 * the route the path as sent names; when the backend would read the path as another declared route,
 * that policy is not the one for the operation the backend runs, so the request is refused
 * (400 `ERR_PATH_INVALID`):
 *
 * - `;parameters` dropped from segments (Tomcat, Jetty, Spring): `/public/..;/admin`,
 *   `/admin;x/users`. Refused also when that reading names no route at all.
 * - case-insensitive (Express and ASP.NET Core by default): `/ADMIN/users` is `/admin/users` there.
 * - without its trailing slash (Express and ASP.NET Core by default, Spring before 6):
 *   `/admin/` is `/admin` there.
 *
 * Readings that name no declared route, or the same one, change nothing and pass: `/orders/AbC`
 * under `/orders/:id`, or `/orders/` for an API that declares only `/orders/` (Django REST style).
 */
import { WardenError } from '../errors.js';
import type { Plan, RoutePlan } from '../pipeline/plan.js';
import { pathWithoutParameters } from './path.js';

const HAS_UPPER = /[A-Z]/;

export function checkPathReadings(plan: Plan, method: string, path: string, route: RoutePlan): WardenError | undefined {
  if (path.includes(';')) {
    const err = checkSegmentParameters(plan, method, path, route);
    if (err) return err;
  }
  const trailing = path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f; /* / */
  const upper = HAS_UPPER.test(path);
  if (!trailing && !upper) return undefined;
  const stripped = trailing ? path.slice(0, -1) : undefined;
  const elsewhere = (other: RoutePlan | undefined) => other !== undefined && other !== route;
  if (stripped !== undefined && elsewhere(plan.declared(method, stripped))) {
    return refusal('path.trailing_slash', 'A trailing slash that changes which route the path names is not allowed.');
  }
  if (
    upper &&
    (elsewhere(plan.declaredCaseless(method, path)) || (stripped !== undefined && elsewhere(plan.declaredCaseless(method, stripped))))
  ) {
    return refusal('path.case', 'Letter case that changes which route the path names is not allowed.');
  }
  return undefined;
}

function checkSegmentParameters(plan: Plan, method: string, path: string, route: RoutePlan): WardenError | undefined {
  const alias = pathWithoutParameters(path);
  if (alias instanceof WardenError) return alias;
  const other = plan.resolve(method, alias);
  if (!(other instanceof WardenError) && other.route === route) return undefined;
  return refusal('path.segment_parameters', 'Path parameters (";…") that change which route the path names are not allowed.');
}

const refusal = (rule: string, detail: string) => new WardenError('ERR_PATH_INVALID', { rule, detail });
