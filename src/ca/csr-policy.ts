/**
 * What the CA accepts in a certificate signing request. The CSR contributes only its public key and
 * the names it asks for; both are checked here:
 *  - PEM PKCS#10 whose signature verifies (proof of possession)          → ERR_CA_CSR_INVALID
 *  - key ECDSA P-256/P-384 (named curve), Ed25519, or RSA 2048–8192 bits → ERR_CA_KEY_REJECTED
 *    (RSA with an odd public exponent 3 ≤ e < 2^32)
 *  - names within the grant: URI SAN (if any) = the granted SPIFFE ID,
 *    DNS SANs ⊆ the granted names, no IP/e-mail/other SANs               → ERR_CA_IDENTITY_MISMATCH
 * Requested extensions other than the SAN are ignored: the issuer decides every extension.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { WardenError } from '../errors.js';
import { keyIdOf, SAN_OID, x509 } from './pki.js';

export type KeyType = 'ec-p256' | 'ec-p384' | 'ed25519' | 'rsa';

export interface CheckedCsr {
  publicKey: x509.PublicKey;
  keyType: KeyType;
  /** Hex SHA-256 of the SubjectPublicKeyInfo: renewal must bring a new key. */
  keyId: string;
  uris: string[];
  dnsNames: string[];
  /** SANs of types the CA never issues (ip, email, …), as `type:value`. */
  otherNames: string[];
}

export interface Grant {
  spiffeId: string;
  dnsNames: readonly string[];
}

const MAX_CSR_CHARS = 16_384;
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;
/**
 * RSA public exponents are odd and below 2^32. A verify costs a squaring per bit of e: a 3072-bit
 * modulus can carry a 3072-bit e (OpenSSL caps e at 64 bits only above 3072-bit moduli), and every
 * handshake such a certificate made cost its peers a ~5.5 ms verify instead of ~0.07 ms. Below 2^32
 * a verify costs at most 2.6× 65537's (RSA-3072: 0.18 ms against 0.07, measured), and 2^32 is
 * Windows CryptoAPI's cap (a 32-bit field). Not 65537 alone: small odd e (3, 17) is what old
 * generators and some HSMs made, CA/B Baseline Requirements §6.1.6 allow it, and it is cheaper.
 */
const RSA_EXPONENT_LIMIT = 2n ** 32n;

/** Parses and verifies a CSR; refuses unaccepted keys. */
export async function checkCsr(pem: unknown): Promise<CheckedCsr> {
  if (typeof pem !== 'string' || !/^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----/.test(pem) || pem.length > MAX_CSR_CHARS) {
    throw new WardenError('ERR_CA_CSR_INVALID', { detail: 'csr must be a PEM PKCS#10 certificate request', rule: 'csr.pem' });
  }
  let csr: x509.Pkcs10CertificateRequest;
  let publicKey: x509.PublicKey;
  try {
    // OpenSSL's older `NEW CERTIFICATE REQUEST` label is the same structure.
    csr = new x509.Pkcs10CertificateRequest(pem.trim().replace(/(-----(?:BEGIN|END) )NEW /g, '$1'));
    // Decoded on first access: a malformed key algorithm fails here, not at parse time.
    publicKey = csr.publicKey;
  } catch (err) {
    throw new WardenError('ERR_CA_CSR_INVALID', { cause: err, detail: 'csr does not parse as PKCS#10', rule: 'csr.parse' });
  }
  const spki = Buffer.from(publicKey.rawData);
  const keyType = acceptedKeyType(spki);
  let verified = false;
  try {
    verified = await csr.verify();
  } catch (err) {
    throw new WardenError('ERR_CA_CSR_INVALID', { cause: err, detail: 'csr signature cannot be checked', rule: 'csr.signature' });
  }
  if (!verified) throw new WardenError('ERR_CA_CSR_INVALID', { detail: 'csr signature does not verify', rule: 'csr.signature' });
  return { publicKey, keyType, keyId: keyIdOf(publicKey), ...requestedNames(csr) };
}

