/**
 * What a fetched CRL must pass before it replaces the one in force: a signature by an issuing CA
 * (intermediate) that chains to a root of the current trust bundle — not necessarily the one that
 * issued our own certificate, which during a root rotation is the old one — and a place after the
 * CRL in force (CRL number, else thisUpdate), not dated in the future.
 */
import { X509Certificate } from 'node:crypto';
import { x509 } from '../ca/pki.js';
import { certificatesOf } from './trust-bundle.js';

/**
 * Parses a CRL. asn1js stops at 10 000 ASN.1 nodes by default — about 1 250 revoked entries — so a
 * larger CRL was refused as "not signed". Nodes take at least two octets each, so allowing one per
 * octet lifts the count limit without letting parse work grow faster than the body.
 */
export function parseCrl(der: Uint8Array): x509.X509Crl {
  return new x509.X509Crl(der, { berOptions: { maxNodes: Math.max(10_000, der.byteLength) } });
}

/** A fetched CRL that is not applied; `code` is stable for logs, the message says why. */
export class CrlRefusedError extends Error {
  readonly code = 'ERR_MESH_CRL_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'CrlRefusedError';
  }
}

/** How far in the future a CRL's thisUpdate may be (clock skew between CA and sidecar). */
export const CRL_MAX_SKEW_MS = 5 * 60_000;

/** Verifies a CRL's signature with the issuing CA's key and that the CA issued it (names match). */
export async function verifyCrl(der: Buffer, issuerPem: string): Promise<boolean> {
  const crl = parseCrl(der);
  const issuer = new x509.X509Certificate(issuerPem);
  if (crl.issuer !== issuer.subject) return false;
  return crl.verify({ publicKey: issuer });
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
 * `der`, or undefined. Candidates that do not chain are never tried: fail closed.
 */
export async function signerOf(der: Buffer, candidates: readonly string[], bundlePem: string): Promise<string | undefined> {
  for (const pem of candidates) {
    if (!pem || !chainsToBundle(pem, bundlePem)) continue;
    try {
      if (await verifyCrl(der, pem)) return pem;
    } catch {
      // an unparsable candidate or CRL: not this one
    }
  }
  return undefined;
}

const CRL_NUMBER_OID = '2.5.29.20';

/** The CRL number extension (RFC 5280 §5.2.3) as a bigint, or undefined when absent or malformed. */
export function crlNumberOf(crl: x509.X509Crl): bigint | undefined {
  const ext = crl.extensions.find((e) => e.type === CRL_NUMBER_OID);
  if (!ext) return undefined;
  const value = Buffer.from(ext.value);
  // DER INTEGER, short-form length (a CRL number fits in 20 octets).
  if (value[0] !== 0x02 || value[1] === undefined || value[1] > 0x7f || value.length !== 2 + value[1] || value[1] === 0) return undefined;
  const bytes = value.subarray(2);
  if ((bytes[0] as number) & 0x80) return undefined; // negative: not a CRL number
  return BigInt(`0x${bytes.toString('hex')}`);
}

/**
 * Why `next` must not replace `current` (undefined when it may). A replayed older CRL would
 * un-revoke certificates; one dated in the future would, as the baseline, block every correct CRL
 * after it (and across restarts: it is persisted). The CA numbers its CRLs from its database, so the
 * number orders them even across a clock step; thisUpdate only when either has no number.
 */
export function crlOrderProblem(next: Buffer, current: Buffer | undefined, now = Date.now()): string | undefined {
  const crl = parseCrl(next);
  if (crl.thisUpdate.getTime() > now + CRL_MAX_SKEW_MS) {
    return `the CRL is dated in the future (thisUpdate ${crl.thisUpdate.toISOString()})`;
  }
  if (!current) return undefined;
  let previous: x509.X509Crl;
  try {
    previous = parseCrl(current);
  } catch {
    return undefined; // an unreadable CRL in force is no baseline
  }
  const [a, b] = [crlNumberOf(crl), crlNumberOf(previous)];
  if (a !== undefined && b !== undefined) {
    return a < b ? `the CRL (number ${a}) is older than the one in force (number ${b})` : undefined;
  }
  // A future-dated one persisted before such CRLs were refused is no baseline for dates.
  if (previous.thisUpdate.getTime() > now + CRL_MAX_SKEW_MS) return undefined;
  return crl.thisUpdate.getTime() < previous.thisUpdate.getTime() ? 'the CRL is older than the one in force' : undefined;
}
