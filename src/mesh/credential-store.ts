/**
 * The state dir: the workload's key and certificate chain (one file, 0600), trust bundle and CRL, so
 * a restart needs no new bootstrap token. Key and chain share a file so that one atomic write
 * (temp file, fsync, rename) replaces both: a crash leaves the old pair or the new pair, never a
 * key without its certificate.
 */
import { createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { x509 } from '../ca/pki.js';
import { canonicalSerial } from '../net/serial.js';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spiffeIdOfSubjectAltName } from '../net/spiffe-id.js';
import { CRL_MAX_SKEW_MS } from '../net/clock-skew.js';
import { chainsToBundle } from './crl-check.js';
import { assertUsableBundle, certificatesOf, isUsableBundle } from '../net/trust-bundle.js';
import { ownershipProblem } from '../ca/file-ownership.js';
import { writeFileAtomic, writeFileAtomicAsync } from '../config/atomic-file.js';

export interface WorkloadCredentials {
  keyPem: string;
  /** Leaf first, then the intermediate(s). */
  certPem: string;
  /** Trust bundle (roots); '' when none was persisted or issued. */
  bundlePem: string;
  spiffeId: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export const STATE_FILES = {
  credentials: 'workload.pem',
  bundle: 'bundle.pem',
  crl: 'crl.der',
  /** The issuing CA certificate that signed crl.der (PEM): checked again, with the CRL, at start. */
  crlSigner: 'crl-signer.pem',
  /** The key and CSR of an enrollment not yet saved: a retry sends them again (see PendingEnrollment). */
  pending: 'enrollment-pending.json',
} as const;

/**
 * An enrollment's key and CSR, saved before the CSR is sent and removed once the certificate is
 * saved. The CA answers a retry with the same token and the same key with the certificate it issued
 * (docs/ca.md): an answer lost after the CA's commit spent the token, and a retry with a new key was
 * ERR_CA_TOKEN_USED for good.
 */
export interface PendingEnrollment {
  spiffeId: string;
  dnsNames: string[];
  keyPem: string;
  csrPem: string;
}

const PEM_KEY = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/;

export class CredentialError extends Error {
  constructor(
    readonly code: 'ERR_MESH_STATE_INVALID' | 'ERR_MESH_IDENTITY_CHANGED',
    message: string,
  ) {
    super(message);
    this.name = 'CredentialError';
  }
}

/** Parses and checks a key + chain: the key belongs to the leaf, the leaf carries one SPIFFE ID. */
export function describeCredentials(keyPem: string, certPem: string, bundlePem: string): WorkloadCredentials {
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certPem)?.[0];
  if (!leafPem) throw new CredentialError('ERR_MESH_STATE_INVALID', 'no certificate in the chain');
  const leaf = new X509Certificate(leafPem);
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem)))
    throw new CredentialError('ERR_MESH_STATE_INVALID', 'the key does not belong to the certificate');
  const spiffeId = spiffeIdOfSubjectAltName(leaf.subjectAltName);
  if (!spiffeId) throw new CredentialError('ERR_MESH_STATE_INVALID', 'the certificate carries no SPIFFE ID');
  return {
    keyPem,
    certPem,
    bundlePem,
    spiffeId,
    serial: canonicalSerial(leaf.serialNumber),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
  };
}

/**
 * The DNS names of a chain's leaf, lowercased (as the CA compares them). Node JSON-quotes an entry
 * holding ", " or quotes: such a piece is not a name and is returned as is, so it never compares equal.
 */
export function dnsNamesOf(certPem: string): string[] {
  const leafPem = certificatesOf(certPem)[0];
  const san = leafPem ? new X509Certificate(leafPem).subjectAltName : undefined;
  return (san ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
}

/** A certificate the CA issued that must not replace the one in use (nor be saved); the message says why. */
export class CertificateRefusedError extends Error {
  readonly code = 'ERR_MESH_CERT_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'CertificateRefusedError';
  }
}

/**
 * Why a certificate the CA just issued is unusable, or undefined. describeCredentials has checked
 * the key and the SPIFFE ID; here: valid now (its notBefore may be ahead by the clock skew allowed
 * for CRLs), and chained, through the intermediate sent with it, to `issued.bundlePem`, the bundle
 * it is used with, which must keep a root of `currentBundle` (a renewal continues the trust in
 * force, as the root rotation steps do). A broken or impostor issuer must not replace a good
 * certificate with one no peer accepts.
 */
