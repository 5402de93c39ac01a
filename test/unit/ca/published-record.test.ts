/**
 * The record of what the CA published (DIR/crl-published.json) against its database: which database
 * it speaks for (by id), when the database is older, and a record that is not one.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  olderThanPublished,
  PUBLISHED_RECORD,
  readPublishedRecord,
  recordOf,
  writePublishedRecord,
  type DatabaseMark,
} from '../../../src/ca/published-record.js';
import { createCaDatabase, openCaStore } from '../../../src/ca/store.js';

const published = recordOf({ databaseId: 'aa', crlNumber: 1_000, revocations: 5, lastRevocationRowid: 7 });
const mark = (change: Partial<DatabaseMark> = {}): DatabaseMark => ({
  databaseId: 'aa',
  crlNumber: 1_000,
  revocations: 5,
  lastRevocationRowid: 7,
  ...change,
});

t.test('older: a CRL number or a last revocation below the record’s, of the same database or of one without an id', async (t) => {
  t.equal(olderThanPublished(undefined, mark({ crlNumber: 1 })), undefined, 'no record: nothing to compare');
  t.equal(olderThanPublished(published, mark()), undefined, 'as published');
  t.equal(olderThanPublished(published, mark({ crlNumber: 1_001, lastRevocationRowid: 9, revocations: 7 })), undefined, 'ahead');
  t.match(
    olderThanPublished(published, mark({ crlNumber: 999 })),
    /^CRL number 1000 was published on \S+ with 5 revocations; the database's last is 999, with 5$/,
  );
  t.ok(olderThanPublished(published, mark({ lastRevocationRowid: 6, revocations: 4 })), 'a revocation missing, the number as published');
  t.equal(
    olderThanPublished(published, mark({ databaseId: 'bb', crlNumber: 0 })),
    undefined,
    'another database: not judged by this record',
  );
  t.ok(olderThanPublished(published, mark({ databaseId: undefined, crlNumber: 0 })), 'a copy from before ids: judged');
});

t.test('written whole, 0600; a record that does not parse is refused with its path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ca-record-'));
  t.equal(readPublishedRecord(dir), undefined, 'none yet');
  writePublishedRecord(dir, published);
  t.same(readPublishedRecord(dir), published);
  t.equal(statSync(join(dir, PUBLISHED_RECORD)).mode & 0o777, 0o600);
  writePublishedRecord(dir, { ...published, crl_number: 2_000 });
  t.equal(readPublishedRecord(dir)?.crl_number, 2_000, 'rewritten');
  writeFileSync(join(dir, PUBLISHED_RECORD), readFileSync(join(dir, PUBLISHED_RECORD), 'utf8').slice(0, 20));
  t.throws(() => readPublishedRecord(dir), { message: /crl-published\.json is not the record warden ca serve writes/ });
});

t.test('a database gets its id when made; a copy keeps it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ca-record-'));
  createCaDatabase(join(dir, 'ca.db'), 'example.test');
  const store = openCaStore(join(dir, 'ca.db'));
  const id = store.databaseId();
  t.match(id, /^[0-9a-f]{32}$/);
  t.equal(store.stampDatabaseId(), id, 'stamped once');
  store.close();
  writeFileSync(join(dir, 'copy.db'), readFileSync(join(dir, 'ca.db')));
  const copy = openCaStore(join(dir, 'copy.db'));
  t.equal(copy.databaseId(), id, 'a copy (a backup) is the same database');
  copy.close();
  createCaDatabase(join(dir, 'other.db'), 'example.test');
  const other = openCaStore(join(dir, 'other.db'));
  t.not(other.databaseId(), id, 'another database, another id');
  other.close();
});
