/**
 * `warden ca admin issue`: a new administrator certificate (admin.crt, admin.key), made offline from
 * the CA directory's intermediate key, as `warden ca init` makes the first one. The admin API cannot
 * do it: an administrator certificate revoked or expired (1 year) is what locks one out of that API,
 * and `ca init` refuses a directory that holds a CA. The certificate enters the ledger first (kind
 * `admin`, as recordAdmin does at start), so a running CA accepts it at once; the files are replaced
 * after, each whole or not at all (admin-files.ts). When they cannot be, the new certificate is
 * revoked in the ledger before the error: valid with its key nowhere, it counted as an administrator
 * the CA would keep, and the last usable one could be revoked. The certificate it replaces stays
 * valid until revoked or expired.
 * admin.crt may be missing (lost): it is not needed to issue, only read to say what was replaced.
 * The caller holds the directory's admin-issue lock (admin-issue-lock.ts): two runs at once could
 * leave the key of one beside the certificate of the other.
 */
import type { CaConfig } from '../config/ca-schema.js';
import { canonicalSerial } from '../net/serial.js';
import { AdminFileWriteError, writeAdminPair } from './admin-files.js';
import { createIssuer } from './issuer.js';
import { exportPrivateKeyPem, generateKeyPair } from './keys.js';
import { adminSpiffeId, readAdminCertificate, type IssuingMaterial } from './layout.js';
import { keyIdOf } from './pki.js';
import { openCaStore, type CaStore } from './store.js';

export interface IssuedAdmin {
  spiffeId: string;
  serial: string;
  notAfter: Date;
  certPath: string;
  keyPath: string;
  /** Other administrator certificates still valid (the one admin.crt held, unless revoked or expired). */
  stillValid: string[];
  /** The serial admin.crt held before; undefined when there was no admin.crt (lost). */
  replaced: string | undefined;
}

const DAY = 86_400_000;
/** As `warden ca init`'s (init.ts): a year, never past the intermediate or its root. */
const ADMIN_LIFETIME_MS = 365 * DAY;

export async function issueAdminCertificate(config: CaConfig, material: IssuingMaterial): Promise<IssuedAdmin> {
  const spiffeId = adminSpiffeId(config.trust_domain);
  // The checks of `warden ca serve`: this CA's database, owned by this user, not damaged.
  const store = openCaStore(config.database.path, { trustDomain: config.trust_domain });
  try {
    const issuer = createIssuer({
      intermediate: material.intermediate,
      intermediateKey: material.intermediateKey,
      issuingRoot: material.issuingRoot,
      trustDomain: config.trust_domain,
      lifetimeMs: ADMIN_LIFETIME_MS,
      backdateMs: 5 * 60_000,
    });
    const keys = await generateKeyPair();
    const issued = await issuer.issue({ publicKey: keys.publicKey, spiffeId, use: 'admin' });
    const keyPem = await exportPrivateKeyPem(keys.privateKey, config.passphrase);
    const before = readAdminCertificate(config.dir);
    const replaced = before === 'missing' ? undefined : canonicalSerial(before.adminCert.serialNumber);
    const now = Date.now();
    store.transaction(() => {
      store.insertCertificate({
        serial: issued.serial,
        spiffe_id: spiffeId,
        kind: 'admin',
        not_before: issued.notBefore.getTime(),
        not_after: issued.notAfter.getTime(),
        pem: issued.pem,
        issued_at: now,
        key_id: keyIdOf(issued.certificate.publicKey),
      });
      store.audit({
        action: 'admin.issue',
        actor: 'local',
        subject: spiffeId,
        outcome: 'ok',
        detail: `serial ${issued.serial}, not after ${issued.notAfter.toISOString()} (warden ca admin issue); ${replaced === undefined ? 'no admin.crt before (lost)' : `admin.crt held ${replaced}`}`,
      });
    });
    // A run killed while writing leaves an unused ledger row (valid until it expires); a second run mends the files.
    let written: { keyPath: string; certPath: string };
    try {
      written = writeAdminPair(config.dir, keyPem, issued.pem);
    } catch (err) {
      if (!(err instanceof AdminFileWriteError)) throw err;
      throw new AdminIssueWriteError(err, withdraw(store, issued.serial, err.file));
    }
    const { keyPath, certPath } = written;
    const stillValid = store
      .listCertificates({ spiffeId, status: 'valid', now })
      .filter((row) => row.kind === 'admin' && row.serial !== issued.serial)
      .map((row) => row.serial);
    return { spiffeId, serial: issued.serial, notAfter: issued.notAfter, certPath, keyPath, stillValid, replaced };
  } finally {
    store.close();
  }
}

/**
 * Revokes (superseded) the certificate whose files could not be written, in the ledger as the API's
 * revocations are, with an audit row: a running CA refuses it at once (client-auth.ts reads the
 * ledger) and lists it in the next CRL it signs. What became of it, for the error.
 */
function withdraw(store: CaStore, serial: string, file: string): string {
  try {
    const now = Date.now();
    store.transaction(() => {
      store.insertRevocation({ serial, reason: 'superseded', revoked_at: now });
      store.audit({
        action: 'revoke',
        actor: 'local',
        subject: serial,
        outcome: 'ok',
        detail: `superseded: ${serial} (warden ca admin issue: ${file} could not be written)`,
      });
    });
    return `the new certificate ${serial} is revoked (superseded)`;
  } catch (err) {
    return `the new certificate ${serial} could not be revoked (${(err as Error).message}) and is valid with no key: revoke it (warden ca revoke --serial ${serial})`;
  }
}

/** The files could not be written: one line naming the file, what was undone and the remedy. */
export class AdminIssueWriteError extends Error {
  constructor(failure: AdminFileWriteError, withdrawn: string) {
    super(
      `${failure.message}: ${withdrawn}; ${failure.restored}; make ${failure.file} a file that can be replaced (not a directory), in a writable directory, and run warden ca admin issue again`,
      { cause: failure },
    );
    this.name = 'AdminIssueWriteError';
  }
}
