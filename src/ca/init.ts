/**
 * `warden ca init`: a new CA in an empty directory — root (10 years), issuing intermediate (1 year,
 * pathLen 0), the administrator's client certificate, the database (ca.db, stamped with the trust
 * domain), bundle.pem and a ca.yaml skeleton.
 * Never overwrites: a directory holding any file it would write (or ca.db) is refused before a key is
 * generated. All or nothing (init-staging.ts): the files are made and synced in a staging directory
 * once everything is made, then linked into DIR, bundle.pem last (what deployments test for); what
 * a failed or killed init left is removed by the next one.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createIssuer } from './issuer.js';
import { exportPrivateKeyPem, generateKeyPair } from './keys.js';
import { adminSpiffeId, CA_FILES, existingCaFiles } from './layout.js';
import { certificatePem, EC_P256, fingerprintOf, randomSerial, x509 } from './pki.js';
import { refuseForeignDirectory } from './file-ownership.js';
import { installAtomically, removeInterruptedInit, TargetExistsError, writeNewFile, type StagedFile } from './init-staging.js';
import { createCaDatabase } from './store.js';

export interface InitCaOptions {
  trustDomain: string;
  dir: string;
  /** Encrypts the three private keys (root, intermediate, admin). */
  passphrase?: string | undefined;
  /** Line written into ca.yaml for the passphrase (e.g. `${file:/run/secrets/ca-pass}`); a placeholder comment when absent. */
  passphraseReference?: string | undefined;
  rootLifetimeDays?: number;
  intermediateLifetimeDays?: number;
  adminLifetimeDays?: number;
}

export interface InitializedCa {
  dir: string;
  trustDomain: string;
  /** `sha256:<hex>` of the root certificate's DER. */
  fingerprint: string;
  rootPem: string;
  adminSpiffeId: string;
  /** Absolute paths of what was written. */
  files: string[];
  /** What an interrupted init had left in the directory, removed first (absolute paths). */
  removed: string[];
}

const DAY = 86_400_000;
export const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** Thrown when the directory already holds a CA; the message names the directory and the way out. */
export class CaExistsError extends Error {
  constructor(
    readonly dir: string,
    readonly existing: string[],
  ) {
    const names = existing.map((f) => f.slice(dir.length + 1));
    // Keys without bundle.pem (written last) may be what an init killed before 2026-12-03 left: say
    // what to remove, without removing it (a bundle.pem deleted by hand from a live CA looks the same).
    const keys: string[] = [CA_FILES.rootKey, CA_FILES.intermediateKey, CA_FILES.adminKey];
    const leftovers =
      names.includes(CA_FILES.bundle) || !names.some((n) => keys.includes(n))
        ? ''
        : `; without ${CA_FILES.bundle} (written last) they may be the leftovers of an interrupted warden ca init: if no CA was ever served from ${dir}, remove them (rm ${existing.join(' ')}) and run it again`;
    super(`${dir} already holds CA files (${names.join(', ')}); refusing to overwrite — choose an empty --dir${leftovers}`);
    this.name = 'CaExistsError';
  }
}

