/**
 * Every place in sidecar.yaml that sets a route's own policy, with where it stands in the file:
 * `routes[i]` and `openapi.operations.<id>` alike. Cross-field checks walk these, so an operation's
 * settings are never left out of a check its route's settings get.
 */
import type { RouteConfig, SidecarConfig } from './types.js';

export type RouteSettings = Omit<RouteConfig, 'id' | 'path' | 'methods'>;

export function routeSettingsOf(config: SidecarConfig): { at: (string | number)[]; settings: RouteSettings }[] {
  return [
    ...config.routes.map((settings, i) => ({ at: ['routes', i], settings })),
    ...Object.entries(config.openapi?.operations ?? {}).map(([id, settings]) => ({ at: ['openapi', 'operations', id], settings })),
  ];
}
