/**
 * A second, test-owned token issuer: a real HTTP server with OIDC discovery and a JWKS, and the
 * private key behind it, so tests can sign any claims and headers — valid tokens, expired ones,
 * and the classic JWT attacks (alg none, HS256 keyed with the public key, foreign kid, jku/x5u,
 * crit). It counts JWKS fetches and can be told to fail them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, SignJWT, type JWK, type JWTPayload } from 'jose';

export interface ForgedIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly kid: string;
  readonly publicKeyPem: string;
  /** JWKS requests served so far. */
  readonly jwksFetches: number;
  /** While true, /jwks answers 503. */
  failJwks: boolean;
  /** A token signed with the published key (ES256) unless `key` says otherwise. */
  sign(payload: JWTPayload, header?: Record<string, unknown>, key?: KeyObject): Promise<string>;
  /** A fresh ES256 key the JWKS does not publish. */
  foreignKey(): KeyObject;
  /** Publishes a fresh ES256 key beside the current one, under `kid` (by default the current one's), and returns it. */
  publishNextKey(kid?: string): Promise<KeyObject>;
  /** Hand-assembled tokens jose refuses to make. */
  unsigned(payload: JWTPayload): string;
  hmacWithPublicKey(payload: JWTPayload): string;
  /** ES256 with the published key and any header at all (jose refuses to sign e.g. unknown `crit`). */
  signRaw(payload: JWTPayload, header: Record<string, unknown>): string;
  close(): Promise<void>;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

export async function startForgedIssuer(t: { teardown(fn: () => unknown): void }): Promise<ForgedIssuer> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  const published: JWK[] = [{ ...jwk, kid, alg: 'ES256', use: 'sig' }];
  let jwks = JSON.stringify({ keys: published });
  let fetches = 0;
  const state = { failJwks: false };
  const server: Server = createServer((req, res) => {
    const json = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (req.url === '/.well-known/openid-configuration') return json(200, JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    if (req.url === '/jwks') {
      fetches++;
      return state.failJwks ? json(503, '{}') : json(200, jwks);
    }
    json(404, '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const publicKeyPem = createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }).toString();
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  t.teardown(close);

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    kid,
    publicKeyPem,
    get jwksFetches() {
      return fetches;
    },
    get failJwks() {
      return state.failJwks;
    },
    set failJwks(v: boolean) {
      state.failJwks = v;
    },
    sign(payload, header = {}, key = privateKey) {
      return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid, ...header }).sign(key);
    },
    foreignKey: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    async publishNextKey(nextKid = kid) {
      const next = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      published.push({ ...(await exportJWK(next.publicKey)), kid: nextKid, alg: 'ES256', use: 'sig' });
      jwks = JSON.stringify({ keys: published });
      return next.privateKey;
    },
    unsigned: (payload) => `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(payload)}.`,
    hmacWithPublicKey(payload) {
      const input = `${b64({ alg: 'HS256', typ: 'at+jwt', kid })}.${b64(payload)}`;
      return `${input}.${createHmac('sha256', publicKeyPem).update(input).digest('base64url')}`;
    },
    signRaw(payload, header) {
      const input = `${b64({ alg: 'ES256', typ: 'at+jwt', kid, ...header })}.${b64(payload)}`;
      return `${input}.${cryptoSign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    },
    close,
  };
}