export function issuedCertificateProblem(issued: WorkloadCredentials, currentBundle: string, now = Date.now()): string | undefined {
  const { serial, notBefore, notAfter, bundlePem } = issued;
  if (notBefore.getTime() > now + CRL_MAX_SKEW_MS) return `certificate ${serial} is not valid before ${notBefore.toISOString()}`;
  if (notAfter.getTime() <= now) return `certificate ${serial} expired at ${notAfter.toISOString()}`;
  const roots = new Set(certificatesOf(currentBundle).map(derOf));
  if (bundlePem !== currentBundle && !certificatesOf(bundlePem).some((root) => roots.has(derOf(root))))
    return 'the trust bundle sent with it holds none of the current roots';
  return chainsToItsBundle(issued, now) ? undefined : `certificate ${serial} does not chain to the trust bundle`;
}

/**
 * Whether the leaf is signed by an intermediate of its chain that chains to a root of its bundle
 * (or by a root itself): what every peer checks. False once a root is removed from the bundle
 * before this workload renewed under the new one.
 */
export function chainsToItsBundle(credentials: Pick<WorkloadCredentials, 'certPem' | 'bundlePem'>, now = Date.now()): boolean {
  const [leafPem, ...chain] = certificatesOf(credentials.certPem);
  const leaf = new X509Certificate(leafPem ?? '');
  const signedBy = (pem: string) => isSignedBy(leaf, pem);
  return (
    chain.some((ca) => signedBy(ca) && chainsToBundle(ca, credentials.bundlePem, now)) ||
    certificatesOf(credentials.bundlePem).some(signedBy)
  );
}

/** Whether `pem` is a CA certificate that issued and signed `leaf` (false for anything that does not parse). */
function isSignedBy(leaf: X509Certificate, pem: string): boolean {
  try {
    const ca = new X509Certificate(pem);
    return ca.ca && leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  } catch {
    return false;
  }
}

/**
 * Why a persisted chain is damaged, or undefined: nothing but whole certificates after the key (a
 * file cut short ends in part of one, which certificatesOf skips), and the leaf signed by the next
 * one (its intermediate) or by a root of the bundle. Unlike issuedCertificateProblem, no check of
 * validity dates or of the bundle's roots: an expired certificate is replaced at start, and one
 * issued under a root since rotated out is the renewal's to replace.
 */
export function persistedChainProblem(certPem: string, bundlePem: string): string | undefined {
  if (certPem.replace(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g, '').trim() !== '')
    return 'the certificate chain is cut short or holds something else than certificates';
  const [leafPem, ...chain] = certificatesOf(certPem);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafPem ?? '');
    for (const pem of chain) new X509Certificate(pem);
  } catch {
    return 'a certificate of the chain does not parse';
  }
  const signedBy = (pem: string) => isSignedBy(leaf, pem);
  if (chain[0] !== undefined ? signedBy(chain[0]) : certificatesOf(bundlePem).some(signedBy)) return undefined;
  return chain.length === 0
    ? 'the chain holds no intermediate, and no root of bundle.pem signed the certificate'
    : 'the certificate is not signed by the intermediate after it';
}

/** A PEM certificate's base64 body, whitespace removed: equal for the same certificate however it is wrapped. */
const derOf = (pem: string) => pem.replace(/-----[^-]+-----|\s/g, '');

export function isExpired(credentials: Pick<WorkloadCredentials, 'notAfter'>, now = Date.now()): boolean {
  return credentials.notAfter.getTime() <= now;
}

/** mesh.state_dir is another user's, or others may write in it: startup stops, nothing read from it. */
export class StateDirUnsafeError extends Error {
  readonly code = 'ERR_MESH_STATE_UNSAFE';
  constructor(message: string) {
    super(message);
    this.name = 'StateDirUnsafeError';
  }
}

/**
 * Throws StateDirUnsafeError when another user could have written in `dir`; returns its mode and
 * whether it is this process's own. Whoever can write there can replace the key, the bundle, the CRL
 * (each checked at start, but a key and certificate of theirs would be served) or plant files
 * before they are written; and a dir owned by another user, tightened to 0700 by a sidecar running
 * as root, was opened again by its owner. The CA's rule (src/ca/file-ownership.ts): this user's or
 * root's (a Kubernetes volume's mount point is root's, with the pod's fsGroup: refusing it refused
 * a PVC per pod), not writable by others, group-writable only for this process's own groups
 * (fsGroup, a umask of 002). Without uids (Windows) nothing is checked.
 */
