/**
 * The CA's files are its user's: `warden ca init` refuses a directory someone else could write (made
 * beforehand, mode 0777 or another user's), and `warden ca serve` refuses a database that is a
 * symbolic link, or that another user owns or can write (the file, its -wal/-shm, its directory).
 * Before, a local user who pre-created the directory, or symlinked ca.db to a file of theirs, could
 * add token rows and enroll any identity. Group bits are allowed for a group of the process's own
 * (Kubernetes' fsGroup makes volumes group-writable); root's files are trusted.
 * Files of "another user" are made by chown to an unused uid: those tests need root and are skipped
 * otherwise.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { initCa } from '../../src/ca/init.js';
import { CA_FILES } from '../../src/ca/layout.js';
import { openCaStore } from '../../src/ca/store.js';
import { freePort, repoRoot } from '../support/ca-harness.js';

const TD = 'example.test';
/** A uid and gid no account of this machine has (chown takes numbers). */
const STRANGER = 4242;
const asRoot = process.getuid?.() === 0;
const needsRoot = asRoot ? false : 'needs root: another user’s files are made with chown, which only root may do';

const warden = (...args: string[]) =>
  spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 10_000 });

t.test('ca init refuses a directory every user can write, and writes nothing into it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ca-own-'));
  chmodSync(dir, 0o777);
  const run = warden('ca', 'init', '--trust-domain', TD, '--dir', dir);
  t.equal(run.status, 1, 'refused (before: a CA made in it, keys and all, and whoever made it could change them)');
  t.match(run.stderr, /^warden ca init: \S+: the CA directory is writable by every user \(mode 777\): chmod o-w it/);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.same(readdirSync(dir), [], 'no key written');

  chmodSync(dir, 0o700);
  t.equal(warden('ca', 'init', '--trust-domain', TD, '--dir', dir).status, 0, 'chmod o-w: then it works');
});

t.test('ca init refuses a directory of another user, or writable by a group not its own', { skip: needsRoot }, async (t) => {
  const foreign = mkdtempSync(join(tmpdir(), 'warden-ca-own-'));
  chownSync(foreign, STRANGER, STRANGER);
  await t.rejects(initCa({ trustDomain: TD, dir: foreign }), {
    message: new RegExp(`the CA directory is owned by uid ${STRANGER}, not by this process's user \\(uid 0\\) or root`),
  });
  t.same(readdirSync(foreign), [], 'nothing written');

  const group = mkdtempSync(join(tmpdir(), 'warden-ca-own-'));
  chownSync(group, 0, STRANGER);
  chmodSync(group, 0o770);
  await t.rejects(initCa({ trustDomain: TD, dir: group }), {
    message: new RegExp(`writable by group ${STRANGER}, not a group of this process`),
  });

  // Kubernetes' fsGroup: the volume group-writable (setgid) for a group of the process's own.
  const fsGroup = mkdtempSync(join(tmpdir(), 'warden-ca-own-'));
  chmodSync(fsGroup, 0o2770);
  t.ok(await initCa({ trustDomain: TD, dir: fsGroup }), 'group-writable by its own group: accepted');
});

t.test('ca serve refuses a database that is a symbolic link (to a file of another user)', { skip: needsRoot }, async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-own-')), 'ca');
  await initCa({ trustDomain: TD, dir });
  const yaml = join(dir, CA_FILES.config);
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('port: 8444', `port: ${await freePort()}`));
  // The attacker's copy of the database, theirs to add token rows to; ca.db points at it.
  const theirs = join(mkdtempSync(join(tmpdir(), 'warden-ca-theirs-')), 'ca.db');
  renameSync(join(dir, CA_FILES.database), theirs);
  chownSync(theirs, STRANGER, STRANGER);
  symlinkSync(theirs, join(dir, CA_FILES.database));

  const run = warden('ca', 'serve', '-c', yaml);
  t.equal(run.status, 1, 'refused (before: it followed the link and served from their file)');
  t.match(run.stderr, /^warden ca serve: \S+\/ca\.db: the CA database is a symbolic link, which the CA does not follow/);
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.notMatch(run.stdout, /listening/);
});

t.test('ca serve refuses a database file, -wal file or directory another user owns or can write', { skip: needsRoot }, async (t) => {
  const fresh = async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-own-')), 'ca');
    await initCa({ trustDomain: TD, dir });
    return { dir, db: join(dir, CA_FILES.database) };
  };
  const open = (db: string) => () => openCaStore(db, { trustDomain: TD }).close();

  const owned = await fresh();
  chownSync(owned.db, STRANGER, STRANGER);
  t.throws(
    open(owned.db),
    { message: new RegExp(`ca\\.db: the CA database is owned by uid ${STRANGER}.*chown it to uid 0`) },
    'another user’s file',
  );

  const world = await fresh();
  chmodSync(world.db, 0o666);
  t.throws(open(world.db), { message: /ca\.db: the CA database is writable by every user \(mode 666\)/ }, 'a file every user can write');

  const wal = await fresh();
  writeFileSync(`${wal.db}-wal`, '');
  chownSync(`${wal.db}-wal`, STRANGER, STRANGER);
  t.throws(open(wal.db), { message: /ca\.db-wal: the CA database's -wal file is owned by uid 4242/ }, 'a -wal file planted beside it');

  const directory = await fresh();
  chmodSync(directory.dir, 0o777);
  t.throws(
    open(directory.db),
    { message: /the directory of the CA database is writable by every user \(mode 777\)/ },
    'its directory writable by all',
  );

  const ok = await fresh();
  chmodSync(ok.dir, 0o2770);
  chmodSync(ok.db, 0o660);
  t.doesNotThrow(open(ok.db), 'group-writable for its own group (fsGroup): opens');
  t.ok(existsSync(ok.db));
});

t.test('a missing database directory (a volume not mounted) is a missing database, not a stat error', async (t) => {
  const gone = join(mkdtempSync(join(tmpdir(), 'warden-ca-own-')), 'not-mounted', 'ca.db');
  t.throws(() => openCaStore(gone, { trustDomain: TD }), { message: /not-mounted\/ca\.db: the CA database is missing/ });
  mkdirSync(join(gone, '..'));
  t.throws(() => openCaStore(gone, { trustDomain: TD }), { message: /the CA database is missing/ });
});
