/**
 * Whether a CA file an operator names (listeners.inbound.tls.client_ca, mesh.ca.bundle) trusts
 * anyone. OpenSSL (createSecureContext's `ca`) silently skips what is not a PEM certificate, so the
 * same CA in DER, an empty file, a key or a file caught mid-write loaded as "no CA": at start every
 * caller refused, and at a reload — reported a success — every open mTLS connection closed as its CA
 * left. Read as the listener's client trust reads it (parsedCertificatesOf), and refused instead.
 */
import type { X509Certificate } from 'node:crypto';
import { parsedCertificatesOf } from './trust-bundle.js';

const BEGIN = '-----BEGIN CERTIFICATE-----';

/** Why `data` (the file `path`) trusts no one as a CA file, or undefined when it is one; `give` says what belongs there. */
export function caFileProblem(path: string, data: Buffer, give: string): string | undefined {
  const text = data.toString('latin1');
  const blocks = text.split(BEGIN).slice(1);
  if (blocks.length === 0) return `${path} holds no PEM certificate${whatItHolds(path, data, text)}: ${give}`;
  let usable = false;
  let leaf: X509Certificate | undefined;
  for (const [i, block] of blocks.entries()) {
    const cert = parsedCertificatesOf(BEGIN + block)[0];
    const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'its certificate';
    // OpenSSL stops reading the file at a block it cannot parse: the CAs after it would be lost.
    if (cert === undefined) return `${path}: ${which} does not parse (a file cut short or damaged): ${give}`;
    // OpenSSL uses a certificate of the trust store as an issuer only when it is a CA, and as the
    // anchor itself only when self-signed (a pinned client certificate). Another beside them (a
    // fullchain file: a leaf, then its CA) is harmless; alone it is a mistake that trusts no caller.
    if (cert.ca || isSelfSigned(cert)) usable = true;
    else leaf ??= cert;
  }
  if (usable || leaf === undefined) return undefined;
  return `${path}: its ${blocks.length > 1 ? 'certificates' : 'certificate'} ("${leaf.subject.replace(/\n/g, ', ')}"${blocks.length > 1 ? ', …' : ''}) ${blocks.length > 1 ? 'are' : 'is'} neither a CA certificate (basicConstraints CA:TRUE) nor self-signed, so it verifies no caller: ${give}`;
}

/** Signed by its own key under its own name (checkIssued alone also wants keyCertSign, which a pinned leaf lacks). */
function isSelfSigned(cert: X509Certificate): boolean {
  try {
    return (cert.subject === cert.issuer || cert.checkIssued(cert)) && cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

/** A hint for a file without PEM certificates: what it seems to hold instead. */
function whatItHolds(path: string, data: Buffer, text: string): string {
  if (text.trim() === '') return ' (the file is empty)';
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return ' (it holds a private key)';
  // A DER certificate is an ASN.1 SEQUENCE: 0x30 then its length.
  if (data[0] === 0x30) return ` (DER? convert it with openssl x509 -inform der -in ${path} -out ${path}.pem)`;
  return ` (no "${BEGIN}" block)`;
}
