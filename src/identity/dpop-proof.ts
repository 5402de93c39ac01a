/**
 * DPoP proofs (RFC 9449 §4.3, §7.1): the `DPoP` header of a request presenting a DPoP-bound token
 * must hold one JWT, `typ: dpop+jwt`, signed with an allowed asymmetric algorithm by the public key
 * in its `jwk` header, for this request (`htm`, `htu`), fresh (`iat`), used once (`jti`), for this
 * token (`ath`), by the key the token is bound to (the RFC 7638 thumbprint = `cnf.jkt`).
 *
 * The cheap checks (shape, header, the key's size, its thumbprint against `cnf.jkt`) come before
 * the signature, and the signature before the replay cache: only the key the token is bound to is
 * ever verified with, and only a proof a token's holder signed can take a place in it. Server
 * nonces (§8, §9) are not used.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { TokensConfig } from '../config/types.js';
import { WardenError, type ErrorCode } from '../errors.js';
import type { EventAttributes } from '../telemetry/events.js';
import { htuMatches, type RequestUri } from './dpop-htu.js';
import { ReplayCache } from './dpop-replay.js';

export interface DpopRequest extends RequestUri {
  readonly method: string;
  /** The `DPoP` header as received (Node joins repeated ones with ", "). */
  readonly proof: string | string[] | undefined;
}

export interface DpopProofs {
  /**
   * The refusal of a proof that does not prove possession of key `jkt` for this request and `token`;
   * undefined when it does. `caller`: whose share of the replay cache the proof takes (an opaque
   * id of the token's subject or client, token-binding.ts); the key's holder when not given.
   */
  check(
    request: DpopRequest,
    token: string,
    jkt: string,
    attributes: EventAttributes,
    caller?: string,
  ): Promise<WardenError | undefined> | WardenError;
  /** A DPoP challenge (RFC 9449 §7.1): this realm, the error, and the algorithms proofs may use. */
  challenge(error: 'invalid_token' | 'invalid_dpop_proof', description: string): string;
}

/** Far more than any proof (a header with an RSA-4096 jwk, the claims, the signature); a bound on work. */
const MAX_PROOF_BYTES = 8192;
const MAX_JTI_CHARS = 256;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/**
 * The proof's `typ`, without case: RFC 7515 §4.1.9 lets it carry its media type's `application/`
 * prefix (jose's own check, made with the signature, takes both; a client writing the full media
 * type was refused).
 */
const DPOP_TYPES: ReadonlySet<string> = new Set(['dpop+jwt', 'application/dpop+jwt']);
/** Private key members of any key type (RFC 7518 §6): a proof carries the public key only. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
/** RSA proof keys: the modulus sizes clients use, and a public exponent of at most 32 bits (65537 is 17). */
const RSA_MIN_MODULUS_BITS = 2048;
const RSA_MAX_MODULUS_BITS = 4096;
const RSA_MAX_EXPONENT_BITS = 32;
/** A caller's share of the replay cache by default: an eighth, at least this many (≈ 15 proofs a second over 65 s), at most half. */
const MIN_REPLAY_SHARE = 1000;

/** How many live proofs one caller may hold in the replay cache (`tokens.dpop.replay_entries_per_caller`). */
export function replayShareOf(cfg: Pick<TokensConfig['dpop'], 'replay_cache_entries' | 'replay_entries_per_caller'>): number {
  const entries = cfg.replay_cache_entries;
  return cfg.replay_entries_per_caller ?? Math.min(Math.ceil(entries / 2), Math.max(MIN_REPLAY_SHARE, Math.ceil(entries / 8)));
}

/** The bit length of an unsigned big-endian integer in base64url (RFC 7518 §2 Base64urlUInt); 0 when not a string. */
function uintBits(v: unknown): number {
  if (typeof v !== 'string') return 0;
  const bytes = Buffer.from(v, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] as number));
}

/**
 * An RSA key whose verification costs what a client's does: the cost of a public-key operation
 * grows with the exponent's size and the modulus's, and a proof is verified before anything
 * proves its sender holds the token (a 3072-bit exponent cost ten normal requests).
 */