function assertOwnStateDir(dir: string): { mode: number; own: boolean } {
  const stats = statSync(dir);
  const uid = process.getuid?.();
  if (uid === undefined) return { mode: stats.mode, own: true };
  const problem = ownershipProblem(dir, stats, 'mesh.state_dir');
  if (problem)
    throw new StateDirUnsafeError(
      `mesh: ${problem}; whoever wrote there could replace the key, certificate, bundle or CRL it holds (or set mesh.state_dir to a directory under it, e.g. ${join(dir, 'warden')}: Warden creates it 0700, and a new one needs mesh.bootstrap_token)`,
    );
  return { mode: stats.mode, own: stats.uid === uid };
}

export interface CredentialStore {
  readonly dir: string;
  /**
   * The persisted credentials for `spiffeId` (possibly expired: see isExpired), or undefined when
   * there are none. Throws CredentialError when they are unusable or belong to another identity.
   */
  load(spiffeId: string): WorkloadCredentials | undefined;
  /**
   * Key and chain; the bundle too when it holds certificates. Off the event loop, as are the saves
   * below. `mayWrite` is asked again before each file is put in place (the state dir's lock still
   * held): a save that outlives a lost lock writes nothing more into another process's dir.
   */
  save(credentials: WorkloadCredentials, mayWrite?: () => boolean): Promise<void>;
  /** Key and chain only (workload.pem): a running sidecar saves its bundle as a write of its own. */
  saveKeyAndChain(credentials: WorkloadCredentials, mayWrite?: () => boolean): Promise<void>;
  /** Rejects with BundleError on a bundle without certificates (the one on disk stays). */
  saveBundle(bundlePem: string, mayWrite?: () => boolean): Promise<void>;
  /** The persisted bundle, or undefined when there is none with a certificate. */
  loadBundle(): string | undefined;
  /** The CRL and the issuing CA certificate that signed it (written first: a CRL is never newer than its signer on disk). */
  saveCrl(der: Uint8Array, signerPem: string, mayWrite?: () => boolean): Promise<void>;
  loadCrl(): Buffer | undefined;
  /** The signer saved with the CRL, if any (unverified: the caller checks that it chains to the bundle). */
  loadCrlSigner(): string | undefined;
  /**
   * Creates and removes a file in the dir: throws (the error names the dir) when this process
   * cannot write there — checked before a single-use bootstrap token is spent.
   */
  probeWritable(): Promise<void>;
  /** When workload.pem was last written (ms since the epoch), if it exists. */
  savedAt(): number | undefined;
  /**
   * The pending enrollment for this identity and these DNS names, if one was saved; `ignored` says
   * why a file there is not used (a new key is made, and the file replaced).
   */
  loadPending(spiffeId: string, dnsNames: readonly string[]): { pending: PendingEnrollment } | { ignored: string } | undefined;
  savePending(pending: PendingEnrollment): void;
  clearPending(): void;
}

