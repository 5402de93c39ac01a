/**
 * What the IdP fault tests (idp.test.ts, idp-discovery.test.ts) share: the tokens their load sends
 * and what a sidecar must answer them while the IdP is killed, hangs, turns slow and comes back.
 */
import type { Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import type { DemoIdp } from '../../src/dev/demo-idp.js';
import { expectOutcomes, type LoadRequest, type LoadSample, type PhaseMarks } from './fault-tools.js';

export const UNAVAILABLE = '503 ERR_IDP_UNAVAILABLE';

export interface IdpTokenMix {
  /** The load's request `i`: a cached opaque token (`warm`), a JWT, a junk token, a JWT signed with an unknown key. */
  readonly next: (i: number) => LoadRequest;
  /** A token issued before the load and never sent by it (`freshCount` of them, then reused in turn). */
  readonly fresh: () => string;
}

export async function idpTokenMix(idp: DemoIdp, issuer: string, freshCount: number): Promise<IdpTokenMix> {
  const warm = await Promise.all([1, 2, 3].map(() => idp.issueToken()));
  const jwt = await idp.issueToken({ resource: idp.audience });
  const fresh = await Promise.all(Array.from({ length: freshCount }, () => idp.issueToken()));
  const foreignKid = await new SignJWT({ aud: idp.audience, scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-published' })
    .setIssuer(issuer)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const bearer = (token: string, kind: string): LoadRequest => ({ path: '/echo', headers: { authorization: `Bearer ${token}` }, kind });
  let nextFresh = 0;
  return {
    next: (i) => {
      const k = i % 8;
      if (k === 7) return bearer(foreignKid, 'foreign-kid');
      if (k === 5) return bearer(`junk-${i}`, 'junk');
      if (k === 3) return bearer(jwt.accessToken, 'jwt');
      return bearer((warm[i % warm.length] as { accessToken: string }).accessToken, 'warm');
    },
    fresh: () => (fresh[nextFresh++ % fresh.length] as { accessToken: string }).accessToken,
  };
}

/** A request of the mix that got what it should with the IdP up. */
export const answeredAsUp = (s: LoadSample): boolean =>
  s.status === 200 || (s.kind === 'junk' && s.status === 401) || (s.kind === 'foreign-kid' && s.status === 401);

/**
 * The load's outcomes through runFaultCycle's phases once the IdP's endpoints are known: JWTs
 * pass throughout (keys kept); while it is killed or hangs, junk is 503 (fail closed), a cached
 * token passes until the cache's max_ttl, an unknown kid is 401 or 503; slow within the response
 * timeout answers as if up.
 */
export function expectIdpFaultOutcomes(t: Test, samples: LoadSample[], marks: PhaseMarks): void {
  for (const phase of ['baseline', 'back-kill', 'back-hang', 'back-slow', 'slow']) expectOutcomes(t, samples, marks, phase, ['200'], 'jwt');
  expectOutcomes(t, samples, marks, 'baseline', ['200'], 'warm');
  expectOutcomes(t, samples, marks, 'baseline', ['401 ERR_AUTHN_TOKEN_INACTIVE'], 'junk');
  expectOutcomes(t, samples, marks, 'baseline', ['401 ERR_AUTHN_TOKEN_INVALID'], 'foreign-kid');
  for (const phase of ['kill', 'hang']) {
    expectOutcomes(t, samples, marks, phase, ['200', UNAVAILABLE], 'warm');
    expectOutcomes(t, samples, marks, phase, ['200'], 'jwt');
    expectOutcomes(t, samples, marks, phase, [UNAVAILABLE], 'junk');
    expectOutcomes(t, samples, marks, phase, ['401 ERR_AUTHN_TOKEN_INVALID', UNAVAILABLE], 'foreign-kid');
  }
  expectOutcomes(t, samples, marks, 'slow', ['200'], 'warm');
  expectOutcomes(t, samples, marks, 'slow', ['401 ERR_AUTHN_TOKEN_INACTIVE'], 'junk');
}
