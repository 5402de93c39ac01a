/**
 * `warden ca init`: a new CA in an empty directory — root (10 years), issuing intermediate (1 year,
 * pathLen 0), the administrator's client certificate, the database (ca.db, stamped with the trust
 * domain), bundle.pem and a ca.yaml skeleton.
 * Never overwrites: a directory holding any file it would write (or ca.db) is refused before a key is
 * generated. The files are written once everything is made, bundle.pem last (what deployments test
 * for); should one write fail, those already written are removed: no half-written CA stays behind.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createIssuer } from './issuer.js';
import { exportPrivateKeyPem, generateKeyPair } from './keys.js';
import { adminSpiffeId, CA_FILES, existingCaFiles } from './layout.js';
import { certificatePem, EC_P256, fingerprintOf, randomSerial, x509 } from './pki.js';
import { refuseForeignDirectory } from './file-ownership.js';
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
}

const DAY = 86_400_000;
export const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** Thrown when the directory already holds a CA; the message names the directory and the way out. */
export class CaExistsError extends Error {
  constructor(
    readonly dir: string,
    readonly existing: string[],
  ) {
    super(
      `${dir} already holds CA files (${existing.map((f) => f.slice(dir.length + 1)).join(', ')}); refusing to overwrite — choose an empty --dir`,
    );
    this.name = 'CaExistsError';
  }
}

export async function initCa(options: InitCaOptions): Promise<InitializedCa> {
  const { trustDomain } = options;
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new Error(`trust domain "${trustDomain}" must be lower-case letters, digits, "." and "-"`);
  }
  const dir = resolve(options.dir);
  const existing = existingCaFiles(dir);
  if (existing.length > 0) throw new CaExistsError(dir, existing);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A directory made here is this user's, 0700; one already there (made by someone else beforehand,
  // mode 0777 or another user's) would let its maker swap keys or add rows to the database.
  refuseForeignDirectory(dir, 'CA directory');

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
  const secret = { mode: 0o600, flag: 'wx' } as const;
  const plain = { mode: 0o644, flag: 'wx' } as const;
  // `wx`: fail rather than overwrite should another process create the file in between.
  const file = (content: string, opts: typeof secret | typeof plain) => (path: string) => writeFileSync(path, content, opts);
  const written: [string, (path: string) => void][] = [
    [CA_FILES.rootKey, file(await exportPrivateKeyPem(rootKeys.privateKey, passphrase), secret)],
    [CA_FILES.intermediateKey, file(await exportPrivateKeyPem(intermediateKeys.privateKey, passphrase), secret)],
    [CA_FILES.adminKey, file(await exportPrivateKeyPem(adminKeys.privateKey, passphrase), secret)],
    [CA_FILES.rootCert, file(rootPem, plain)],
    [CA_FILES.intermediateCert, file(certificatePem(intermediate), plain)],
    [CA_FILES.adminCert, file(admin.pem, plain)],
    [CA_FILES.config, file(caYamlSkeleton(trustDomain, options.passphraseReference, passphrase !== undefined), plain)],
    // The database, empty but stamped with the trust domain: `warden ca serve` refuses to start
    // without one (a lost database is not a first start), so init makes it.
    [CA_FILES.database, (path) => createCaDatabase(path, trustDomain)],
    // Last: `test -f bundle.pem || warden ca init` (compose, Kubernetes) takes it for a complete CA.
    [CA_FILES.bundle, file(rootPem, plain)],
  ];
  const files: string[] = [];
  for (const [name, write] of written) {
    const path = join(dir, name);
    try {
      write(path);
    } catch (err) {
      for (const done of files) rmSync(done, { force: true });
      throw (err as NodeJS.ErrnoException).code === 'EEXIST' ? new CaExistsError(dir, [path]) : err;
    }
    files.push(path);
  }
  return { dir, trustDomain, fingerprint: fingerprintOf(root), rootPem, adminSpiffeId: admin.spiffeId, files };
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
