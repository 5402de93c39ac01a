/**
 * The CA's operations, independent of HTTP: enroll, renew, create, list and revoke tokens, revoke, list. Each success
 * writes an audit row and raises its catalogue event; refusals are thrown as WardenErrors and
 * recorded by the caller (src/ca/server.ts), which knows the request.
 */
import type { Context } from '@opentelemetry/api';
import type {
  CertificateRecord,
  CreatedToken,
  CreateTokenRequest,
  IssuedCredentials,
  RevocationReason,
  RevokeRequest,
  RevokeResult,
  RevokeTokensRequest,
  RevokeTokensResult,
  TokenRecord,
} from './api.js';
import { WardenError } from '../errors.js';
import type { EventBus } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import { isReservedSpiffePath, isSpiffeId, parseSpiffeId, spiffeIdProblem } from '../net/spiffe-id.js';
import { adminSpiffeId } from './layout.js';
import { checkCsr, namesWithinGrant, type CheckedCsr } from './csr-policy.js';
import type { CrlPublisher } from './crl.js';
import type { IssuedCertificate, Issuer } from './issuer.js';
import { dnsSans, x509 } from './pki.js';
import { canonicalSerial } from '../net/serial.js';
import type { CaStore, CertificateKind, CertificateWithStatus } from './store.js';
import { tokenUsed, type SpentToken, type Tokens } from './tokens.js';

/** Who is calling: for audit rows and events. */
export interface Caller {
  /** SPIFFE ID of the client certificate, or `anonymous` for enrollment. */
  actor: string;
  clientAddress?: string | undefined;
  /** The API request's id, for its events. */
  requestId?: string | undefined;
  /** The API request's span context: its events carry it, which correlates them with its span. */
  traceContext?: Context | undefined;
}

/** An authenticated workload certificate (src/ca/client-auth.ts). */
export interface WorkloadPeer extends Caller {
  spiffeId: string;
  record: CertificateWithStatus;
  certificate: x509.X509Certificate;
}

export interface CaServiceDeps {
  store: CaStore;
  tokens: Tokens;
  issuer: Issuer;
  crl: CrlPublisher;
  events: EventBus;
  trustDomain: string;
  intermediatePem: string;
  bundlePem: string;
  /** Default bootstrap token lifetime (ms). */
  tokenTtlMs: number;
  /**
   * Unexpired, unrevoked certificates one SPIFFE ID may hold (ca.yaml certificates.max_active_per_identity);
   * an enrollment or renewal past it is refused with ERR_CA_IDENTITY_LIMIT. Default 256.
   */
  maxActivePerIdentity?: number;
  /**
   * Told the serials of each committed revocation (after the CRL is re-signed), and awaited: the
   * server re-issues its own certificate when it is among them (server.ts). Must not throw.
   */
  onRevoked?: (serials: readonly string[]) => Promise<void>;
  /** Where a CRL that could not be re-signed after a committed revocation, and refusals at the cap, are reported. */
  logger?: Pick<Logger, 'error' | 'warn'>;
  now?: () => number;
}

export interface CaService {
  enroll(body: Record<string, unknown>, caller: Caller): Promise<IssuedCredentials>;
  renew(body: Record<string, unknown>, peer: WorkloadPeer): Promise<IssuedCredentials>;
  createToken(body: CreateTokenRequest | Record<string, unknown>, caller: Caller): CreatedToken;
  revoke(body: RevokeRequest | Record<string, unknown>, caller: Caller): Promise<RevokeResult>;
  list(query: { spiffe_id?: string | undefined; status?: string | undefined }): CertificateRecord[];
  listTokens(query: { spiffe_id?: string | undefined }): TokenRecord[];
  revokeTokens(body: RevokeTokensRequest | Record<string, unknown>, caller: Caller): RevokeTokensResult;
}

