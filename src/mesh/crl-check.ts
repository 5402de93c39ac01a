/**
 * What a fetched CRL must pass before it replaces the one in force: a signature by an issuing CA
 * (intermediate) that chains to a root of the current trust bundle — not necessarily the one that
 * issued our own certificate, which during a root rotation is the old one — and a place after the
 * CRL in force (CRL number, else thisUpdate), not dated in the future.
 */
import { verify, X509Certificate } from 'node:crypto';
import { CRL_MAX_SKEW_MS } from '../net/clock-skew.js';
import { x509 } from '../ca/pki.js';
import type { CrlView } from '../net/crl-reader.js';
import { certificatesOf } from '../net/trust-bundle.js';

/** A fetched CRL that is not applied; `code` is stable for logs, the message says why. */
export class CrlRefusedError extends Error {
  readonly code = 'ERR_MESH_CRL_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'CrlRefusedError';
  }
}

/** The ECDSA signature algorithms a CRL may be signed with, by OID, and their hashes. */
const ECDSA_HASHES: Readonly<Record<string, string>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** Verifies a CRL's signature with the issuing CA's key and that the CA issued it (names match). */
export function verifyCrl(crl: CrlView, issuerPem: string): boolean {
  const hash = ECDSA_HASHES[crl.signatureAlgorithm];
  if (!hash) return false; // Warden's CA signs with ECDSA; anything else is not its CRL
  const issuer = new X509Certificate(issuerPem);
  if (issuer.publicKey.asymmetricKeyType !== 'ec') return false;
  try {
    // Names compared as @peculiar/x509 renders them (as before this reader): the same Name in another string type matches.
    if (new x509.Name(crl.issuer).toString() !== new x509.X509Certificate(issuerPem).subject) return false;
    return verify(hash, crl.tbs, { key: issuer.publicKey, dsaEncoding: 'der' }, crl.signature);
  } catch {
    return false; // an issuer that is not a Name, a signature that is not an ECDSA-Sig-Value
  }
}

/** True when `caPem` is a CA certificate, valid at `now`, signed by one of the roots in `bundlePem`. */
export function chainsToBundle(caPem: string, bundlePem: string, now = Date.now()): boolean {
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
  } catch {
    return false;
  }
  if (!ca.ca || Date.parse(ca.validFrom) > now || Date.parse(ca.validTo) < now) return false;
  return certificatesOf(bundlePem).some((pem) => {
    try {
      const root = new X509Certificate(pem);
      return root.ca && ca.checkIssued(root) && ca.verify(root.publicKey);
    } catch {
      return false;
    }
  });
}

/**
 * The first of `candidates` (PEM issuing CA certificates) that chains to `bundlePem` and signed
 * `crl`, or undefined. Candidates that do not chain are never tried: fail closed.
 */
export function signerOf(crl: CrlView, candidates: readonly string[], bundlePem: string): string | undefined {
  for (const pem of candidates) {
    if (!pem || !chainsToBundle(pem, bundlePem)) continue;
    try {
      if (verifyCrl(crl, pem)) return pem;
    } catch {
      // an unparsable candidate or CRL: not this one
    }
  }
  return undefined;
}

/**
 * Why `crl` must not replace `previous`, the CRL in force (undefined when it may). A replayed older CRL would
 * un-revoke certificates; one dated in the future would, as the baseline, block every correct CRL
 * after it (and across restarts: it is persisted). The CA numbers its CRLs from its database (one more
 * than the last, and at least its clock in milliseconds: a new database does not start again from 1),
 * so the number orders them even across a clock step; thisUpdate only when either has no number. At the
 * number in force only the same CRL (byte for byte) passes.
 */
export function crlOrderProblem(crl: CrlView, previous: CrlView | undefined, now = Date.now()): string | undefined {
  if (crl.thisUpdate.getTime() > now + CRL_MAX_SKEW_MS) {
    return `the CRL is dated in the future (thisUpdate ${crl.thisUpdate.toISOString()})`;
  }
  if (!previous) return undefined;
  const [a, b] = [crl.number, previous.number];
  if (a !== undefined && b !== undefined) {
    if (a < b) return `the CRL (number ${a}) is older than the one in force (number ${b})`;
    // The CA signs each CRL with a new number, so one number is one list. Another list under the
    // number in force is a CA restored from a backup (or a forgery with its key) reissuing it, perhaps
    // with fewer entries: un-revoking certificates. Only the same bytes again are no news.
    if (a === b && !crl.der.equals(previous.der))
      return `the CRL has the number of the one in force (${a}) but other content (a CA restored from an older database?); a CRL is applied only once its number passes ${b}`;
    return undefined;
  }
  // A future-dated one persisted before such CRLs were refused is no baseline for dates.
  if (previous.thisUpdate.getTime() > now + CRL_MAX_SKEW_MS) return undefined;
  return crl.thisUpdate.getTime() < previous.thisUpdate.getTime() ? 'the CRL is older than the one in force' : undefined;
}
