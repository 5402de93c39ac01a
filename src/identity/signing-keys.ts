/**
 * The sidecar's token-signing keys: ECDSA P-256 (ES256), made in memory (0.2 ms each), rotated on
 * a schedule. A retired key stays in the JWKS until every token it signed has expired, so a backend
 * never sees a valid token it cannot verify. A restart starts a new key; backends fetch the JWKS
 * again on an unknown `kid`, as RFC 7517 consumers do.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
}

export interface SigningKeys {
  current(): SigningKey;
  /** The public keys as a JWKS document (JSON text, rebuilt only on rotation). */
  jwksJson(): string;
  rotate(): Promise<void>;
  stop(): void;
}

interface Held {
  key: SigningKey;
  /** ms epoch after which no token signed by this key can still be valid. */
  retireAfter: number;
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, privateKey, publicJwk: Object.freeze({ ...jwk, kid, alg: 'ES256', use: 'sig' }) };
}

/** `tokenLifetime` + leeway is how long a retired key must still be published. */
export async function createSigningKeys(options: { rotateEvery: number; tokenLifetime: number; leeway: number }): Promise<SigningKeys> {
  let current = await newKey();
  let retired: Held[] = [];
  let jwks = '';
  const publish = () => {
    const now = Date.now();
    retired = retired.filter((h) => h.retireAfter > now);
    jwks = JSON.stringify({ keys: [current.publicJwk, ...retired.map((h) => h.key.publicJwk)] });
  };
  publish();

  const rotate = async () => {
    const next = await newKey();
    retired.push({ key: current, retireAfter: Date.now() + options.tokenLifetime + options.leeway });
    current = next;
    publish();
  };
  const rotation = setInterval(() => void rotate(), options.rotateEvery).unref();
  // Retired keys leave the JWKS once their tokens are gone, between rotations too.
  const sweep = setInterval(publish, Math.max(1000, Math.min(options.tokenLifetime, 60_000))).unref();

  return {
    current: () => current,
    jwksJson: () => jwks,
    rotate,
    stop() {
      clearInterval(rotation);
      clearInterval(sweep);
    },
  };
}