function rsaKeySizeOk(jwk: Record<string, unknown>): boolean {
  const n = uintBits(jwk.n);
  const e = uintBits(jwk.e);
  return n >= RSA_MIN_MODULUS_BITS && n <= RSA_MAX_MODULUS_BITS && e > 0 && e <= RSA_MAX_EXPONENT_BITS;
}

type ReplaySettings = Pick<TokensConfig['dpop'], 'replay_cache_entries' | 'replay_entries_per_caller' | 'max_age' | 'clock_skew'>;

/** A new replay cache with the limits of `cfg`: a proof is kept for as long as it could pass the `iat` check. */
export function replayCacheFor(cfg: ReplaySettings): ReplayCache {
  return new ReplayCache(cfg.replay_cache_entries, cfg.max_age + cfg.clock_skew, replayShareOf(cfg));
}

/**
 * Gives a cache the runtime before a reload has seen the limits of `cfg`: only once that reload
 * commits. Done while building, a reload that then failed (a broken OpenAPI document) left the old
 * `max_age` in force with the new, shorter life in the cache, and a proof could be replayed.
 */
export function configureReplayCache(replay: ReplayCache, cfg: ReplaySettings): void {
  replay.configure(cfg.replay_cache_entries, cfg.max_age + cfg.clock_skew, replayShareOf(cfg));
}

/**
 * `replay`: the cache of the proofs seen, the one of the runtime this one replaces on a reload.
 * Building the proofs changes nothing in it: its limits are set by configureReplayCache.
 */
