/**
 * The files of a CA directory (written by `warden ca init`) and loading them for `warden ca serve`
 * and the admin CLI.
 */
import { existsSync } from 'node:fs';
import { MAX_SECRET_FILE_BYTES, readFailure, readFileBounded } from '../config/bounded-file.js';
import { join } from 'node:path';
import { importSigningKey, readPrivateKey } from './keys.js';
import { webcrypto } from 'node:crypto';
import { EC_P256, fingerprintOf, splitPem, uriSans, x509, type CryptoKey } from './pki.js';

export const CA_FILES = {
  rootCert: 'root.crt',
  rootKey: 'root.key',
  intermediateCert: 'intermediate.crt',
  intermediateKey: 'intermediate.key',
  adminCert: 'admin.crt',
  adminKey: 'admin.key',
  /** The trust bundle: every active root (today: one). */
  bundle: 'bundle.pem',
  config: 'ca.yaml',
  database: 'ca.db',
} as const;

/** The SPIFFE ID of the CA's administrator and of its own server certificate. */
export const adminSpiffeId = (trustDomain: string) => `spiffe://${trustDomain}/warden/admin`;
export const serverSpiffeId = (trustDomain: string) => `spiffe://${trustDomain}/warden/ca`;

/**
 * Files whose presence means "this directory already holds a CA": every file `warden ca init` writes
 * and the database. All of them: a ca.yaml or bundle.pem already there (a mounted ConfigMap) was found
 * only on the last write, after the keys were on disk.
 */
export function existingCaFiles(dir: string): string[] {
  return Object.values(CA_FILES)
    .map((f) => join(dir, f))
    .filter((f) => existsSync(f));
}

/** What issuing needs: the roots, the intermediate and its key (`warden ca admin issue` needs no more). */
export interface IssuingMaterial {
  dir: string;
  roots: x509.X509Certificate[];
  /** PEM of every root, concatenated: the trust bundle. */
  bundlePem: string;
  intermediate: x509.X509Certificate;
  intermediatePem: string;
  intermediateKey: CryptoKey;
  /** The root of the bundle that signed the intermediate (the unexpired one lasting longest). */
  issuingRoot: x509.X509Certificate;
  /** `sha256:<hex>` of the (first) root. */
  fingerprint: string;
}

/** The administrator certificate `warden ca init` (or `ca admin issue`) wrote, as admin.crt holds it. */
export interface AdminCertificate {
  adminCert: x509.X509Certificate;
  adminCertPem: string;
  /** From the admin certificate's SPIFFE ID: the CA's trust domain. */
  trustDomain: string;
}

export type CaMaterial = IssuingMaterial & AdminCertificate;

function read(dir: string, name: string): string {
  try {
    return readFileBounded(join(dir, name), MAX_SECRET_FILE_BYTES).toString('utf8');
  } catch (err) {
    throw new Error(`cannot read ${join(dir, name)} (${readFailure(err)}); is ${dir} a CA directory made by warden ca init?`, {
      cause: err,
    });
  }
}

/**
 * Why a key file did not load, from what it holds: only an encrypted PEM asks for a passphrase. A
 * damaged file (not PEM, or a key that does not parse) was reported as "encrypted", which sent
 * operators looking for a passphrase the key never had.
 */
function unreadableKey(file: string, pem: string, passphrase: string | undefined, passphraseHint: string): string {
  if (!/-----BEGIN (ENCRYPTED |EC |RSA )?PRIVATE KEY-----/.test(pem)) {
    return `${file} holds no PEM private key (damaged or not a key file): restore it from a backup`;
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem)) {
    return passphrase === undefined ? `${file} is encrypted: give ${passphraseHint}` : `${file} does not decrypt with this passphrase`;
  }
  return `${file} is not a readable ECDSA P-256 private key (damaged?): restore it from a backup`;
}

/** Whether `key` signs what the certificate's public key verifies (a probe signature). */
async function keyMatches(key: CryptoKey, cert: x509.X509Certificate): Promise<boolean> {
  try {
    const probe = new TextEncoder().encode('warden ca key check');
    const algorithm = { name: 'ECDSA', hash: 'SHA-256' };
    const signature = await webcrypto.subtle.sign(algorithm, key, probe);
    const publicKey = await webcrypto.subtle.importKey('spki', cert.publicKey.rawData, EC_P256, false, ['verify']);
    return await webcrypto.subtle.verify(algorithm, publicKey, signature, probe);
  } catch {
    return false;
  }
}

/** The roots that signed `cert`. */
async function signersOf(cert: x509.X509Certificate, roots: readonly x509.X509Certificate[]): Promise<x509.X509Certificate[]> {
  const signers: x509.X509Certificate[] = [];
  for (const root of roots)
    if (await cert.verify({ publicKey: root.publicKey, signatureOnly: true }).catch(() => false)) signers.push(root);
  return signers;
}

/** Loads and cross-checks the CA directory, admin.crt included (`warden ca serve`). Errors name the file and what to do. */
export async function loadCaMaterial(dir: string, passphrase?: string): Promise<CaMaterial> {
  const issuing = await loadIssuingMaterial(dir, passphrase);
  const admin = readAdminCertificate(dir);
  if (admin === 'missing') throw new Error(missingAdminFile(join(dir, CA_FILES.adminCert)));
  return { ...issuing, ...admin };
}