export function createCredentialStore(dir: string): CredentialStore {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { mode, own } = assertOwnStateDir(dir);
  // An existing dir of ours is tightened: group and other bits off, the owner's left as they are (a
  // dir made read-only stays so, and the probe says so). A volume's root (root's, fsGroup) is left.
  if (own && (mode & 0o077) !== 0) {
    try {
      chmodSync(dir, mode & 0o700);
    } catch {
      // a file system without modes: the key file's own 0600 is what protects the key
    }
  }
  const path = (name: string) => join(dir, name);
  const read = (name: string) => (existsSync(path(name)) ? readFileSync(path(name), 'utf8') : undefined);
  // A lost or truncated bundle.pem (deleted, or a crash between save()'s two writes) is no bundle:
  // the caller falls back to the configured roots instead of trusting nobody.
  const readBundle = () => {
    const pem = read(STATE_FILES.bundle);
    return isUsableBundle(pem) ? pem : undefined;
  };
  const saveKeyAndChain = async (credentials: WorkloadCredentials, mayWrite?: () => boolean) => {
    const keyPem = credentials.keyPem.endsWith('\n') ? credentials.keyPem : `${credentials.keyPem}\n`;
    await writeFileAtomicAsync(path(STATE_FILES.credentials), keyPem + credentials.certPem, 0o600, mayWrite);
  };

  return {
    dir,
    load(spiffeId) {
      const text = read(STATE_FILES.credentials);
      if (text === undefined) return undefined;
      const keyPem = PEM_KEY.exec(text)?.[0] ?? '';
      const certPem = text.replace(PEM_KEY, '');
      let credentials: WorkloadCredentials;
      try {
        credentials = describeCredentials(keyPem, certPem, readBundle() ?? '');
      } catch (err) {
        throw new CredentialError('ERR_MESH_STATE_INVALID', `${path(STATE_FILES.credentials)}: ${(err as Error).message}`);
      }
      // A cut or damaged chain would be served and fail every peer's verification.
      const damaged = persistedChainProblem(credentials.certPem, credentials.bundlePem);
      if (damaged !== undefined) throw new CredentialError('ERR_MESH_STATE_INVALID', `${path(STATE_FILES.credentials)}: ${damaged}`);
      if (credentials.spiffeId !== spiffeId) {
        throw new CredentialError(
          'ERR_MESH_IDENTITY_CHANGED',
          `${dir} holds credentials for ${credentials.spiffeId}, not mesh.spiffe_id ${spiffeId}: enroll again with a token for the new identity (or use another state_dir)`,
        );
      }
      return credentials;
    },
    async save(credentials, mayWrite) {
      await saveKeyAndChain(credentials, mayWrite);
      if (isUsableBundle(credentials.bundlePem))
        await writeFileAtomicAsync(path(STATE_FILES.bundle), credentials.bundlePem, 0o644, mayWrite);
    },
    saveKeyAndChain,
    async saveBundle(pem, mayWrite) {
      assertUsableBundle(pem, `${path(STATE_FILES.bundle)} is not replaced`);
      await writeFileAtomicAsync(path(STATE_FILES.bundle), pem, 0o644, mayWrite);
    },
    loadBundle: readBundle,
    async saveCrl(der, signerPem, mayWrite) {
      await writeFileAtomicAsync(path(STATE_FILES.crlSigner), signerPem, 0o644, mayWrite);
      await writeFileAtomicAsync(path(STATE_FILES.crl), der, 0o644, mayWrite);
    },
    loadCrlSigner: () => read(STATE_FILES.crlSigner),
    loadCrl: () => (existsSync(path(STATE_FILES.crl)) ? readFileSync(path(STATE_FILES.crl)) : undefined),
    loadPending(spiffeId, dnsNames) {
      const file = path(STATE_FILES.pending);
      if (!existsSync(file)) return undefined;
      const ignored = (why: string) => ({ ignored: `${file}: ${why}; a new key is made` });
      // Its key is sent for certification: a file another user wrote or can rewrite is not ours to send.
      const stat = statSync(file);
      const uid = process.getuid?.();
      if (uid !== undefined && stat.uid !== uid) return ignored(`owned by uid ${stat.uid}, not this process's ${uid}`);
      // Group bits allowed: Kubernetes' fsGroup adds g+rw to a volume's files at every mount, and a
      // retry key ignored after a pod restart brought back row 227's crash loop.
      if ((stat.mode & 0o006) !== 0) return ignored(`mode ${(stat.mode & 0o777).toString(8)}: other users can read or write it`);
      try {
        const p = JSON.parse(readFileSync(file, 'utf8')) as PendingEnrollment;
        const same = (a: readonly string[], b: readonly string[]) =>
          [...a].sort().join(',') ===
          [...b]
            .map((n) => n.toLowerCase())
            .sort()
            .join(',');
        if (p.spiffeId !== spiffeId || !Array.isArray(p.dnsNames) || !same(p.dnsNames, dnsNames)) return undefined;
        if (typeof p.keyPem !== 'string' || typeof p.csrPem !== 'string' || !PEM_KEY.test(p.keyPem)) return ignored('no key and CSR in it');
        const keySpki = createPublicKey(createPrivateKey(p.keyPem)).export({ type: 'spki', format: 'der' });
        const csrSpki = Buffer.from(new x509.Pkcs10CertificateRequest(p.csrPem).publicKey.rawData);
        if (!keySpki.equals(csrSpki)) return ignored('its CSR is not for its key');
        return { pending: p };
      } catch (err) {
        return ignored(`damaged (${(err as Error).message})`);
      }
    },
    savedAt() {
      const file = path(STATE_FILES.credentials);
      return existsSync(file) ? statSync(file).mtimeMs : undefined;
    },
    savePending(pending) {
      writeFileAtomic(
        path(STATE_FILES.pending),
        JSON.stringify({ ...pending, dnsNames: pending.dnsNames.map((n) => n.toLowerCase()) }),
        0o600,
      );
    },
    clearPending() {
      rmSync(path(STATE_FILES.pending), { force: true });
    },
    async probeWritable() {
      const probe = path(`.probe.${randomBytes(6).toString('hex')}.tmp`);
      try {
        // As big as a workload.pem, so a full disk shows here rather than after the enrollment.
        await writeFileAtomicAsync(probe, Buffer.alloc(8192), 0o600);
      } finally {
        rmSync(probe, { force: true });
      }
    },
  };
}
