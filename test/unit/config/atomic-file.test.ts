import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicAsync, WriteNotAllowedError } from '../../../src/config/atomic-file.js';

t.test('writeFileAtomicAsync: written whole with its mode, replacing the old file by rename', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-atomic-'));
  const file = join(dir, 'state.pem');
  writeFileSync(file, 'old');
  await writeFileAtomicAsync(file, 'new contents', 0o600);
  t.equal(readFileSync(file, 'utf8'), 'new contents');
  t.same(readdirSync(dir), ['state.pem'], 'no temporary file left');
});

t.test('writeFileAtomicAsync: a lock lost before the rename puts nothing in place (mayWrite asked again)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-atomic-'));
  const file = join(dir, 'state.pem');
  writeFileSync(file, 'the other process wrote this');
  let asked = 0;
  // True when the write starts, false by the time it would rename: the lock was lost meanwhile.
  await t.rejects(
    writeFileAtomicAsync(file, 'ours', 0o600, () => ++asked === 1),
    WriteNotAllowedError,
  );
  t.equal(asked, 2, 'asked at the start and before the rename');
  t.equal(readFileSync(file, 'utf8'), 'the other process wrote this', 'the file in place is not touched');
  t.same(readdirSync(dir), ['state.pem'], 'and the temporary file is removed');
  await t.rejects(
    writeFileAtomicAsync(join(dir, 'never.pem'), 'x', 0o600, () => false),
    WriteNotAllowedError,
  );
  t.notOk(existsSync(join(dir, 'never.pem')), 'not allowed at the start: nothing created');
});
