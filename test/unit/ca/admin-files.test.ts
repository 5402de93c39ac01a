/**
 * admin.key and admin.crt are written as a pair: when admin.crt cannot be written after admin.key
 * was, admin.key is put back as it was (or removed when there was none), never left holding the new
 * key beside the old certificate.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { AdminFileWriteError, writeAdminPair } from '../../../src/ca/admin-files.js';

/** A directory whose admin.crt is a non-empty directory: renaming the new certificate over it fails (EISDIR). */
function dirWithUnwritableCert(): string {
  const dir = mkdtempSync(join(tmpdir(), 'warden-admin-files-'));
  mkdirSync(join(dir, 'admin.crt', 'x'), { recursive: true });
  return dir;
}

t.test('admin.crt cannot be written: admin.key is put back as it was', async (t) => {
  const dir = dirWithUnwritableCert();
  writeFileSync(join(dir, 'admin.key'), 'OLD KEY\n', { mode: 0o600 });
  const thrown = t.throws(() => writeAdminPair(dir, 'NEW KEY\n', 'NEW CERT\n')) as AdminFileWriteError;
  t.type(thrown, AdminFileWriteError);
  t.equal(thrown.file, join(dir, 'admin.crt'), 'names admin.crt');
  t.equal(thrown.reason, 'EISDIR on rename');
  t.match(thrown.restored, 'put back as it was');
  t.equal(readFileSync(join(dir, 'admin.key'), 'utf8'), 'OLD KEY\n', 'admin.key holds the old key, the pair of the old admin.crt');
});

t.test('admin.crt cannot be written and there was no admin.key (lost): the new one is removed', async (t) => {
  const dir = dirWithUnwritableCert();
  const thrown = t.throws(() => writeAdminPair(dir, 'NEW KEY\n', 'NEW CERT\n')) as AdminFileWriteError;
  t.match(thrown.restored, 'removed');
  t.notOk(existsSync(join(dir, 'admin.key')), 'no key of a certificate that is not written');
});

t.test('both written: the new pair', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-admin-files-'));
  writeFileSync(join(dir, 'admin.key'), 'OLD KEY\n');
  writeAdminPair(dir, 'NEW KEY\n', 'NEW CERT\n');
  t.equal(readFileSync(join(dir, 'admin.key'), 'utf8'), 'NEW KEY\n');
  t.equal(readFileSync(join(dir, 'admin.crt'), 'utf8'), 'NEW CERT\n');
});