export function createDpopProofs(cfg: TokensConfig['dpop'], realm: string, replay = replayCacheFor(cfg)): DpopProofs {
  const algorithms = [...cfg.algorithms];
  const allowed = new Set(algorithms);
  const algs = algorithms.join(' ');
  const maxAgeSec = cfg.max_age / 1000;
  const skewSec = cfg.clock_skew / 1000;
  const challenge = (error: 'invalid_token' | 'invalid_dpop_proof', description: string) =>
    `DPoP realm="${realm}", error="${error}", error_description="${description}", algs="${algs}"`;
  const refuse = (code: ErrorCode, rule: string, detail: string, attributes: EventAttributes) =>
    new WardenError(code, {
      rule,
      detail,
      attributes,
      headers: {
        'www-authenticate':
          code === 'ERR_AUTHN_DPOP_INVALID'
            ? challenge('invalid_dpop_proof', 'DPoP proof not valid')
            : challenge('invalid_token', 'Access token binding not proven'),
      },
    });
  const invalid = (rule: string, detail: string, attributes: EventAttributes) => refuse('ERR_AUTHN_DPOP_INVALID', rule, detail, attributes);

  async function verify(
    proof: string,
    request: DpopRequest,
    token: string,
    jkt: string,
    jwk: JWK,
    attributes: EventAttributes,
    caller: string,
  ) {
    // The thumbprint (a SHA-256 of a few members) before the signature: a key the token is not
    // bound to is refused without being verified with, whatever it costs to verify with.
    let thumbprint: string;
    try {
      thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
    } catch {
      return invalid('dpop.jwk', 'The DPoP proof must carry the public key it is signed with (jwk).', attributes);
    }
    if (thumbprint !== jkt)
      return refuse('ERR_AUTHN_TOKEN_UNBOUND', 'dpop.jkt', 'The DPoP proof is signed by a key the token is not bound to.', attributes);
    let payload: JWTPayload;
    try {
      // EmbeddedJWK verifies with the header's key, and refuses one that is not a public key.
      ({ payload } = await jwtVerify(proof, EmbeddedJWK, { algorithms, typ: 'dpop+jwt', clockTolerance: skewSec }));
    } catch {
      return invalid('dpop.signature', 'The DPoP proof does not verify with the key it carries.', attributes);
    }
    if (payload.htm !== request.method) return invalid('dpop.htm', 'The DPoP proof was made for another HTTP method.', attributes);
    if (typeof payload.htu !== 'string' || !htuMatches(payload.htu, request))
      return invalid('dpop.htu', 'The DPoP proof was made for another URI.', attributes);
    const nowMs = Date.now();
    const now = nowMs / 1000;
    const iat = payload.iat;
    if (typeof iat !== 'number' || !(iat >= now - maxAgeSec && iat <= now + skewSec))
      return invalid('dpop.iat', 'The DPoP proof is too old or dated in the future.', attributes);
    const jti = payload.jti;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_CHARS)
      return invalid('dpop.jti', 'The DPoP proof needs a jti.', attributes);
    // ath: the proof was made for this very token (§4.2), so a proof cannot travel to another one.
    if (payload.ath !== createHash('sha256').update(token).digest('base64url'))
      return invalid('dpop.ath', 'The DPoP proof was made for another access token.', attributes);
    // Keyed by the key and the jti: another key's proofs cannot use up this one's jtis.
    const key = createHash('sha256').update(jkt).update('\0').update(jti).digest('base64url');
    const seen = replay.remember(key, nowMs, caller);
    if (seen === 'replayed') return invalid('dpop.replay', 'The DPoP proof has been used before.', attributes);
    if (seen === 'share') {
      // This caller's own volume: the others keep their room (docs/tokens.md § Replay).
      return new WardenError('ERR_DPOP_REPLAY_SHARE', {
        rule: 'dpop.replay_share',
        detail: 'Too many recent DPoP proofs from this client; try again shortly.',
        headers: { 'retry-after': '1' },
        attributes,
      });
    }
    if (seen === 'full') {
      return new WardenError('ERR_DPOP_REPLAY_FULL', {
        rule: 'dpop.replay_cache',
        detail: 'Too many recent DPoP proofs to tell a replay; try again shortly.',
        headers: { 'retry-after': '1' },
        attributes,
      });
    }
    return undefined;
  }

  return {
    challenge,
    check(request, token, jkt, attributes, caller = `jkt:${jkt}`) {
      const proof = request.proof;
      if (proof === undefined)
        return invalid('dpop.missing', 'A DPoP-bound access token needs a DPoP proof in the DPoP header.', attributes);
      // Repeated headers arrive as an array or joined with ", " (a JWS has neither).
      if (typeof proof !== 'string' || proof.includes(',')) return invalid('dpop.multiple', 'Send one DPoP header.', attributes);
      if (proof.length > MAX_PROOF_BYTES || !COMPACT_JWS.test(proof))
        return invalid('dpop.format', 'The DPoP header is not a compact JWS.', attributes);
      let header: Record<string, unknown>;
      try {
        header = decodeProtectedHeader(proof);
      } catch {
        return invalid('dpop.format', 'The DPoP header is not a compact JWS.', attributes);
      }
      if (typeof header.typ !== 'string' || !DPOP_TYPES.has(header.typ.toLowerCase()))
        return invalid('dpop.typ', 'The DPoP proof must have typ "dpop+jwt".', attributes);
      if (typeof header.alg !== 'string' || !allowed.has(header.alg))
        return invalid('dpop.alg', `The DPoP proof must be signed with one of ${algs}.`, attributes);
      const jwk = header.jwk;
      if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk) || PRIVATE_MEMBERS.some((m) => m in jwk))
        return invalid('dpop.jwk', 'The DPoP proof must carry the public key it is signed with (jwk).', attributes);
      if ((jwk as { kty?: unknown }).kty === 'RSA' && !rsaKeySizeOk(jwk as Record<string, unknown>))
        return invalid(
          'dpop.jwk',
          `The DPoP proof's RSA key must have a ${RSA_MIN_MODULUS_BITS}–${RSA_MAX_MODULUS_BITS}-bit modulus and an exponent of at most ${RSA_MAX_EXPONENT_BITS} bits.`,
          attributes,
        );
      return verify(proof, request, token, jkt, jwk, attributes, caller);
    },
  };
}