const DNS_NAME = /^(\*\.)?[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$/i;
const REASONS: readonly RevocationReason[] = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'];
const STATUSES = ['valid', 'revoked', 'expired'] as const;
const MAX_TOKEN_TTL_S = 7 * 86_400;
/** certificates.max_active_per_identity's default (src/config/ca-schema.ts). */
const DEFAULT_MAX_ACTIVE_PER_IDENTITY = 1024;
const TOKEN_ID = /^[0-9a-f]{16}$/;
/** Said when a lookup finds nothing: the row may have been there and pruned (retention.ts). */
const PRUNED = ' (expired ones leave the ledger after database.keep_expired)';

/** What made a CRL refresh fail, for the administrator: the underlying error's code or message, short. */
function causeOf(err: unknown): string {
  const cause = (err instanceof Error && err.cause instanceof Error ? err.cause : err) as NodeJS.ErrnoException;
  const text = typeof cause?.code === 'string' ? `${cause.code}: ${cause.message}` : String(cause?.message ?? cause);
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}

function invalid(detail: string): WardenError {
  return new WardenError('ERR_CA_REQUEST_INVALID', { detail });
}

export function createCaService(deps: CaServiceDeps): CaService {
  const { store, tokens, issuer, crl, events, trustDomain } = deps;
  const now = deps.now ?? Date.now;
  const maxActive = deps.maxActivePerIdentity ?? DEFAULT_MAX_ACTIVE_PER_IDENTITY;
  /** When refuseOverLimit last logged each identity. */
  const limitWarnings = new Map<string, number>();

  /**
   * Refuses a new certificate for `spiffeId` when it already holds `maxActive` unexpired, unrevoked
   * ones. Checked before signing (cheap refusals) and again in the issuing transaction (the bound
   * holds under concurrent requests). One workload certificate renewed ~44 times a second, each
   * renewal a new 24 h certificate: nothing bounded them, and revoking the identity then put them
   * all on the CRL — past ~125 000 it could not be signed, and every sidecar must fetch it.
   */
  function refuseOverLimit(spiffeId: string, caller: Caller): void {
    const t = now();
    const { count, firstExpiry } = store.activeCountOf(spiffeId, t);
    if (count < maxActive) return;
    // Over the limit by more than one (it was lowered): a place frees when enough have expired.
    const freesAt = count > maxActive ? (store.activeExpiryAt(spiffeId, t, count - maxActive) ?? firstExpiry) : firstExpiry;
    const waitS = Math.max(1, Math.ceil(((freesAt ?? t) - t) / 1000));
    // One line per identity a minute: a workload renewing in a loop is refused at its own pace.
    const warnedAt = limitWarnings.get(spiffeId);
    if (warnedAt === undefined || t - warnedAt >= 60_000) {
      if (limitWarnings.size >= 10_000) limitWarnings.clear();
      limitWarnings.set(spiffeId, t);
      deps.logger?.warn(
        { 'warden.spiffe.id': spiffeId, active: count, limit: maxActive, 'client.address': caller.clientAddress },
        'certificate refused: the identity holds certificates.max_active_per_identity valid certificates (logged once a minute per identity)',
      );
    }
    throw new WardenError('ERR_CA_IDENTITY_LIMIT', {
      detail: `${spiffeId} holds ${count} valid certificates, the most this CA issues to one identity (certificates.max_active_per_identity); one expires in ${waitS} s, or revoke unused ones`,
      rule: 'ca.identity.max_active',
      headers: { 'retry-after': String(waitS) },
      attributes: { 'warden.spiffe.id': spiffeId },
    });
  }

  /**
   * A workload SPIFFE ID of this trust domain; `/warden/…` is reserved for the CA's own identities.
   * Syntax is the sidecars' own parser's (src/net/spiffe-id.ts): an ID they would not accept as a
   * peer is never issued, and the reserved-path check runs on a path without dot segments.
   */
  function workloadId(value: unknown, field: string): string {
    const problem = typeof value === 'string' ? spiffeIdProblem(value) : 'not a string';
    if (typeof value !== 'string' || problem !== undefined) {
      throw invalid(`${field} must be a SPIFFE ID like "spiffe://${trustDomain}/ns/shop/sa/orders" (${problem})`);
    }
    const id = parseSpiffeId(value);
    if (id.trustDomain !== trustDomain) throw invalid(`${field} must be in the trust domain ${trustDomain}`);
    if (isReservedSpiffePath(id.path)) throw invalid(`${field}: spiffe://${trustDomain}/warden/… is reserved for the CA`);
    return value;
  }

  /**
   * A token's SPIFFE ID must be a workload ID of this trust domain. createToken makes no other, but
   * the token row comes from the database: one of another CA (database.path naming it; the stamp
   * refuses that at start, store.ts) had this CA sign its trust domain's IDs under its own keys.
   */
  function refuseForeignGrant(spiffeId: string, caller: Caller): void {
    const id = isSpiffeId(spiffeId) ? parseSpiffeId(spiffeId) : undefined;
    if (id !== undefined && id.trustDomain === trustDomain && !isReservedSpiffePath(id.path)) return;
    deps.logger?.error(
      { 'warden.spiffe.id': spiffeId, trust_domain: trustDomain, 'client.address': caller.clientAddress },
      "a bootstrap token in the CA database grants an identity outside this CA's trust domain: is database.path this CA's database?",
    );
    throw new WardenError('ERR_CA_IDENTITY_MISMATCH', {
      detail: `the bootstrap token grants an identity outside this CA's trust domain ${trustDomain}`,
      rule: 'ca.token.trust_domain',
      attributes: { 'warden.spiffe.id': spiffeId },
    });
  }

  function credentials(issued: IssuedCertificate): IssuedCredentials {
    return {
      spiffe_id: issued.spiffeId,
      serial: issued.serial,
      not_before: issued.notBefore.toISOString(),
      not_after: issued.notAfter.toISOString(),
      certificate: issued.pem,
      chain: deps.intermediatePem,
      bundle: deps.bundlePem,
    };
  }

  async function issueFor(csr: CheckedCsr, spiffeId: string, dnsNames: string[]): Promise<IssuedCertificate> {
    return issuer.issue({ publicKey: csr.publicKey, spiffeId, dnsNames, use: 'workload', rsa: csr.keyType === 'rsa' });
  }

  function ledgerRow(issued: IssuedCertificate, kind: CertificateKind, keyId: string, parentSerial?: string) {
    return {
      parent_serial: parentSerial ?? null,
      serial: issued.serial,
      spiffe_id: issued.spiffeId,
      kind,
      not_before: issued.notBefore.getTime(),
      not_after: issued.notAfter.getTime(),
      pem: issued.pem,
      issued_at: now(),
      key_id: keyId,
    };
  }

  /**
   * A CSR for a key revoked as compromised (a certificate of it on the CRL with keyCompromise): a
   * thief holding the key got it certified again (a renewal from a sibling certificate, or an
   * enrollment with a spare token) — the CRL lists serials, not keys.
   */
  function refuseCompromisedKey(csr: CheckedCsr): void {
    if (store.isCompromisedKey(csr.keyId))
      throw new WardenError('ERR_CA_KEY_REJECTED', {
        detail: 'this key was revoked as compromised; generate a new key pair',
        rule: 'csr.key.compromised',
      });
  }

  function announce(
    name: 'warden.ca.enrolled' | 'warden.ca.renewed',
    issued: IssuedCertificate,
    caller: Caller,
    renewedFrom?: string,
  ): void {
    events.emit(
      name,
      {
        'warden.spiffe.id': issued.spiffeId,
        'warden.cert.serial': issued.serial,
        'warden.cert.not_after': issued.notAfter.toISOString(),
        ...(caller.clientAddress === undefined ? {} : { 'client.address': caller.clientAddress }),
      },
      caller,
    );
    store.audit({
      action: name === 'warden.ca.enrolled' ? 'enroll' : 'renew',
      actor: caller.actor,
      subject: issued.spiffeId,
      outcome: 'ok',
      detail: `serial ${issued.serial}${renewedFrom === undefined ? '' : `, renewed from ${renewedFrom}`}, not after ${issued.notAfter.toISOString()}`,
    });
  }

  /**
   * An enrollment retried with a used token: its first answer was lost (a timeout, a reset, the CA
   * killed after the commit), and without this the workload could never enroll with its token. The
   * certificate that token paid for is sent again when the CSR is for the same key (proof of
   * possession: only the holder of that private key could make it) and asks for the same names, and
   * the certificate is still valid (unexpired, unrevoked). Anything else is the used token it is.
   */
  async function resend(spent: SpentToken, csrPem: unknown, caller: Caller): Promise<IssuedCredentials> {
    let csr: CheckedCsr;
    let dnsNames: string[];
    try {
      csr = await checkCsr(csrPem);
      dnsNames = namesWithinGrant(csr, { spiffeId: spent.spiffeId, dnsNames: spent.dnsNames });
    } catch {
      throw tokenUsed();
    }
    const record = store.getCertificate(spent.serial);
    if (csr.keyId !== spent.keyId || !record || record.revoked_at !== null || record.not_after <= now()) throw tokenUsed();
    const issued = new x509.X509Certificate(record.pem);
    const sameNames = (a: readonly string[], b: readonly string[]) =>
      a.length === b.length && [...a].sort().join() === [...b].sort().join();
    if (!sameNames(dnsNames, dnsSans(issued))) throw tokenUsed();
    events.emit(
      'warden.ca.enrolled',
      {
        'warden.spiffe.id': record.spiffe_id,
        'warden.cert.serial': record.serial,
        'warden.cert.not_after': new Date(record.not_after).toISOString(),
        'warden.detail': 'answer sent again: an enrollment retried with its token and key',
        ...(caller.clientAddress === undefined ? {} : { 'client.address': caller.clientAddress }),
      },
      caller,
    );
    store.audit({
      action: 'enroll',
      actor: caller.actor,
      subject: record.spiffe_id,
      outcome: 'ok',
      detail: `serial ${record.serial} sent again (retry with the same token and key), not after ${new Date(record.not_after).toISOString()}`,
    });
    return {
      spiffe_id: record.spiffe_id,
      serial: record.serial,
      not_before: new Date(record.not_before).toISOString(),
      not_after: new Date(record.not_after).toISOString(),
      certificate: record.pem,
      chain: deps.intermediatePem,
      bundle: deps.bundlePem,
    };
  }

  /** Any valid ID may be revoked (the CA's own too); a malformed one never was issued by this check (revoke by serial). */
  function identityToRevoke(spiffeId: unknown): string {
    return typeof spiffeId === 'string' && isSpiffeId(spiffeId) ? spiffeId : workloadId(spiffeId, 'spiffe_id');
  }

  /**
   * Refuses a revocation that would leave no valid administrator certificate: nothing could call the
   * admin API again (no command issued one, and `ca init` refuses a directory holding a CA). The
   * remedy comes first: a new one, offline, from the CA directory (src/ca/admin-issue.ts).
   */
  function refuseAdminLockout(serials: readonly string[], t: number): void {
    const admins = store
      .listCertificates({ spiffeId: adminSpiffeId(trustDomain), status: 'valid', now: t })
      .filter((row) => row.kind === 'admin');
    const going = new Set(serials);
    if (admins.length === 0 || admins.some((row) => !going.has(row.serial))) return;
    throw new WardenError('ERR_CA_LAST_ADMIN', {
      detail: `certificate ${admins.map((row) => row.serial).join(', ')} is the last valid administrator certificate: revoked, nothing could call the admin API again; issue a new one first (warden ca admin issue -c ca.yaml, on the CA's host: it replaces admin.crt and admin.key), then revoke this one with it`,
      rule: 'ca.admin.last',
    });
  }

  function announceTokensRevoked(spiffeId: string, ids: string[], caller: Caller): void {
    events.emit(
      'warden.ca.token_revoked',
      {
        'enduser.id': caller.actor,
        'warden.spiffe.id': spiffeId,
        'warden.count': ids.length,
        ...(ids.length > 0 ? { 'warden.detail': ids.join(',').slice(0, 200) } : {}),
      },
      caller,
    );
  }

  return {
    async enroll(body, caller) {
      const spent = tokens.spent(body.token);
      if (spent) return resend(spent, body.csr, caller);
      const grant = tokens.check(body.token);
      refuseForeignGrant(grant.spiffeId, caller);
      const csr = await checkCsr(body.csr);
      // Also in the issuing transaction below (a revocation may commit while this one signs); here it spares the signing.
      refuseCompromisedKey(csr);
      const dnsNames = namesWithinGrant(csr, { spiffeId: grant.spiffeId, dnsNames: grant.dnsNames });
      try {
        refuseOverLimit(grant.spiffeId, caller);
      } catch (err) {
        // A concurrent duplicate of this enrollment won while the CSR was checked: its certificate
        // is what the limit counts, and this request is answered with it (row 227), not refused.
        const winner = tokens.spent(body.token);
        if (winner) return resend(winner, body.csr, caller);
        throw err;
      }
      const issued = await issueFor(csr, grant.spiffeId, dnsNames);
      // Token and ledger in one transaction: of two concurrent enrollments with one token, one wins
      // (the other, with the same key and names, is answered as a retry: the winner's certificate).
      // Refused at the limit, or for a key revoked as compromised while this one was signed (that
      // revocation listed the key's certificates before this one existed), the transaction rolls
      // back: the token stays unused.
      try {
        store.transaction(() => {
          refuseCompromisedKey(csr);
          tokens.consume(grant, { serial: issued.serial, keyId: csr.keyId });
          refuseOverLimit(grant.spiffeId, caller);
          store.insertCertificate(ledgerRow(issued, 'enroll', csr.keyId));
        });
      } catch (err) {
        const winner = (err as WardenError).code === 'ERR_CA_TOKEN_USED' ? tokens.spent(body.token) : undefined;
        if (winner) return resend(winner, body.csr, caller);
        throw err;
      }
      announce('warden.ca.enrolled', issued, caller);
      return credentials(issued);
    },

    async renew(body, peer) {
      const csr = await checkCsr(body.csr);
      if (csr.keyId === peer.record.key_id) {
        throw new WardenError('ERR_CA_CSR_INVALID', {
          detail: 'a renewal needs a new key pair; this CSR reuses the current key',
          rule: 'csr.key.reused',
        });
      }
      refuseCompromisedKey(csr);
      const dnsNames = namesWithinGrant(csr, { spiffeId: peer.spiffeId, dnsNames: dnsSans(peer.certificate) });
      refuseOverLimit(peer.spiffeId, peer);
      const issued = await issueFor(csr, peer.spiffeId, dnsNames);
      // The caller was checked when the request arrived; a revocation may have come while its body
      // was read or the certificate signed. Checked again with the insert, in one transaction
      // (revocations by ID list and revoke in one too): a renewal racing `revoke --id` got a fresh,
      // unrevoked certificate for a revoked identity. So is the new key: revoked as compromised
      // meanwhile (through a sibling certificate), it would be certified off every CRL.
      store.transaction(() => {
        if (store.getCertificate(peer.record.serial)?.revoked_at !== null)
          throw new WardenError('ERR_CA_CERT_REVOKED', { detail: `certificate ${peer.record.serial} is revoked` });
        refuseCompromisedKey(csr);
        refuseOverLimit(peer.spiffeId, peer);
        store.insertCertificate(ledgerRow(issued, 'renew', csr.keyId, peer.record.serial));
      });
      announce('warden.ca.renewed', issued, peer, peer.record.serial);
      return credentials(issued);
    },

    createToken(body, caller) {
      const spiffeId = workloadId(body.spiffe_id, 'spiffe_id');
      const dns = body.dns_names ?? [];
      if (!Array.isArray(dns) || dns.some((n) => typeof n !== 'string' || !DNS_NAME.test(n) || n.length > 253)) {
        throw invalid('dns_names must be a list of DNS names');
      }
      const ttl = body.ttl_seconds ?? deps.tokenTtlMs / 1000;
      if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_S) {
        throw invalid(`ttl_seconds must be an integer 1–${MAX_TOKEN_TTL_S}`);
      }
      const created = tokens.create({ spiffeId, dnsNames: dns as string[], ttlMs: ttl * 1000 });
      events.emit('warden.ca.token_created', { 'warden.spiffe.id': spiffeId, 'enduser.id': caller.actor }, caller);
      store.audit({
        action: 'token.create',
        actor: caller.actor,
        subject: spiffeId,
        outcome: 'ok',
        detail: `expires ${created.expires_at}${created.dns_names.length ? `, dns ${created.dns_names.join(',')}` : ''}`,
      });
      return created;
    },

    async revoke(body, caller) {
      const { serial, spiffe_id: spiffeId } = body;
      const reason = body.reason ?? 'unspecified';
      if ((serial === undefined) === (spiffeId === undefined)) throw invalid('give exactly one of serial or spiffe_id');
      if (typeof reason !== 'string' || !REASONS.includes(reason as RevocationReason))
        throw invalid(`reason must be one of ${REASONS.join(', ')}`);
      const t = now();
      let subject: string;
      if (serial !== undefined) {
        if (typeof serial !== 'string' || !/^[0-9a-fA-F:]{1,64}$/.test(serial)) throw invalid('serial must be hexadecimal');
        subject = canonicalSerial(serial);
        const record = store.getCertificate(subject);
        if (!record) throw new WardenError('ERR_CA_NOT_FOUND', { detail: `no certificate with serial ${subject} is on record${PRUNED}` });
      } else {
        subject = identityToRevoke(spiffeId);
        // A mistyped ID (other case, wrong path) is not "already revoked": say none is on record.
        // One with bootstrap tokens but no certificate yet (compromised before it enrolled) is revoked.
        if (!store.issuedTo(subject) && !store.tokensCreatedFor(subject))
          throw new WardenError('ERR_CA_NOT_FOUND', { detail: `no certificate or bootstrap token of ${subject} is on record${PRUNED}` });
      }
      // Listed and revoked in one transaction: a renewal's insert is either seen here or sees this.
      // By identity, its unused bootstrap tokens go in the same transaction: an enrollment either
      // consumed its token before (and its certificate is revoked here) or finds the token revoked.
      // By serial, one certificate (a superseded one): the identity keeps its tokens. With
      // keyCompromise, the key is what leaked, not one certificate: every unexpired certificate of
      // that key goes (a sibling enrolled with the same key, by a spare token, stayed valid and
      // renewable), and what was renewed from any of them, on down: whoever holds the key could
      // renew (the workload too: both lines of renewals go, as they cannot be told apart).
      const compromised = (serials: string[]): string[] => {
        const keys = new Set(serials.map((s) => store.getCertificate(s)?.key_id).filter((k) => k !== undefined));
        const holders = new Set([...serials, ...[...keys].flatMap((k) => store.activeSerialsWithKey(k, t))]);
        return [...new Set([...holders, ...[...holders].flatMap((s) => store.activeDescendantsOf(s, t))])];
      };
      const { revoked, revokedTokens } = store.transaction(() => {
        const listed = serial !== undefined ? [subject] : store.activeSerialsOf(subject, t);
        const chosen = reason === 'keyCompromise' ? compromised(listed) : listed;
        refuseAdminLockout(chosen, t);
        return {
          revoked: chosen.filter((s) => store.insertRevocation({ serial: s, reason, revoked_at: t })),
          revokedTokens: serial !== undefined ? [] : store.revokeTokens({ spiffeId: subject }, t),
        };
      });
      // Committed: from here on the revocations stand, and are answered and audited as done. A CRL
      // that cannot be re-signed now is reported beside them: it used to turn the answer into a 500
      // and the audit row into "refused" while the revocations were in the table (a retry found
      // nothing to revoke). The publisher signs again on the next GET /v1/crl (crl.ts).
      let crlError: string | undefined;
      if (revoked.length > 0) {
        try {
          await crl.refresh();
        } catch (err) {
          crlError = `not re-signed (${causeOf(err)}); the CA tries again on the next GET /v1/crl`;
          deps.logger?.error(
            { err: (err as Error).cause ?? err, subject, revoked: revoked.length },
            'revocations committed, but the CRL could not be re-signed: sidecars do not see them until it is',
          );
        }
        await deps.onRevoked?.(revoked);
      }
      events.emit(
        'warden.ca.revoked',
        {
          'enduser.id': caller.actor,
          'warden.count': revoked.length,
          ...(serial !== undefined ? { 'warden.cert.serial': subject } : { 'warden.spiffe.id': subject }),
          'warden.detail': reason,
        },
        caller,
      );
      if (revokedTokens.length > 0) announceTokensRevoked(subject, revokedTokens, caller);
      store.audit({
        action: 'revoke',
        actor: caller.actor,
        subject,
        outcome: 'ok',
        detail: `${reason}: ${revoked.join(',') || 'nothing to revoke'}${
          serial !== undefined ? '' : `; bootstrap tokens revoked: ${revokedTokens.join(',') || 'none'}`
        }${crlError === undefined ? '' : `; CRL ${crlError}`}`,
      });
      return { revoked, revoked_tokens: revokedTokens, ...(crlError === undefined ? {} : { crl_error: crlError }) };
    },

    list(query) {
      const status = query.status;
      if (status !== undefined && !STATUSES.includes(status as (typeof STATUSES)[number]))
        throw invalid(`status must be one of ${STATUSES.join(', ')}`);
      const t = now();
      return store
        .listCertificates({ spiffeId: query.spiffe_id, status: status as (typeof STATUSES)[number] | undefined, now: t })
        .map((row) => {
          const record: CertificateRecord = {
            serial: row.serial,
            spiffe_id: row.spiffe_id,
            not_before: new Date(row.not_before).toISOString(),
            not_after: new Date(row.not_after).toISOString(),
            status: row.revoked_at !== null ? 'revoked' : row.not_after <= t ? 'expired' : 'valid',
            kind: row.kind,
          };
          if (row.revoked_at !== null) record.revoked_at = new Date(row.revoked_at).toISOString();
          return record;
        });
    },

    listTokens(query) {
      const t = now();
      // Never the token: the store has only its hash, and not even that is shown.
      return store.listTokens({ spiffeId: query.spiffe_id }).map((row) => {
        const record: TokenRecord = {
          id: row.id,
          spiffe_id: row.spiffe_id,
          dns_names: JSON.parse(row.dns_names) as string[],
          created_at: new Date(row.created_at).toISOString(),
          expires_at: new Date(row.expires_at).toISOString(),
          state: row.revoked_at !== null ? 'revoked' : row.used_at !== null ? 'used' : row.expires_at <= t ? 'expired' : 'unused',
        };
        if (row.used_at !== null) record.used_at = new Date(row.used_at).toISOString();
        if (row.revoked_at !== null) record.revoked_at = new Date(row.revoked_at).toISOString();
        return record;
      });
    },

    revokeTokens(body, caller) {
      const { token_id: tokenId, spiffe_id: spiffeId } = body;
      if ((tokenId === undefined) === (spiffeId === undefined)) throw invalid('give exactly one of token_id or spiffe_id');
      const t = now();
      let subject: string;
      let revoked: string[];
      if (tokenId !== undefined) {
        if (typeof tokenId !== 'string' || !TOKEN_ID.test(tokenId))
          throw invalid('token_id must be 16 hexadecimal digits (warden ca token list)');
        const row = store.findTokenById(tokenId);
        if (!row) throw new WardenError('ERR_CA_NOT_FOUND', { detail: `no bootstrap token with id ${tokenId}` });
        subject = row.spiffe_id;
        revoked = store.revokeTokens({ id: tokenId }, t);
      } else {
        subject = identityToRevoke(spiffeId);
        if (!store.tokensCreatedFor(subject))
          throw new WardenError('ERR_CA_NOT_FOUND', { detail: `no bootstrap token of ${subject} is on record${PRUNED}` });
        revoked = store.revokeTokens({ spiffeId: subject }, t);
      }
      announceTokensRevoked(subject, revoked, caller);
      store.audit({
        action: 'token.revoke',
        actor: caller.actor,
        subject,
        outcome: 'ok',
        detail: `${tokenId !== undefined ? `token ${tokenId}` : 'every unused token'}: ${revoked.join(',') || 'nothing to revoke'}`,
      });
      return { revoked };
    },
  };
}
