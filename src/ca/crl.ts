/**
 * The CRL, DER, signed by the issuing CA: every revoked certificate that has not yet expired, or
 * expired less than the clock skew sidecars allow (CRL_MAX_SKEW_MS) plus one CRL period ago. A
 * sidecar drops a revoked certificate's check with its CRL entry and relies on its own clock for
 * the expiry; with the CA's clock ahead, an entry dropped at expiry by the CA's clock let the
 * certificate in again until the sidecar's clock reached it (RFC 5280 §3.3: an entry stays on at
 * least one regularly scheduled CRL after the certificate expires).
 * thisUpdate = when it was made, nextUpdate = thisUpdate + crl.next_update (short: sidecars refetch
 * often). Cached between requests; remade on each revocation and once half its validity has passed,
 * so a fetched CRL always has at least half its window left. Each GET compares the database's last
 * revocation with the cached CRL's (one index lookup): a revocation committed by another CA process
 * on the same database is listed at once too. Concurrent requests share one signing.
 * Built in linear time (src/ca/crl-der.ts): the library's generator is quadratic in the entries and
 * blocked the CA for seconds (docs/ca.md, "CRL size"). Each CRL has a strong ETag for conditional GETs.
 */
import { createHash, webcrypto } from 'node:crypto';
import { WardenError } from '../errors.js';
import { CRL_MAX_SKEW_MS } from '../net/clock-skew.js';
import type { RevocationReason } from './api.js';
import { certificateList, tbsCertList } from './crl-der.js';
import { EC_P256, x509, type CryptoKey } from './pki.js';
import type { CaStore } from './store.js';

export interface CrlOptions {
  store: CaStore;
  intermediate: x509.X509Certificate;
  intermediateKey: CryptoKey;
  nextUpdateMs: number;
  now?: () => number;
  /**
   * Called once a CRL is signed, with its number and the revocations the database held then
   * (server.ts keeps them outside the database: published-record.ts). Must not throw.
   */
  onPublished?: (published: { crlNumber: number; revocations: number; lastRevocationRowid: number }) => void;
}

export interface CrlPublisher {
  /** The current CRL (DER), remade first when due. */
  current(): Promise<Buffer>;
  /** The current CRL with its ETag, for conditional GETs (If-None-Match → 304). */
  currentWithEtag(): Promise<SignedCrl>;
  /** Makes a new CRL now (after a revocation). */
  refresh(): Promise<Buffer>;
}

export interface SignedCrl {
  der: Buffer;
  /** Strong ETag (quoted): a hash of the DER, so it changes with every CRL, even across restarts. */
  etag: string;
}

