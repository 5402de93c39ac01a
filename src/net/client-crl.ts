/**
 * The operator's CRLs for inbound client certificates (`listeners.inbound.tls.client_crl`, file
 * mode): read and verified once per load, then one Map and one Set lookup per request.
 *
 * Checked by Warden, not by OpenSSL's `crl` option, for the reason the mesh's CRL is
 * (src/mesh/revocation-list.ts): Node turns on CRL_CHECK_ALL, which wants a current CRL for every CA
 * of every chain and fails every handshake once one passes its nextUpdate. A CRL past its
 * nextUpdate stays in force here and is reported (src/proxy/client-crl-watch.ts).
 *
 * Serials are unique per issuer only, and client_ca may hold several CAs, so an entry is keyed by
 * its issuer and serial. The issuer is the client_ca certificate that signed the CRL, and for a
 * caller's certificate and each CA certificate above it the certificate that issued it, in client_ca
 * or sent by the client (PeerIdentity.chain, src/proxy/listener.ts), both named by `issuerKeyOf`: a
 * hash of the CA's subject and public key, so two CAs of one name stay apart. A CRL is accepted only
 * from a CA of client_ca: an intermediate the client sends has no CRL here unless it is put in
 * client_ca too (its revocation by the CA above it is checked either way).
 *
 * No X.509 library: a file-mode sidecar does not load one (test/integration/footprint.test.ts).
 */
import { createHash, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { CRL_MAX_SKEW_MS } from './clock-skew.js';
import { CrlFormatError, readCrl, type CrlView } from './crl-reader.js';
import { certificatesOf } from './trust-bundle.js';

/** A CRL file that cannot be used; the message is one line for the operator. */
export class ClientCrlError extends Error {
  readonly code = 'ERR_CLIENT_CRL_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'ClientCrlError';
  }
}

/** One CRL in force, as the readiness detail, the stale warning and `config check` name it. */
export interface ClientCrlInfo {
  /** The issuing CA's subject, as Node renders it (`CN=Clients CA, O=Example`). */
  readonly issuer: string;
  readonly number: bigint | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revoked: number;
}

export interface ClientCrl {
  /** The file, as configured. */
  readonly file: string;
  readonly crls: readonly ClientCrlInfo[];
  /** Whether a CRL in force lists this issuer's (issuerKeyOf) serial (canonical hex). */
  revokes(issuer: string | undefined, serial: string | undefined): boolean;
  /** Seconds since the earliest passed nextUpdate (0 while every CRL is current). */
  secondsPastNextUpdate(now?: number): number;
}

/** A CRL file holds at most this much: some 300 000 entries, as the mesh's (src/mesh/ca-client.ts). */
export const MAX_CLIENT_CRL_BYTES = 16 * 1024 * 1024;

/** Signature algorithms a CRL may be signed with, by OID. SHA-1 and RSASSA-PSS are named to be refused clearly. */
const SIGNATURES: Readonly<Record<string, { hash: string | null; key: string } | string>> = {
  '1.2.840.10045.4.3.2': { hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', key: 'ec' },
  '1.2.840.113549.1.1.11': { hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', key: 'rsa' },
  '1.3.101.112': { hash: null, key: 'ed25519' },
  '1.3.101.113': { hash: null, key: 'ed448' },
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption (SHA-1 is not accepted: sign the CRL with SHA-256)',
  '1.2.840.10045.4.1': 'ecdsa-with-SHA1 (SHA-1 is not accepted: sign the CRL with SHA-256)',
  '1.2.840.113549.1.1.10': 'RSASSA-PSS (not supported: sign the CRL with sha256WithRSAEncryption or ECDSA)',
};

/** One DER element of a certificate: enough to find its subject. */
function tlv(der: Uint8Array, at: number): { tag: number; end: number; body: number } {
  const tag = der[at] as number;
  let length = der[at + 1] as number;
  let body = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[body + i] as number);
    body += octets;
  }
  return { tag, body, end: body + length };
}