export async function initCa(options: InitCaOptions): Promise<InitializedCa> {
  const { trustDomain } = options;
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new Error(`trust domain "${trustDomain}" must be lower-case letters, digits, "." and "-"`);
  }
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A directory made here is this user's, 0700; one already there (made by someone else beforehand,
  // mode 0777 or another user's) would let its maker swap keys or add rows to the database.
  // Checked before anything in it is removed or written.
  refuseForeignDirectory(dir, 'CA directory');
  const removed = removeInterruptedInit(dir);
  const existing = existingCaFiles(dir);
  if (existing.length > 0) throw new CaExistsError(dir, existing);

  const now = Date.now();
  const rootKeys = await generateKeyPair();
  const rootName = `CN=Warden Root CA, O=${trustDomain}`;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: rootName,
    notBefore: new Date(now - 5 * 60_000),
    notAfter: new Date(now + (options.rootLifetimeDays ?? 3650) * DAY),
    signingAlgorithm: EC_P256,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const rootSki = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId as string;

  const intermediateKeys = await generateKeyPair();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=Warden Issuing CA, O=${trustDomain}`,
    issuer: root.subjectName,
    notBefore: new Date(now - 5 * 60_000),
    // Never past the root's end (a root shorter than the intermediate asked for).
    notAfter: new Date(Math.min(now + (options.intermediateLifetimeDays ?? 365) * DAY, root.notAfter.getTime())),
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(intermediateKeys.publicKey),
      new x509.AuthorityKeyIdentifierExtension(rootSki),
    ],
  });

  const adminKeys = await generateKeyPair();
  const issuer = createIssuer({
    intermediate,
    intermediateKey: intermediateKeys.privateKey,
    issuingRoot: root,
    trustDomain,
    lifetimeMs: (options.adminLifetimeDays ?? 365) * DAY,
    backdateMs: 5 * 60_000,
  });
  const admin = await issuer.issue({ publicKey: adminKeys.publicKey, spiffeId: adminSpiffeId(trustDomain), use: 'admin' });

  const { passphrase } = options;
  const rootPem = certificatePem(root);
  const file = (name: string, content: string, mode: number): StagedFile => ({ name, make: (path) => writeNewFile(path, content, mode) });
  const files: StagedFile[] = [
    file(CA_FILES.rootKey, await exportPrivateKeyPem(rootKeys.privateKey, passphrase), 0o600),
    file(CA_FILES.intermediateKey, await exportPrivateKeyPem(intermediateKeys.privateKey, passphrase), 0o600),
    file(CA_FILES.adminKey, await exportPrivateKeyPem(adminKeys.privateKey, passphrase), 0o600),
    file(CA_FILES.rootCert, rootPem, 0o644),
    file(CA_FILES.intermediateCert, certificatePem(intermediate), 0o644),
    file(CA_FILES.adminCert, admin.pem, 0o644),
    file(CA_FILES.config, caYamlSkeleton(trustDomain, options.passphraseReference, passphrase !== undefined), 0o644),
    // The database, empty but stamped with the trust domain: `warden ca serve` refuses to start
    // without one (a lost database is not a first start), so init makes it.
    { name: CA_FILES.database, make: (path) => createCaDatabase(path, trustDomain) },
    // `test -f bundle.pem || warden ca init` (compose, Kubernetes) takes it for a complete CA: linked last.
    file(CA_FILES.bundle, rootPem, 0o644),
  ];
  let written: string[];
  try {
    written = installAtomically(dir, files, CA_FILES.bundle);
  } catch (err) {
    // A file that appeared in DIR meanwhile (made by another process): refused like one there before.
    throw err instanceof TargetExistsError ? new CaExistsError(dir, [err.path]) : err;
  }
  return { dir, trustDomain, fingerprint: fingerprintOf(root), rootPem, adminSpiffeId: admin.spiffeId, files: written, removed };
}

function caYamlSkeleton(trustDomain: string, passphraseReference: string | undefined, encrypted: boolean): string {
  const passphrase = passphraseReference
    ? `passphrase: "${passphraseReference}"`
    : encrypted
      ? '# passphrase: ${file:/run/secrets/warden-ca-passphrase}   # the keys are encrypted: required'
      : '# passphrase: ${file:...}   # only when the keys are encrypted';
  return `# Warden CA configuration (see docs/ca.md). Durations: "500ms", "10s", "5m", "24h".
trust_domain: ${trustDomain}
dir: .                       # the CA material (this directory)
${passphrase}
listen:
  host: 127.0.0.1
  port: 8444
database:
  path: ca.db
  keep_expired: 720h         # expired certificates (not revoked) and tokens leave it this long after
certificates:
  lifetime: 24h              # of workload certificates; capped at the intermediate's not-after
  backdate: 5m
tokens:
  ttl: 1h                    # default bootstrap token lifetime
crl:
  next_update: 10m
server:
  dns_names: [localhost]
  ip_addresses: [127.0.0.1]
log:
  level: info
`;
}
