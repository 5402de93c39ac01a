/**
 * A DPoP client (RFC 9449) for the tests: a key pair, proofs for any request (and, for the attacks,
 * any header, claims or signing key), and DPoP-bound tokens from the demo IdP's token endpoint
 * (oidc-provider binds a token to the key of the proof sent with the token request).
 */
import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { request } from 'undici';
import type { DemoIdp } from '../../src/dev/demo-idp.js';

export type DpopAlg = 'ES256' | 'RS256' | 'PS256' | 'EdDSA';

export interface ProofOptions {
  /** The access token the proof is for (its `ath`); absent = no ath. */
  token?: string;
  /** seconds since the epoch; default now. */
  iat?: number;
  jti?: string;
  /** Merged into the protected header (typ, alg, jwk). */
  header?: Record<string, unknown>;
  /** Merged into (or, when undefined, removed from) the claims. */
  claims?: Record<string, unknown>;
  /** Signs with this key instead of the client's (the header's jwk stays the client's). */
  signingKey?: KeyObject;
}

export interface DpopClient {
  readonly alg: DpopAlg;
  readonly jwk: JWK;
  /** RFC 7638 thumbprint of the public key: a bound token's cnf.jkt. */
  readonly jkt: string;
  readonly privateKey: KeyObject;
  proof(htm: string, htu: string, options?: ProofOptions): Promise<string>;
  /** A DPoP-bound token from the demo IdP (client_credentials): opaque, or a JWT with `resource`. */
  tokenFrom(idp: DemoIdp, options?: { resource?: string; scope?: string }): Promise<{ accessToken: string; tokenType: string }>;
}

export const athOf = (token: string) => createHash('sha256').update(token).digest('base64url');

function keyPair(alg: DpopAlg) {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

export async function dpopClient(alg: DpopAlg = 'ES256'): Promise<DpopClient> {
  const { privateKey, publicKey } = keyPair(alg);
  const jwk = await exportJWK(publicKey);
  const jkt = await calculateJwkThumbprint(jwk, 'sha256');
  const proof: DpopClient['proof'] = async (htm, htu, o = {}) => {
    const claims: JWTPayload = { htm, htu, jti: o.jti ?? randomUUID(), iat: o.iat ?? Math.floor(Date.now() / 1000) };
    if (o.token !== undefined) claims.ath = athOf(o.token);
    for (const [k, v] of Object.entries(o.claims ?? {})) {
      if (v === undefined) delete claims[k];
      else claims[k] = v;
    }
    return new SignJWT(claims).setProtectedHeader({ alg, typ: 'dpop+jwt', jwk, ...o.header }).sign(o.signingKey ?? privateKey);
  };
  return {
    alg,
    jwk,
    jkt,
    privateKey,
    proof,
    async tokenFrom(idp, { resource, scope = 'orders:read orders:write' } = {}) {
      const { clientId, clientSecret } = idp.demoClient;
      const form: Record<string, string> = { grant_type: 'client_credentials', scope };
      if (resource !== undefined) form.resource = resource;
      const res = await request(idp.tokenEndpoint, {
        method: 'POST',
        reset: true,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
          dpop: await proof('POST', idp.tokenEndpoint),
        },
        body: new URLSearchParams(form).toString(),
      });
      const body = (await res.body.json()) as { access_token: string; token_type: string };
      if (res.statusCode !== 200) throw new Error(`token endpoint answered ${res.statusCode}: ${JSON.stringify(body)}`);
      return { accessToken: body.access_token, tokenType: body.token_type };
    },
  };
}
