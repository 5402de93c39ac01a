/**
 * `authz-scopes` stage: coarse-grained authorization by the token's scopes — from sidecar.yaml, all
 * of `all_of` and at least one of `any_of` (when given); from an OpenAPI document, one of the
 * operation's security requirements in full (`alternatives`). A valid token without them gets 403
 * insufficient_scope with the RFC 6750 §3 challenge naming the scopes needed; fine-grained
 * decisions stay in the backend.
 */
import type { ScopesConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import { headerSafeRealm } from '../net/auth-challenge.js';
import type { Stage } from '../pipeline/stage.js';

export function isScopesNoop(cfg: ScopesConfig | ScopeAlternatives | undefined): boolean {
  if (cfg === undefined) return true;
  // An alternative without scopes (a scheme that grants none, e.g. HTTP bearer) admits any principal.
  if ('alternatives' in cfg) return cfg.alternatives.length === 0 || cfg.alternatives.some((a) => a.length === 0);
  return cfg.all_of.length === 0 && cfg.any_of.length === 0;
}

/** The request passes when it holds every scope of one alternative (OpenAPI security: OR of ANDs). */
export interface ScopeAlternatives {
  alternatives: readonly (readonly string[])[];
}

export function createAuthzScopesStage(cfg: ScopesConfig | ScopeAlternatives, realm: string): Stage {
  const safeRealm = headerSafeRealm(realm);
  if ('alternatives' in cfg) {
    const sets = cfg.alternatives.map((a) => [...a]);
    // The challenge names the first alternative: RFC 6750's `scope` is one set that would do.
    return scopesStage(sets, (sets[0] ?? []).join(' '), sets.map((a) => a.join(' ') || '(none)').join(' | '), safeRealm, 'operation');
  }
  // all_of + any_of as alternatives: every all_of scope plus one of any_of.
  const allOf = [...cfg.all_of];
  const anyOf = [...cfg.any_of];
  const sets = anyOf.length === 0 ? [allOf] : anyOf.map((s) => [...allOf, s]);
  const needed = [...allOf, ...anyOf.filter((s) => !allOf.includes(s))].join(' ');
  const describe =
    anyOf.length === 0
      ? `all of: ${allOf.join(' ')}`
      : allOf.length === 0
        ? `one of: ${anyOf.join(' ')}`
        : `all of: ${allOf.join(' ')}; one of: ${anyOf.join(' ')}`;
  return scopesStage(sets, needed, describe, safeRealm, 'route');
}

/** Passes when the principal holds every scope of one of `sets`. */
function scopesStage(sets: readonly (readonly string[])[], needed: string, describe: string, realm: string, what: string): Stage {
  const refusal = (granted: string) =>
    new WardenError('ERR_AUTHZ_SCOPE_MISSING', {
      rule: 'authz.scopes',
      detail: `The access token lacks the scopes this ${what} requires (${describe}).`,
      headers: { 'www-authenticate': `Bearer realm="${realm}", error="insufficient_scope", scope="${needed}"` },
      attributes: { 'warden.scope.required': needed, ...(granted ? { 'warden.detail': `granted: ${granted.slice(0, 256)}` } : {}) },
    });
  return {
    id: 'authz-scopes',
    run(ctx) {
      const p = ctx.principal;
      // Only an optional-authn route without a token gets here without a principal: no scopes at all.
      const granted = p?.scopes;
      if (!granted) return refusal('');
      for (const set of sets) if (set.every((s) => granted.has(s))) return undefined;
      return refusal(p.scope);
    },
  };
}
