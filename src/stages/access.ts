/**
 * `access` stage: allow or deny by route (method + path, decided by which route matched) and by the
 * client's IP address. Deny lists are checked before allow lists; an empty allow list means "any
 * address". Purely synchronous: two BlockList lookups.
 */
import type { AccessConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { RequestContext, Stage, Verdict } from '../pipeline/stage.js';
import { createIpSet } from '../net/ip-set.js';

/** True when the config would refuse nothing, so the plan can leave the stage out entirely. */
export function isAccessNoop(cfg: AccessConfig): boolean {
  return cfg.action === 'allow' && cfg.clients.allow.length === 0 && cfg.clients.deny.length === 0;
}

export function createAccessStage(cfg: AccessConfig): Stage {
  const deny = createIpSet(cfg.clients.deny);
  const allow = createIpSet(cfg.clients.allow);
  const routeDenied = cfg.action === 'deny';

  return {
    id: 'access',
    run(ctx: RequestContext): Verdict {
      if (routeDenied)
        return new WardenError('ERR_ACCESS_DENIED', { rule: 'access.action', detail: 'This route is not reachable through the sidecar.' });
      const address = ctx.clientAddress;
      if (deny.has(address)) return new WardenError('ERR_ACCESS_DENIED', { rule: 'access.clients.deny' });
      if (allow.size > 0 && !allow.has(address)) return new WardenError('ERR_ACCESS_DENIED', { rule: 'access.clients.allow' });
      return undefined;
    },
  };
}
