/**
 * Authentication stages: the token is read from its configured source and removed from what the
 * backend receives, then checked — `authn-jwt` verifies it locally against the issuer's keys,
 * `authn-introspect` asks the IdP (RFC 7662, cached), and `authn` (mode auto) picks by shape: a
 * token that parses as a JWS is verified, any other is introspected. Mode `off` only strips
 * credentials, so an external token never reaches the backend on public routes either.
 */
import type { RouteAuthnConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { TokenRuntime, AuthnOutcome } from '../identity/token-runtime.js';
import type { RequestContext, Stage, StageId, Verdict } from '../pipeline/stage.js';

const STAGE_IDS: Record<RouteAuthnConfig['mode'], StageId> = {
  auto: 'authn',
  jwt: 'authn-jwt',
  introspect: 'authn-introspect',
  off: 'authn',
};

const missing = () => new WardenError('ERR_AUTHN_TOKEN_MISSING', { rule: 'token.missing', detail: 'This route needs an access token.' });

export function createAuthnStage(cfg: RouteAuthnConfig, runtime: TokenRuntime): Stage {
  const { sources } = runtime;
  const id = STAGE_IDS[cfg.mode];
  if (cfg.mode === 'off') {
    return {
      id,
      run(ctx) {
        sources.strip(ctx);
        return undefined;
      },
    };
  }
  const mode = cfg.mode;
  const allowed = cfg.issuers.length > 0 ? new Set(cfg.issuers) : undefined;
  const { binding } = runtime;
  // A sender-constrained token's proof (certificate, DPoP) belongs to each request: checked after
  // every authentication, the cached ones included.
  const accept = (ctx: RequestContext, outcome: AuthnOutcome, token: string, dpopScheme: boolean): Verdict | Promise<Verdict> => {
    if (outcome instanceof WardenError) return outcome;
    const refused = binding.check(ctx, outcome, token, dpopScheme);
    if (refused === undefined) {
      ctx.principal = outcome;
      return undefined;
    }
    if (refused instanceof WardenError) return refused;
    return refused.then((r) => {
      if (r === undefined) ctx.principal = outcome;
      return r;
    });
  };

  return {
    id,
    run(ctx) {
      const token = sources.extract(ctx);
      sources.strip(ctx);
      if (token instanceof WardenError) return token;
      if (token === undefined) return cfg.optional ? undefined : missing();
      const dpopScheme = sources.dpopScheme(ctx);
      const outcome = runtime.authenticate(token, mode, allowed, ctx.traceContext, ctx.connection);
      return outcome instanceof Promise ? outcome.then((o) => accept(ctx, o, token, dpopScheme)) : accept(ctx, outcome, token, dpopScheme);
    },
  };
}
