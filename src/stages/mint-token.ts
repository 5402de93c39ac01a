/**
 * `mint-token` stage: the backend receives a short-lived token this sidecar signed (RFC 9068), in
 * the configured header, in place of the caller's external one (which authn already removed).
 * Requests without a principal (optional authn, no token) reach the backend with no token at all.
 */
import { WardenError } from '../errors.js';
import type { Minter } from '../identity/minter.js';
import type { RequestContext, Stage, Verdict } from '../pipeline/stage.js';

export function createMintTokenStage(minter: Minter, header: { name: string; bearer: boolean }): Stage {
  const { name, bearer } = header;
  const put = (ctx: RequestContext, jwt: string): Verdict => {
    ctx.upstreamHeaders[name] = bearer ? `Bearer ${jwt}` : jwt;
    return undefined;
  };
  return {
    id: 'mint-token',
    run(ctx) {
      const p = ctx.principal;
      if (!p) return undefined;
      const jwt = minter.tokenFor(p, ctx.peer, ctx);
      if (typeof jwt === 'string') return put(ctx, jwt);
      return jwt instanceof WardenError ? jwt : jwt.then((j) => (typeof j === 'string' ? put(ctx, j) : j));
    },
  };
}