/** Why a CA directory without admin.crt (or admin.key) is of no use, and the remedy: `warden ca admin issue` needs neither. */
export const missingAdminFile = (file: string, caYaml = "<the CA's ca.yaml>") =>
  `${file} is missing: make a new administrator certificate with warden ca admin issue -c ${caYaml} (it needs no admin.crt)`;

/**
 * admin.crt, or 'missing' when there is none: lost, it is what `warden ca admin issue` replaces. A
 * file that holds no certificate, or one without a SPIFFE ID, is an error naming it.
 */
export function readAdminCertificate(dir: string): AdminCertificate | 'missing' {
  const file = join(dir, CA_FILES.adminCert);
  if (!existsSync(file)) return 'missing';
  const adminCertPem = read(dir, CA_FILES.adminCert);
  const [adminCert] = splitPem(adminCertPem);
  if (!adminCert) throw new Error(`${file} holds no certificate: remove it and make a new one with warden ca admin issue`);
  const id = uriSans(adminCert)[0] ?? '';
  const trustDomain = /^spiffe:\/\/([^/]+)\//.exec(id)?.[1];
  if (!trustDomain) throw new Error(`${file} has no SPIFFE ID: remove it and make a new one with warden ca admin issue`);
  return { adminCert, adminCertPem, trustDomain };
}

/** Loads and cross-checks the issuing part of the CA directory: the bundle, the intermediate and its key. */
export async function loadIssuingMaterial(dir: string, passphrase?: string): Promise<IssuingMaterial> {
  const bundlePem = read(dir, CA_FILES.bundle);
  const roots = splitPem(bundlePem);
  const intermediatePem = read(dir, CA_FILES.intermediateCert);
  const [intermediate] = splitPem(intermediatePem);
  const [root] = roots;
  if (!root || !intermediate) throw new Error(`${dir}: bundle.pem or intermediate.crt holds no certificate`);
  let intermediateKey: CryptoKey;
  try {
    intermediateKey = await importSigningKey(read(dir, CA_FILES.intermediateKey), passphrase);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith('cannot read')) throw err;
    throw new Error(unreadableKey(join(dir, CA_FILES.intermediateKey), read(dir, CA_FILES.intermediateKey), passphrase, 'the passphrase'), {
      cause: err,
    });
  }
  // Files from two CAs mixed up started "fine" and failed every handshake: the key must be the
  // intermediate's, and the intermediate must chain to a root of the bundle.
  if (!(await keyMatches(intermediateKey, intermediate))) {
    throw new Error(
      `${join(dir, CA_FILES.intermediateKey)} is not the key of ${join(dir, CA_FILES.intermediateCert)}: restore the pair from the same backup`,
    );
  }
  const signers = await signersOf(intermediate, roots);
  if (signers.length === 0) {
    throw new Error(
      `${join(dir, CA_FILES.intermediateCert)} is not signed by a root in ${join(dir, CA_FILES.bundle)}: restore them from the same backup`,
    );
  }
  // An expired link fails every handshake of the mesh: refuse to start rather than issue certificates
  // no one accepts (an expired root used to start without a word).
  const now = Date.now();
  const issuingRoot = signers.reduce((a, b) => (b.notAfter > a.notAfter ? b : a));
  if (issuingRoot.notAfter.getTime() <= now) {
    throw new Error(
      `${join(dir, CA_FILES.bundle)}: the root that signed ${CA_FILES.intermediateCert} expired at ${issuingRoot.notAfter.toISOString()}: make a new root and intermediate (root rotation, docs/mesh-identity.md#root-rotation)`,
    );
  }
  if (intermediate.notAfter.getTime() <= now) {
    throw new Error(
      `${join(dir, CA_FILES.intermediateCert)} expired at ${intermediate.notAfter.toISOString()}: make a new intermediate with the root key (docs/mesh-identity.md#root-rotation)`,
    );
  }
  return { dir, roots, bundlePem, intermediate, intermediatePem, intermediateKey, issuingRoot, fingerprint: fingerprintOf(root) };
}

export interface AdminCredentials {
  certPem: string;
  keyPem: string;
  /** The admin key's passphrase (the CA's), when the key is encrypted. */
  passphrase: string | undefined;
  bundlePem: string;
}

/**
 * What the admin CLI needs from the CA directory; checks the key decrypts so the error is clear.
 * `caYaml`: the ca.yaml the command was given (-c), named in the remedy for a lost admin file.
 */
export function loadAdminCredentials(dir: string, passphrase?: string, caYaml?: string): AdminCredentials {
  // A lost admin.crt or admin.key: only a new pair helps.
  for (const name of [CA_FILES.adminCert, CA_FILES.adminKey])
    if (!existsSync(join(dir, name))) throw new Error(missingAdminFile(join(dir, name), caYaml));
  const keyPem = read(dir, CA_FILES.adminKey);
  try {
    readPrivateKey(keyPem, passphrase);
  } catch (err) {
    throw new Error(
      unreadableKey(
        join(dir, CA_FILES.adminKey),
        keyPem,
        passphrase,
        'the CA passphrase (-c ca.yaml, --passphrase-file or --passphrase-env)',
      ),
      { cause: err },
    );
  }
  return { certPem: read(dir, CA_FILES.adminCert), keyPem, passphrase, bundlePem: read(dir, CA_FILES.bundle) };
}
