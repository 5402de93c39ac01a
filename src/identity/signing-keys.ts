/**
 * The sidecar's token-signing keys: ECDSA P-256 (ES256), made in memory (0.2 ms each), rotated on
 * a schedule.
 *
 * A key is published before it signs: the JWKS lists the current key, the next one and the retired
 * ones. A verifier refetches the JWKS on an unknown `kid`, but not within its cooldown of the last
 * fetch (jose: 30 s), and any HTTP cache may hold the document for its max-age (60 s): a key that
 * signed the moment it was published was refused for up to that long (docs/adversarial.md 187). So
 * the next key is made at each rotation and used from the one after it, at least `PUBLISH_AHEAD_MS`
 * later. A retired key stays until every token it signed has expired, plus the leeway (clock skew):
 * each key keeps the latest `exp` it signed (`signerFor`), because the ring's token lifetime is the
 * one in force now, and a key carried over a reload that lowered `mint.ttl` signed longer tokens
 * under the one before (retired on the new, shorter lifetime, a key whose 1 h tokens had 57 min left
 * left the JWKS 3 min after such a reload: red-team round 14, finding 2).
 *
 * The ring outlives a reload: a token runtime built again (a reload that changes `tokens`) takes the
 * ring of the one before (`createSigningKeys(options, from)`); a new ring dropped the old key from
 * the JWKS while its tokens were valid. A restart starts a new ring; verifiers refetch on the unknown
 * `kid` (within their cooldown of a fetch from the process before, they refuse it).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { MIN_KEY_ROTATION_MS } from '../config/key-rotation.js';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: JWK;
  /**
   * s epoch: the latest `exp` of a token this key signed (0: none). On the key, not the ring: it
   * follows the key into the ring a reload builds, and a token the ring before is still signing
   * (a request in flight across the reload) counts too.
   */
  signedUntil: number;
}

export interface SigningKeyOptions {
  rotateEvery: number;
  /**
   * ms: the longest a token signed from now on lives. A key is published at least this + `leeway`
   * after it is retired, and in any case until the latest `exp` it signed + `leeway`.
   */
  tokenLifetime: number;
  /** ms: clock skew allowed to verifiers; a retired key stays this long after its last token's `exp`. */
  leeway: number;
  /** ms epoch clock (tests); `Date.now` by default. */
  now?: () => number;
}

/** The keys as they stand, handed to the ring a reload builds. */
export interface KeyRingState {
  readonly current: SigningKey;
  readonly next: SigningKey;
  readonly retired: readonly RetiredKey[];
  /** ms epoch of the last rotation (or of the ring's start). */
  readonly rotatedAt: number;
}

export interface SigningKeys {
  current(): SigningKey;
  /**
   * The current key, for a token that expires at `exp` (s epoch): the key notes it and stays in the
   * JWKS until then + leeway. Every token signed with a ring key must be signed with the key this
   * returns (one comparison, no allocation).
   */
  signerFor(exp: number): SigningKey;
  /** The public keys as a JWKS document (JSON text, rebuilt only when the ring changes). */
  jwksJson(): string;
  /** The next key signs from now on; a new next key is published. */
  rotate(): Promise<void>;
  state(): KeyRingState;
  stop(): void;
}

interface RetiredKey {
  readonly key: SigningKey;
  /**
   * ms epoch after which no token signed by this key can still be valid (+ leeway), as known when it
   * was retired; `key.signedUntil` is read again at each publication (a token signed in the moment
   * of the rotation).
   */
  readonly retireAfter: number;
}

/** How long a key is published before it signs: a verifier's refetch cooldown (30 s) and the JWKS's max-age (60 s). */
export const PUBLISH_AHEAD_MS = MIN_KEY_ROTATION_MS;

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, privateKey, publicJwk: Object.freeze({ ...jwk, kid, alg: 'ES256', use: 'sig' }), signedUntil: 0 };
}

export async function createSigningKeys(options: SigningKeyOptions, from?: KeyRingState): Promise<SigningKeys> {
  const clock = options.now ?? (() => Date.now());
  // Until the last token it signed has expired, with the leeway of the ring publishing it (a reload
  // may change the leeway: the one at retirement is in retireAfter).
  const publishedUntil = (r: RetiredKey) => Math.max(r.retireAfter, r.key.signedUntil * 1000 + options.leeway);
  let current = from?.current ?? (await newKey());
  let next = from?.next ?? (await newKey());
  let retired: RetiredKey[] = [...(from?.retired ?? [])];
  let rotatedAt = from?.rotatedAt ?? clock();
  let jwks = '';
  const publish = () => {
    const now = clock();
    retired = retired.filter((r) => publishedUntil(r) > now);
    jwks = JSON.stringify({ keys: [current.publicJwk, next.publicJwk, ...retired.map((r) => r.key.publicJwk)] });
  };
  publish();

  // A reload keeps the schedule: rebuilding the ring often must not put rotation off for ever.
  const every = Math.max(options.rotateEvery, PUBLISH_AHEAD_MS);
  let rotation: NodeJS.Timeout | undefined;
  let stopped = false;
  const schedule = () => {
    clearTimeout(rotation);
    if (!stopped) rotation = setTimeout(() => void rotate(), Math.max(0, rotatedAt + every - clock())).unref();
  };
  const rotate = async () => {
    const after = await newKey();
    const now = clock();
    // The lifetime in force now, or the latest exp the key signed: a reload that lowered the
    // lifetime carried this key over from a ring whose tokens lived longer.
    retired.push({ key: current, retireAfter: Math.max(now + options.tokenLifetime, current.signedUntil * 1000) + options.leeway });
    current = next;
    next = after;
    rotatedAt = now;
    publish();
    schedule();
  };
  schedule();
  // Retired keys leave the JWKS once their tokens are gone, between rotations too.
  const sweep = setInterval(publish, Math.max(1000, Math.min(options.tokenLifetime, 60_000))).unref();

  return {
    current: () => current,
    signerFor(exp) {
      const key = current;
      if (exp > key.signedUntil) key.signedUntil = exp;
      return key;
    },
    jwksJson: () => jwks,
    rotate,
    state: () => ({ current, next, retired: [...retired], rotatedAt }),
    stop() {
      stopped = true;
      clearTimeout(rotation);
      clearInterval(sweep);
    },
  };
}
