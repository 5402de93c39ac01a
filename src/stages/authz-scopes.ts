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
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { carriesToken, type ApiKeyLocation, type SecurityAlternative } from '../openapi/security-requirements.js';
import type { TokenPlaces } from '../config/token-places.js';

/** Whether an alternative asks for nothing but a principal (a scheme that grants no scopes, e.g. HTTP bearer). */
const asksNothing = (a: SecurityAlternative) => a.scopes.length === 0 && a.apiKeys.length === 0 && !a.peer;

/**
 * Whether the check can be left out. `tokenOptional`: the route's authn lets a request without a
 * token through (`authn.optional`, the operator's or plan.ts's).
 */
export function isScopesNoop(cfg: ScopesConfig | ScopeAlternatives | undefined, tokenOptional = false): boolean {
  if (cfg === undefined) return true;
  if ('alternatives' in cfg) {
    if (cfg.alternatives.length === 0) return true;
    // An alternative that asks for a principal alone is met by any request authn let through only
    // while authn requires a token: every alternative needs one (where one needs none, an API key
    // or a certificate, the token is optional, plan.ts: skipped, the check let `[{oauth: []},
    // {key: []}]` serve a request with neither, docs/adversarial.md 231), and the operator did not
    // make it optional (skipped, `[{bearer: []}]` served anonymous callers, 306).
    return !tokenOptional && cfg.alternatives.some(asksNothing) && cfg.alternatives.every((a) => a.token);
  }
  return cfg.all_of.length === 0 && cfg.any_of.length === 0;
}

/** The request passes when it meets one alternative in full (OpenAPI security: OR of ANDs). */
export interface ScopeAlternatives {
  alternatives: readonly SecurityAlternative[];
}

/**
 * `tokenPlaces`: where the configuration reads a caller's token. An API key there is never met: the
 * header (cookie, parameter) holds the token, not a key (the document is refused at load for it,
 * security-requirements.ts; this holds for alternatives built otherwise). Before, any bearer token
 * met `{type: apiKey, in: header, name: Authorization}`.
 */