/** The subject Name's DER of a certificate (Node parsed it, so its structure is sound). */
function subjectDerOf(cert: X509Certificate): Buffer {
  const raw = cert.raw;
  const tbs = tlv(raw, tlv(raw, 0).body);
  let at = tbs.body;
  if (raw[at] === 0xa0) at = tlv(raw, at).end; // [0] version
  for (let i = 0; i < 4; i++) at = tlv(raw, at).end; // serial, signature, issuer, validity
  return raw.subarray(at, tlv(raw, at).end);
}

/** What names an issuing CA in a revocation: its subject and its key, hashed. */
export function issuerKeyOf(ca: X509Certificate): string {
  const spki = ca.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(subjectDerOf(ca)).update(spki).digest('hex');
}

/** Whether `crl`'s signature verifies with `key`; a string says why it cannot be checked. */
function signatureCheck(crl: CrlView, key: KeyObject): boolean | string {
  const algorithm = SIGNATURES[crl.signatureAlgorithm];
  if (algorithm === undefined) return `signature algorithm ${crl.signatureAlgorithm} (not supported)`;
  if (typeof algorithm === 'string') return algorithm;
  if (key.asymmetricKeyType !== algorithm.key) return false;
  try {
    return verify(algorithm.hash, crl.tbs, algorithm.key === 'ec' ? { key, dsaEncoding: 'der' } : key, crl.signature);
  } catch {
    return false; // a signature that is not a DER ECDSA-Sig-Value, say
  }
}

/** The CRLs of a file: PEM blocks (`X509 CRL` or `CRL`), or one DER CRL. */
function crlDersOf(data: Buffer): Buffer[] {
  if (data.length === 0) throw new ClientCrlError('the file is empty');
  if (data[0] === 0x30) return [data];
  const text = data.toString('latin1');
  const begins = text.match(/-----BEGIN (?:X509 )?CRL-----/g)?.length ?? 0;
  const blocks = [...text.matchAll(/-----BEGIN (X509 )?CRL-----([A-Za-z0-9+/=\s]*)-----END \1?CRL-----/g)];
  if (begins === 0)
    throw new ClientCrlError(
      text.includes('-----BEGIN ')
        ? 'holds no CRL (PEM blocks "-----BEGIN X509 CRL-----" or one DER CRL expected; a certificate bundle belongs in client_ca)'
        : 'is neither PEM ("-----BEGIN X509 CRL-----") nor a DER CRL',
    );
  if (blocks.length !== begins)
    throw new ClientCrlError(`${begins - blocks.length} of its ${begins} CRL blocks are damaged (no END line, or not base64)`);
  return blocks.map((b) => Buffer.from((b[2] ?? '').replace(/\s+/g, ''), 'base64'));
}

interface ClientCa {
  readonly cert: X509Certificate;
  readonly subject: Buffer;
  readonly key: string;
}

/**
 * Reads `data` (the file `file`) and verifies each CRL against the CAs of `clientCaPem`. Throws
 * ClientCrlError, one line: damaged, signed by no CA of client_ca, dated in the future, two CRLs of
 * one CA. A CRL past its nextUpdate is accepted (the caller reports it).
 */