/** The SANs a CSR asks for; a SAN extension that does not decode is a malformed CSR, not a defect. */
function requestedNames(csr: x509.Pkcs10CertificateRequest): Pick<CheckedCsr, 'uris' | 'dnsNames' | 'otherNames'> {
  const uris: string[] = [];
  const dnsNames: string[] = [];
  const otherNames: string[] = [];
  try {
    for (const extension of csr.getExtensions(SAN_OID)) {
      const san =
        extension instanceof x509.SubjectAlternativeNameExtension ? extension : new x509.SubjectAlternativeNameExtension(extension.rawData);
      for (const name of san.names.items) {
        if (name.type === 'url') uris.push(name.value);
        else if (name.type === 'dns') dnsNames.push(name.value.toLowerCase());
        else otherNames.push(`${name.type}:${name.value}`);
      }
    }
  } catch (err) {
    throw new WardenError('ERR_CA_CSR_INVALID', { cause: err, detail: 'csr subject alternative names do not decode', rule: 'csr.san' });
  }
  return { uris, dnsNames, otherNames };
}

function acceptedKeyType(spki: Buffer): KeyType {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new WardenError('ERR_CA_KEY_REJECTED', { cause: err, detail: 'the public key type is not supported', rule: 'csr.key' });
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  // OpenSSL recognises a P-256 key written with explicit curve parameters as P-256, but PKIX allows
  // only the named form (RFC 5480 §2.1.1), WebCrypto cannot import it (the CSR's signature could not
  // be checked: ERR_CA_CSR_INVALID, which sent operators looking at the CSR instead of the key), and
  // a certificate carrying it would be refused by TLS peers.
  if (type === 'ec' && !namedCurveParameters(spki)) {
    throw new WardenError('ERR_CA_KEY_REJECTED', {
      detail:
        'EC key with explicit curve parameters not accepted: write it with a named curve (openssl ecparam -name prime256v1 -param_enc named_curve)',
      rule: 'csr.key.explicit_curve',
    });
  }
  if (type === 'ec' && details.namedCurve === 'prime256v1') return 'ec-p256';
  if (type === 'ec' && details.namedCurve === 'secp384r1') return 'ec-p384';
  if (type === 'ed25519') return 'ed25519';
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
      throw new WardenError('ERR_CA_KEY_REJECTED', {
        detail: `RSA keys must have ${RSA_MIN_BITS}–${RSA_MAX_BITS} bits, got ${bits}`,
        rule: 'csr.key.rsa_size',
      });
    }
    const e = details.publicExponent ?? 0n;
    if (e >= 3n && e < RSA_EXPONENT_LIMIT && e % 2n === 1n) return 'rsa';
    throw new WardenError('ERR_CA_KEY_REJECTED', {
      detail: `RSA public exponent must be odd and 3 to 2^32 − 1 (65537 is usual), got one of ${e.toString(2).length} bits`,
      rule: 'csr.key.rsa_exponent',
    });
  }
  const what = type === 'ec' ? `EC ${details.namedCurve ?? 'unknown curve'}` : (type ?? 'unknown');
  throw new WardenError('ERR_CA_KEY_REJECTED', {
    detail: `key ${what} not accepted (ECDSA P-256/P-384, Ed25519 or RSA ≥ ${RSA_MIN_BITS})`,
    rule: 'csr.key.type',
  });
}

/** Whether an EC key's algorithm parameters are a named curve (an OBJECT IDENTIFIER, DER tag 6). */
function namedCurveParameters(spki: Buffer): boolean {
  try {
    const parameters = AsnConvert.parse(spki, SubjectPublicKeyInfo).algorithm.parameters;
    return parameters !== null && parameters !== undefined && new Uint8Array(parameters)[0] === 0x06;
  } catch {
    return false;
  }
}

/** The DNS names to issue: those the CSR asks for, each of which the grant must allow. */
export function namesWithinGrant(csr: CheckedCsr, grant: Grant): string[] {
  const refuse = (detail: string, rule: string) => new WardenError('ERR_CA_IDENTITY_MISMATCH', { detail, rule });
  if (csr.otherNames.length > 0)
    throw refuse('CSR with a foreign SAN refused: only a URI (SPIFFE ID) and DNS names may be requested', 'csr.san.type');
  if (csr.uris.length > 1 || (csr.uris.length === 1 && csr.uris[0] !== grant.spiffeId)) {
    throw refuse(`CSR with a foreign SAN refused: the URI SAN must be ${grant.spiffeId}`, 'csr.san.uri');
  }
  const allowed = new Set(grant.dnsNames.map((n) => n.toLowerCase()));
  const foreign = csr.dnsNames.filter((n) => !allowed.has(n));
  if (foreign.length > 0)
    throw refuse(`CSR with a foreign SAN refused: DNS name ${foreign.join(', ')} not granted`.slice(0, 300), 'csr.san.dns');
  return [...new Set(csr.dnsNames)];
}
