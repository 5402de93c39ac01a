/**
 * `authz-scopes` stage: coarse-grained authorization by the token's scopes — all of `all_of` and
 * at least one of `any_of` (when given). A valid token without them gets 403 insufficient_scope
 * with the RFC 6750 §3 challenge naming the scopes needed; fine-grained decisions stay in the backend.
 */
import type { ScopesConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { headerSafeRealm } from '../pipeline/rescue.js';
import type { Stage } from '../pipeline/stage.js';

export function isScopesNoop(cfg: ScopesConfig | undefined): boolean {
  return cfg === undefined || (cfg.all_of.length === 0 && cfg.any_of.length === 0);
}

export function createAuthzScopesStage(cfg: ScopesConfig, realm: string): Stage {
  const allOf = [...cfg.all_of];
  const anyOf = [...cfg.any_of];
  const safeRealm = headerSafeRealm(realm);
  const needed = [...allOf, ...anyOf.filter((s) => !allOf.includes(s))].join(' ');
  const describe =
    anyOf.length === 0
      ? `all of: ${allOf.join(' ')}`
      : allOf.length === 0
        ? `one of: ${anyOf.join(' ')}`
        : `all of: ${allOf.join(' ')}; one of: ${anyOf.join(' ')}`;
  const refusal = (granted: string) =>
    new WardenError('ERR_AUTHZ_SCOPE_MISSING', {
      rule: 'authz.scopes',
      detail: `The access token lacks the scopes this route requires (${describe}).`,
      headers: { 'www-authenticate': `Bearer realm="${safeRealm}", error="insufficient_scope", scope="${needed}"` },
      attributes: { 'warden.scope.required': needed, ...(granted ? { 'warden.detail': `granted: ${granted.slice(0, 256)}` } : {}) },
    });

  return {
    id: 'authz-scopes',
    run(ctx) {
      const p = ctx.principal;
      // Only an optional-authn route without a token gets here without a principal: no scopes at all.
      const granted = p?.scopes;
      if (!granted) return refusal('');
      for (const s of allOf) if (!granted.has(s)) return refusal(p.scope);
      if (anyOf.length > 0 && !anyOf.some((s) => granted.has(s))) return refusal(p.scope);
      return undefined;
    },
  };
}