export function readClientCrl(file: string, data: Buffer, clientCaPem: Buffer, now = Date.now()): ClientCrl {
  const cas: ClientCa[] = [];
  /** Certificates of client_ca not marked a CA, by subject: named when a CRL's issuer is one of them. */
  const notCas: { subject: Buffer; v1: boolean }[] = [];
  for (const pem of certificatesOf(clientCaPem.toString('latin1'))) {
    try {
      const cert = new X509Certificate(pem);
      if (cert.ca) cas.push({ cert, subject: subjectDerOf(cert), key: issuerKeyOf(cert) });
      else notCas.push({ subject: subjectDerOf(cert), v1: cert.raw[tlv(cert.raw, tlv(cert.raw, 0).body).body] !== 0xa0 });
    } catch {
      // Not a certificate OpenSSL trusts either: it signs nothing here.
    }
  }
  const ders = crlDersOf(data);
  const byIssuer = new Map<string, ReadonlySet<string>>();
  const crls: ClientCrlInfo[] = [];
  for (const [i, der] of ders.entries()) {
    const which = ders.length > 1 ? `CRL ${i + 1} of ${ders.length}` : 'the CRL';
    let crl: CrlView;
    try {
      crl = readCrl(der);
    } catch (err) {
      if (err instanceof CrlFormatError) throw new ClientCrlError(`${which}: ${err.message}`);
      throw err;
    }
    const named = cas.filter((ca) => ca.subject.equals(crl.issuer));
    const checks = named.map((ca) => ({ ca, result: signatureCheck(crl, ca.cert.publicKey) }));
    const signer = checks.find((c) => c.result === true)?.ca;
    if (signer === undefined) {
      const reason = checks.find((c) => typeof c.result === 'string')?.result;
      if (typeof reason === 'string') throw new ClientCrlError(`${which}: signed with ${reason}`);
      const notCa = named.length === 0 ? notCas.find((c) => c.subject.equals(crl.issuer)) : undefined;
      if (notCa !== undefined)
        throw new ClientCrlError(
          `${which}: its issuer is in client_ca but is not a CA certificate (${notCa.v1 ? 'X.509 v1, which has no basicConstraints' : 'no basicConstraints CA:TRUE'}): reissue that CA certificate with basicConstraints=critical,CA:TRUE`,
        );
      throw new ClientCrlError(
        named.length === 0
          ? `${which}: its issuer is no CA certificate of client_ca: a CRL is used only for the CAs client certificates chain to; add its CA to client_ca or remove the CRL`
          : `${which}: its signature does not verify with the key of "${(named[0] as ClientCa).cert.subject.replace(/\n/g, ', ')}" in client_ca (a CRL of another CA of that name, or damaged)`,
      );
    }
    const issuer = signer.cert.subject.replace(/\n/g, ', ');
    if (crl.thisUpdate.getTime() > now + CRL_MAX_SKEW_MS)
      throw new ClientCrlError(
        `${which} (CA "${issuer}") is dated in the future (thisUpdate ${crl.thisUpdate.toISOString()}): check this host's clock, or the CA's`,
      );
    if (byIssuer.has(signer.key))
      throw new ClientCrlError(
        `${which}: a second CRL of CA "${issuer}": keep only its current CRL (an older one beside it would be ambiguous)`,
      );
    byIssuer.set(signer.key, new Set(crl.serials));
    crls.push({ issuer, number: crl.number, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revoked: crl.serials.length });
  }
  return {
    file,
    crls,
    revokes(issuer, serial) {
      if (issuer === undefined || serial === undefined) return false;
      return byIssuer.get(issuer)?.has(serial) === true;
    },
    secondsPastNextUpdate(at = Date.now()) {
      let past = 0;
      for (const c of crls) if (c.nextUpdate !== undefined) past = Math.max(past, Math.floor((at - c.nextUpdate.getTime()) / 1000));
      return past;
    },
  };
}

/** The CRLs of `crl` past their nextUpdate at `now`, named for a log line or a readiness detail. */
export function staleCrls(crl: ClientCrl, now = Date.now()): ClientCrlInfo[] {
  return crl.crls.filter((c) => c.nextUpdate !== undefined && c.nextUpdate.getTime() <= now);
}

/** One CRL, named: `CA "CN=…" CRL number 7 (3 revoked), next update 2026-…`. */
export function describeClientCrl(c: ClientCrlInfo): string {
  return `CA "${c.issuer}" CRL${c.number !== undefined ? ` number ${c.number}` : ''} (${c.revoked} revoked)${c.nextUpdate ? `, next update ${c.nextUpdate.toISOString()}` : ''}`;
}