export function createAuthzScopesStage(cfg: ScopesConfig | ScopeAlternatives, realm: string, tokenPlaces?: TokenPlaces): Stage {
  const safeRealm = headerSafeRealm(realm);
  if ('alternatives' in cfg) {
    const sets = cfg.alternatives.map((a) => [...a.scopes]);
    // The challenge names the first alternative with scopes: RFC 6750's `scope` is one set that would do.
    const needed = (sets.find((set) => set.length > 0) ?? []).join(' ');
    const describe = cfg.alternatives.map(describeAlternative).join(' | ');
    if (cfg.alternatives.every((a) => a.apiKeys.length === 0 && !a.peer))
      return scopesStage(sets, needed, describe, safeRealm, 'operation');
    return securityStage(cfg.alternatives, needed, describe, safeRealm, tokenPlaces);
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

/** The 403 insufficient_scope refusal, its challenge written once; `granted`: the token's scopes, for the event. */
function refusalOf(rule: string, detail: string, needed: string, realm: string): (granted: string) => WardenError {
  const challenge = `Bearer realm="${realm}", error="insufficient_scope", scope="${needed}"`;
  return (granted) =>
    new WardenError('ERR_AUTHZ_SCOPE_MISSING', {
      rule,
      detail,
      headers: { 'www-authenticate': challenge },
      attributes: { 'warden.scope.required': needed, ...(granted ? { 'warden.detail': `granted: ${granted.slice(0, 256)}` } : {}) },
    });
}

/** Passes when the principal holds every scope of one of `sets`. */
function scopesStage(sets: readonly (readonly string[])[], needed: string, describe: string, realm: string, what: string): Stage {
  const refusal = refusalOf('authz.scopes', `The access token lacks the scopes this ${what} requires (${describe}).`, needed, realm);
  // Only an optional-authn route gets here without a principal: the caller sent no token, which
  // is unauthenticated (401, as authn answers it), not a token short of scopes (403).
  const missing = () => new WardenError('ERR_AUTHN_TOKEN_MISSING', { rule: 'authz.scopes', detail: `This ${what} needs an access token.` });
  return {
    id: 'authz-scopes',
    run(ctx) {
      const p = ctx.principal;
      const granted = p?.scopes;
      if (!granted) return missing();
      for (const set of sets) if (set.every((s) => granted.has(s))) return undefined;
      return refusal(p.scope);
    },
  };
}

function describeAlternative(a: SecurityAlternative): string {
  const parts = [...a.scopes];
  for (const key of a.apiKeys) parts.push(`${key.in} ${key.name}`);
  if (a.peer) parts.push('a verified client certificate');
  return parts.join(' + ') || '(none)';
}

/**
 * Alternatives that also ask for an API key or a client certificate (mutualTLS): each is met in
 * full or not at all. An API key is checked for being sent, not for its value.
 */
function securityStage(
  alternatives: readonly SecurityAlternative[],
  needed: string,
  describe: string,
  realm: string,
  tokenPlaces: TokenPlaces | undefined,
): Stage {
  // Decided here, once: an alternative asking for a key where the token is read can never be met.
  const usable = alternatives.filter((a) => !a.apiKeys.some((key) => carriesToken(key, tokenPlaces)));
  const refusal = refusalOf(
    'authz.security',
    `The request meets none of the security requirements of this operation (${describe}).`,
    needed,
    realm,
  );
  const none: ReadonlySet<string> = new Set();
  // A caller that sent no token (authn is optional where an alternative needs none) and met no
  // alternative: where a token would do, it is unauthenticated (401, as authn itself would answer);
  // where every alternative needs a certificate, it lacks one; otherwise (API keys) as before, 403.
  const detail = `The request meets none of the security requirements of this operation (${describe}).`;
  const missing = alternatives.some((a) => a.token)
    ? () => new WardenError('ERR_AUTHN_TOKEN_MISSING', { rule: 'authz.security', detail })
    : alternatives.every((a) => a.peer)
      ? () => new WardenError('ERR_PEER_CERT_REQUIRED', { rule: 'authz.security', detail })
      : () => refusal('');
  return {
    id: 'authz-scopes',
    run(ctx) {
      const granted = ctx.principal?.scopes ?? none;
      for (const a of usable) {
        // Without a token (authn is optional when some alternative needs none), a token's alternative is unmet.
        if (a.token && ctx.principal === undefined) continue;
        if (a.peer && !ctx.peer.verified) continue;
        if (!a.scopes.every((s) => granted.has(s))) continue;
        if (a.apiKeys.every((key) => apiKeySent(key, ctx))) return undefined;
      }
      return ctx.principal === undefined ? missing() : refusal(ctx.principal.scope);
    },
  };
}

/**
 * Whether the key reaches the backend: read from what it will receive (the token stripped by authn
 * before this stage), not from what the client sent. Before, a key "sent" in a place the token was
 * read from (the Cookie header, with a cookie token source) met the alternative though the backend
 * got no key, or only the other cookies.
 */
function apiKeySent(key: ApiKeyLocation, ctx: RequestContext): boolean {
  if (key.in === 'header') {
    // As the client sent it: a header the sidecar removed, or wrote itself, is no key of the caller's.
    const value = ctx.upstreamHeaders[key.name];
    const sent = ctx.headers[key.name];
    if (value === undefined || value.length === 0 || sent === undefined) return false;
    return typeof value === 'string' ? value === sent : typeof sent !== 'string' && value.join('\n') === sent.join('\n');
  }
  // authn removes a token's query pair from ctx.search.
  if (key.in === 'query') return ctx.search.length > 1 && (new URLSearchParams(ctx.search).get(key.name) ?? '') !== '';
  const cookie = ctx.upstreamHeaders.cookie;
  if (cookie === undefined) return false;
  for (const pair of (typeof cookie === 'string' ? cookie : cookie.join('; ')).split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === key.name && pair.slice(eq + 1).trim() !== '') return true;
  }
  return false;
}
