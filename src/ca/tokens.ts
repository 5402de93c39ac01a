/**
 * Bootstrap tokens: 32 random bytes (base64url), shown once; the store keeps only their SHA-256.
 * Each is bound to one SPIFFE ID (and optional DNS names), expires, is single-use, and can be revoked
 * (by its public id, or with every unused token of its identity). Failures are distinct (missing /
 * unknown / used / expired) so an operator can tell a typo from a replay; a revoked token is answered
 * exactly as an unknown one (no oracle for whoever holds a leaked token), its event and audit row say
 * `ca.token.revoked`.
 *
 * A token is consumed only together with the issuance it pays for (see `consume`, called inside the
 * ledger transaction): a request refused for its CSR or names leaves the token usable.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CreatedToken } from './api.js';
import { WardenError } from '../errors.js';
import type { CaStore, TokenRow } from './store.js';

export interface TokenGrant {
  sha256: string;
  spiffeId: string;
  dnsNames: string[];
  expiresAt: number;
}

/** A used token and the certificate it paid for: what a retried enrollment may get again. */
export interface SpentToken {
  spiffeId: string;
  dnsNames: string[];
  serial: string;
  keyId: string;
}

export interface TokenRequest {
  spiffeId: string;
  dnsNames: readonly string[];
  ttlMs: number;
}

export interface Tokens {
  create(request: TokenRequest): CreatedToken;
  /** The grant of a presented token, or the reason it cannot be used. Consumes nothing. */
  check(token: unknown): TokenGrant;
  /**
   * A used (not revoked) token that recorded the certificate it paid for, whatever its expiry since:
   * the certificate's life bounds a retry, not the token's. Undefined for anything else (`check` says why).
   */
  spent(token: unknown): SpentToken | undefined;
  /** Marks the token used by `issued`; call inside the transaction that records the certificate. */
  consume(grant: TokenGrant, issued: { serial: string; keyId: string }): void;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The answer to a used token (also to a retry of its enrollment that is not one: another key or names). */
export function tokenUsed(): WardenError {
  return new WardenError('ERR_CA_TOKEN_USED', { detail: 'bootstrap tokens are single-use; create a new one' });
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function createTokens(store: CaStore, now: () => number = Date.now): Tokens {
  function reasonNotUsable(row: TokenRow, t: number): WardenError | undefined {
    if (row.revoked_at !== null) {
      return new WardenError('ERR_CA_TOKEN_UNKNOWN', { rule: 'ca.token.revoked', attributes: { 'warden.spiffe.id': row.spiffe_id } });
    }
    if (row.used_at !== null) return tokenUsed();
    if (row.expires_at <= t) return new WardenError('ERR_CA_TOKEN_EXPIRED', { detail: 'create a new bootstrap token' });
    return undefined;
  }

  return {
    create({ spiffeId, dnsNames, ttlMs }) {
      const token = randomBytes(32).toString('base64url');
      const t = now();
      const names = [...new Set(dnsNames.map((n) => n.toLowerCase()))];
      const id = randomBytes(8).toString('hex');
      store.insertToken({
        id,
        sha256: hashToken(token),
        spiffe_id: spiffeId,
        dns_names: JSON.stringify(names),
        created_at: t,
        expires_at: t + ttlMs,
        used_at: null,
        revoked_at: null,
      });
      return { token, id, spiffe_id: spiffeId, dns_names: names, expires_at: new Date(t + ttlMs).toISOString() };
    },
    check(token) {
      if (typeof token !== 'string' || token.trim() === '') {
        throw new WardenError('ERR_CA_TOKEN_MISSING', { detail: 'the request body needs "token": the bootstrap token' });
      }
      const sha256 = TOKEN_SHAPE.test(token) ? hashToken(token) : undefined;
      const row = sha256 === undefined ? undefined : store.findToken(sha256);
      if (!row || sha256 === undefined) throw new WardenError('ERR_CA_TOKEN_UNKNOWN');
      const refusal = reasonNotUsable(row, now());
      if (refusal) throw refusal;
      return { sha256, spiffeId: row.spiffe_id, dnsNames: JSON.parse(row.dns_names) as string[], expiresAt: row.expires_at };
    },
    spent(token) {
      const row = typeof token === 'string' && TOKEN_SHAPE.test(token) ? store.findToken(hashToken(token)) : undefined;
      if (!row || row.revoked_at !== null || row.used_at === null || !row.serial || !row.key_id) return undefined;
      return { spiffeId: row.spiffe_id, dnsNames: JSON.parse(row.dns_names) as string[], serial: row.serial, keyId: row.key_id };
    },
    consume(grant, issued) {
      const t = now();
      if (store.consumeToken(grant.sha256, t, issued)) return;
      // Lost a race with a concurrent enrollment, or expired while the certificate was signed.
      const row = store.findToken(grant.sha256);
      throw (row && reasonNotUsable(row, t)) ?? new WardenError('ERR_CA_TOKEN_UNKNOWN');
    },
  };
}
