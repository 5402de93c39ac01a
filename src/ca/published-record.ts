/**
 * What the CA last published, kept outside its database: DIR/crl-published.json, rewritten (atomically,
 * synced) each time a CRL is signed. A database restored from an older backup silently un-revoked
 * everything revoked after that backup: CRL numbers follow the clock, so sidecars took the restored
 * CA's next CRL at once, without the later entries. At start the database is compared with this
 * record: a CRL number or a last revocation below the record's means an older copy of the same
 * database (same `database_id`), and the CA does not start unless told to accept it.
 *
 * The record names the database by its id, not its path: a copy restored anywhere is recognised,
 * and another database (another test's, a new one made with --create-database) is not judged by
 * this one's record. A database made before ids were stamped has none: the record applies to it.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../config/atomic-file.js';
import { join } from 'node:path';
import { WardenError } from '../errors.js';
import { refuseForeignFile } from './file-ownership.js';
import type { CaStore } from './store.js';
import type { Logger } from '../telemetry/logger.js';

export const PUBLISHED_RECORD = 'crl-published.json';

export interface PublishedRecord {
  database_id: string;
  crl_number: number;
  /** Revocations in the database when that CRL was signed, and the highest rowid among them. */
  revocations: number;
  last_revocation_rowid: number;
  published_at: string;
}

/** The database as it stands, in the record's terms. */
export interface DatabaseMark {
  databaseId: string | undefined;
  crlNumber: number;
  revocations: number;
  lastRevocationRowid: number;
}

/** The record in `dir`, or undefined when there is none. Throws (naming the file) when it is unreadable or not ours. */
export function readPublishedRecord(dir: string): PublishedRecord | undefined {
  const path = join(dir, PUBLISHED_RECORD);
  if (!refuseForeignFile(path, 'record of published CRLs')) return undefined;
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as PublishedRecord;
    const numbers = [record.crl_number, record.revocations, record.last_revocation_rowid];
    if (typeof record.database_id !== 'string' || !numbers.every((n) => Number.isSafeInteger(n) && n >= 0)) throw new Error('fields');
    return record;
  } catch (err) {
    throw new Error(
      `${path} is not the record warden ca serve writes (it is written whole or not at all): restore it from a backup, or remove it if the database is the latest copy (the next CRL writes it again)`,
      { cause: err },
    );
  }
}

/** Writes the record whole or not at all (config/atomic-file.ts). */
export function writePublishedRecord(dir: string, record: PublishedRecord): void {
  writeFileAtomic(join(dir, PUBLISHED_RECORD), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** The record of a CRL just signed, or of the database as accepted. */
export function recordOf(mark: DatabaseMark & { databaseId: string }): PublishedRecord {
  return {
    database_id: mark.databaseId,
    crl_number: mark.crlNumber,
    revocations: mark.revocations,
    last_revocation_rowid: mark.lastRevocationRowid,
    published_at: new Date().toISOString(),
  };
}

function markOf(store: CaStore): DatabaseMark {
  const { count, lastRowid } = store.revocationMark();
  return { databaseId: store.databaseId(), crlNumber: store.lastCrlNumber(), revocations: count, lastRevocationRowid: lastRowid };
}

/**
 * At start, before the CA serves: refuses a database older than the record of `dir`, unless
 * `accept` (--accept-restored-database), which is refused in turn when there is nothing to accept:
 * left in a deployment, it would let a database restored later through with only a security event.
 * An accepted database becomes the record at once (`accepted` is told how it was older). Stamps the
 * database's id if it has none; returns it, for the records written from now on.
 */
export function admitDatabase(store: CaStore, dir: string, databasePath: string, accept: boolean, accepted: (how: string) => void): string {
  const mark = markOf(store);
  const how = olderThanPublished(readPublishedRecord(dir), mark);
  if (how === undefined && accept) {
    throw new Error(
      `${databasePath}: the database is not older than what this CA published (${join(dir, PUBLISHED_RECORD)}), nothing to accept: start without --accept-restored-database (left in place, it would let a database restored later through)`,
    );
  }
  if (how !== undefined && !accept) throw restoredDatabaseError(databasePath, dir, how);
  const databaseId = mark.databaseId ?? store.stampDatabaseId();
  if (how !== undefined) {
    accepted(how);
    writePublishedRecord(dir, recordOf({ ...mark, databaseId }));
  }
  return databaseId;
}

/**
 * How the database is older than the record (one phrase), or undefined when it is not, or when the
 * record is about another database.
 */
export function olderThanPublished(record: PublishedRecord | undefined, mark: DatabaseMark): string | undefined {
  if (record === undefined) return undefined;
  if (mark.databaseId !== undefined && mark.databaseId !== record.database_id) return undefined;
  if (mark.crlNumber >= record.crl_number && mark.lastRevocationRowid >= record.last_revocation_rowid) return undefined;
  return `CRL number ${record.crl_number} was published on ${record.published_at} with ${record.revocations} revocations; the database's last is ${mark.crlNumber}, with ${mark.revocations}`;
}

/** The refusal at start: one line, the files, what it means, what to do. */
export function restoredDatabaseError(databasePath: string, dir: string, how: string): WardenError {
  return new WardenError('ERR_CA_DATABASE_RESTORED', {
    detail: `${databasePath}: the CA database is older than what this CA published (${join(dir, PUBLISHED_RECORD)}: ${how}): restored from an older backup? Its next CRL would un-revoke, at every sidecar, what was revoked since; and tokens spent or revoked since would enroll again until they expire. Restore the latest copy; or start once with --accept-restored-database, then revoke again what was revoked since (docs/ca.md#backup-and-restore)`,
  });
}

/**
 * The CRL publisher's onPublished: writes the record for each CRL signed. A failure is logged (once
 * until a write succeeds) and never thrown: the CRL stands, only the next start's check is weakened.
 */
export function publishedRecordKeeper(
  dir: string,
  databaseId: string,
  logger: Logger,
): (published: { crlNumber: number; revocations: number; lastRevocationRowid: number }) => void {
  let failing = false;
  return (published) => {
    try {
      writePublishedRecord(dir, recordOf({ databaseId, ...published }));
      failing = false;
    } catch (err) {
      if (!failing) {
        logger.error(
          { err, path: join(dir, PUBLISHED_RECORD) },
          'the record of published CRLs could not be written: a database restored from an older backup would not be noticed at the next start',
        );
      }
      failing = true;
    }
  };
}
