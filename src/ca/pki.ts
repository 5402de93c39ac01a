/**
 * The X.509 toolkit the CA shares: @peculiar/x509 bound to Node's WebCrypto, the CA's own key
 * algorithm (ECDSA P-256), serials, fingerprints and PEM helpers.
 */
import 'reflect-metadata';
import { createHash, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

/** ECDSA P-256 with SHA-256: the algorithm of every key the CA generates for itself. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export const SAN_OID = '2.5.29.17';

/**
 * A random 16-byte positive serial as 32 lower-case hex digits. The first nibble is 1–7: positive
 * (high bit clear) and no leading zero, so Node's, OpenSSL's and the library's renderings agree.
 */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x10 + ((bytes[0] as number) % 0x70);
  return bytes.toString('hex');
}

/** `sha256:<hex>` of a certificate's DER — what sidecars pin (mesh.ca.fingerprint). */
export function fingerprintOf(cert: x509.X509Certificate): string {
  return `sha256:${createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex')}`;
}

export function certificatePem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

/** Every certificate in a PEM text, in order. */
export function splitPem(pem: string): x509.X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((block) => new x509.X509Certificate(block));
}

/** The URI SANs of a certificate (for a SPIFFE ID: exactly one). */
export function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === 'url').map((n) => n.value) : [];
}

export function dnsSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return san ? san.names.items.filter((n) => n.type === 'dns').map((n) => n.value) : [];
}

/**
 * Hex SHA-256 of a SubjectPublicKeyInfo in canonical form: identifies a key across CSRs and
 * certificates. One EC key has two encodings (compressed or uncompressed point) and Node's SPKI
 * export keeps the one it was given; a JWK round trip writes the uncompressed one, which is what
 * every key the CA saw before was hashed as (same ids as the raw bytes for those).
 */
export function keyIdOf(publicKey: x509.PublicKey): string {
  return createHash('sha256')
    .update(canonicalSpki(Buffer.from(publicKey.rawData)))
    .digest('hex');
}

function canonicalSpki(spki: Buffer): Buffer {
  let key;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return spki; // a key Node cannot read: never accepted in a CSR (csr-policy.ts), only hashed as is
  }
  if (key.asymmetricKeyType === 'ec') key = createPublicKey({ key: key.export({ format: 'jwk' }), format: 'jwk' });
  return key.export({ type: 'spki', format: 'der' });
}