/** True when an If-None-Match header value matches `etag` (a list, weak forms, or `*`; RFC 9110 §13.1.2). */
export function etagMatches(ifNoneMatch: string | string[] | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const tags = (Array.isArray(ifNoneMatch) ? ifNoneMatch.join(',') : ifNoneMatch).split(',').map((t) => t.trim());
  return tags.some((t) => t === '*' || t.replace(/^W\//, '') === etag);
}

const REASONS: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

/** DER INTEGER (non-negative), for the CRL number extension the library has no class for. */
function derInteger(value: number): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

const CRL_NUMBER_OID = '2.5.29.20';

export function createCrlPublisher(options: CrlOptions): CrlPublisher {
  const { store, intermediate, intermediateKey, nextUpdateMs } = options;
  const now = options.now ?? Date.now;
  const issuerSki = intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const issuer = intermediate.subjectName.toArrayBuffer();
  const formatter = new x509.AsnEcSignatureFormatter();
  /** `fromRowid`: the database's last revocation when this CRL was made (it lists that one and all before). */
  let cached: (SignedCrl & { madeAt: number; fromRowid: number }) | undefined;
  let pending: Promise<Buffer> | undefined;
  /** The last revocation `pending` reads (undefined: it has not started reading; it will see all committed). */
  let pendingFromRowid: number | undefined;
  /**
   * A refresh failed: the cached CRL may lack a committed revocation, so it is not served as current
   * until one succeeds (the next GET signs again). It was served for the rest of its half-window —
   * up to 3.5 days with crl.next_update 7d — while the revocation stood in the database.
   */
  let stale = false;
  /**
   * The last signing failed: until `until`, a GET is answered with its error at once rather than
   * signing again. The pause is twice what that attempt cost (with 140 000 entries a signing holds
   * the CA ~2 s, and anonymous GETs could keep it signing, and failing, without pause), so a cheap
   * failure (the database locked a moment) is tried again at once.
   */
  let failure: { until: number; error: WardenError } | undefined;

  async function make(): Promise<Buffer> {
    const t = now();
    // Sidecars apply a CRL only if its number passes the one in force (src/mesh/crl-check.ts). The
    // number is one more than the database's last, and at least the time in milliseconds: a CA
    // started on a new or restored database (numbers from 1, or from an old copy's) numbered its
    // CRLs below those sidecars held, and they refused every one — revocations made since never
    // reached them. Milliseconds, not seconds: numbers run ahead of the clock only while CRLs are
    // signed faster than one per unit (a burst of revocations signs one each), and a new database
    // would start below such a lead. Below 2^53 for 285 000 years; RFC 5280 allows 20 octets, these take 6.
    // Taken before the revocations are read: with two CAs on one database a CRL numbered after a
    // revocation's commit then lists it. Read first, another CA's CRL read before the commit could
    // be numbered after the CRL that carried it, and replace it at sidecars.
    const crlNumber = store.nextCrlNumber(t);
    // Read before the revocations, before the signature is awaited: at most what this CRL lists (one
    // committed between the two reads is listed, and only makes the next GET sign again).
    const fromRowid = store.lastRevocationRowid();
    pendingFromRowid = fromRowid;
    const mark = options.onPublished && store.revocationMark();
    const entries = store.unexpiredRevocations(t - CRL_MAX_SKEW_MS - nextUpdateMs).map((r) => ({
      serial: r.serial,
      revokedAt: new Date(r.revoked_at),
      reason: REASONS[r.reason as RevocationReason] ?? x509.X509CrlReason.unspecified,
    }));
    const extensions: x509.Extension[] = [new x509.Extension(CRL_NUMBER_OID, false, derInteger(crlNumber))];
    if (issuerSki) extensions.push(new x509.AuthorityKeyIdentifierExtension(issuerSki));
    const tbs = tbsCertList({
      issuer,
      thisUpdate: new Date(t),
      nextUpdate: new Date(t + nextUpdateMs),
      extensions: extensions.map((e) => e.rawData),
      entries,
    });
    // WebCrypto gives r||s; X.509 wants an ECDSA-Sig-Value (the library's formatter converts).
    const raw = await webcrypto.subtle.sign(EC_P256, intermediateKey, tbs);
    const signature = formatter.toAsnSignature({ ...EC_P256 }, raw);
    if (!signature) throw new Error('cannot encode the CRL signature');
    const der = certificateList(tbs, new Uint8Array(signature));
    const etag = `"${createHash('sha256').update(der).digest('base64url')}"`;
    cached = { der, etag, madeAt: t, fromRowid };
    if (mark) options.onPublished?.({ crlNumber, revocations: mark.count, lastRevocationRowid: mark.lastRowid });
    return der;
  }

  function refresh(): Promise<Buffer> {
    // A refresh requested while one is signing must include the newer revocation: chain, do not share.
    const previous = pending ?? Promise.resolve(Buffer.alloc(0));
    let started = 0;
    pendingFromRowid = undefined;
    const next = previous
      .catch(() => Buffer.alloc(0))
      .then(() => {
        started = performance.now();
        return make();
      })
      .then(
        (der) => {
          stale = false;
          failure = undefined;
          return der;
        },
        (err: unknown) => {
          stale = true;
          const error = err instanceof WardenError ? err : new WardenError('ERR_INTERNAL', { cause: err });
          failure = { until: now() + 2 * (performance.now() - started), error };
          throw error;
        },
      )
      .finally(() => {
        if (pending === next) pending = undefined;
      });
    pending = next;
    return next;
  }

  async function currentWithEtag(): Promise<SignedCrl> {
    const age = cached ? now() - cached.madeAt : -1;
    // A revocation committed since the CRL was made, by another CA process on this database (a root
    // rotation runs two): this one re-signs only on its own. The other's was missing from its CRL,
    // and sidecars fed by it admitted the revoked peer, for up to half of crl.next_update.
    const lastRowid = store.lastRevocationRowid();
    // A negative age is a clock stepped back since signing: that CRL is dated in the future and
    // sidecars refuse it, so sign a new one rather than serve it for the rest of its window.
    if (cached && !stale && cached.fromRowid === lastRowid && age >= 0 && age < nextUpdateMs / 2) return cached;
    if (pending === undefined && failure !== undefined && now() < failure.until) throw failure.error;
    // A signing under way serves if it reads (or read) the revocations from this one on; GETs arriving
    // meanwhile wait for it rather than each chaining a signing of their own.
    const covers = pending !== undefined && (pendingFromRowid === undefined || pendingFromRowid >= lastRowid);
    await (covers ? pending : refresh());
    if (!cached || stale) throw new WardenError('ERR_INTERNAL');
    return cached;
  }

  return {
    refresh,
    currentWithEtag,
    async current() {
      return (await currentWithEtag()).der;
    },
  };
}
