/**
 * The CA's database is the CA's memory of revocations, and its own: `warden ca init` makes it, and
 * `warden ca serve` refuses to start without it (a missing database became a new, empty one without
 * a word: revocations lost, CRLs numbered from 1, which sidecars refused) unless told to make one
 * (`--create-database`); it is of the CA's trust domain (stamped in it; a CA of another trust
 * domain whose database.path named it started silently and signed that domain's IDs under its own
 * keys), and an enrollment only ever certifies an ID of the CA's trust domain. A database that fails
 * SQLite's integrity check is refused too (a revocations index that had lost an entry let the
 * revoked certificate renew).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { CA_PATHS } from '../../src/ca/api.js';
import { initCa } from '../../src/ca/init.js';
import { CA_FILES } from '../../src/ca/layout.js';
import { startCaServer } from '../../src/ca/server.js';
import { hashToken } from '../../src/ca/tokens.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { crlOrderProblem } from '../../src/mesh/crl-check.js';
import { readCrl, type CrlView } from '../../src/net/crl-reader.js';
import { Agent, request } from 'undici';
import { freePort, makeCsr, postToCa, repoRoot, serveCaProcessIn } from '../support/ca-harness.js';

const EXAMPLE = 'example.test';
const OTHER = 'other.test';
const silent = createLogger({ level: 'silent' });

/** A CA directory made by `warden ca init` (in-process), its ca.yaml moved to a free port. */
async function caDir(trustDomain: string, base = mkdtempSync(join(tmpdir(), 'warden-ca-database-'))): Promise<string> {
  const dir = join(base, trustDomain);
  await initCa({ trustDomain, dir });
  const yaml = join(dir, CA_FILES.config);
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('port: 8444', `port: ${await freePort()}`));
  return dir;
}

/** The CA of `dir` started in-process (default database.path: DIR/ca.db unless given). */
function startIn(dir: string, trustDomain: string, database?: string) {
  return startCaServer({
    config: resolveCaConfig({
      trust_domain: trustDomain,
      dir,
      listen: { host: '127.0.0.1', port: 0 },
      ...(database === undefined ? {} : { database: { path: database } }),
      log: { level: 'silent' },
    }),
    logger: silent,
  });
}

/** `warden ca serve -c FILE ARGS…` as a process that is expected to refuse to start (killed after 10 s if it does start). */
function serveRefused(config: string, ...args: string[]) {
  const run = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'ca', 'serve', '-c', config, ...args], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: run.status, stderr: run.stderr, stdout: run.stdout };
}

/** GET /v1/crl of the CA at `url` (trusting `rootPem`), read as a sidecar reads it. */
async function fetchCrl(url: string, rootPem: string): Promise<CrlView> {
  const dispatcher = new Agent({ connect: { ca: rootPem } });
  try {
    const res = await request(`${url}${CA_PATHS.crl}`, { dispatcher });
    return readCrl(Buffer.from(await res.body.arrayBuffer()));
  } finally {
    await dispatcher.close();
  }
}

t.test('warden ca init makes the database: mode 0600, stamped with the trust domain', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-database-')), 'ca');
  const run = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'ca', 'init', '--trust-domain', EXAMPLE, '--dir', dir], {
    encoding: 'utf8',
  });
  t.equal(run.status, 0, run.stderr);
  const file = join(dir, CA_FILES.database);
  t.ok(existsSync(file), 'ca.db is there (before: made by the first ca serve, so a lost one could not be told from a first start)');
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by its owner only');
  t.match(run.stdout, `database:      ${file}`);
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.prepare(`SELECT value FROM ca_meta WHERE key = 'trust_domain'`).pluck().get(), EXAMPLE, 'stamped');
});

t.test('a lost database: ca serve refuses to start; --create-database makes a new one, once; its CRLs pass the old ones', async (t) => {
  const dir = await caDir(EXAMPLE);
  const yaml = join(dir, CA_FILES.config);
  // The CA at work: a certificate revoked, the CRL sidecars hold.
  const first = await startIn(dir, EXAMPLE);
  const { csrPem } = await makeCsr({ spiffeId: `spiffe://${EXAMPLE}/ns/shop/sa/orders` });
  const enrolled = await postToCa<{ serial: string }>(
    `${first.url}${CA_PATHS.enroll}`,
    { token: first.createToken({ spiffe_id: `spiffe://${EXAMPLE}/ns/shop/sa/orders` }).token, csr: csrPem },
    { ca: first.rootPem },
  );
  await first.revoke({ serial: enrolled.body.serial, reason: 'keyCompromise' });
  const inForce = await fetchCrl(first.url, first.rootPem);
  t.same([...inForce.serials], [enrolled.body.serial], 'the leaked certificate is on the CRL');
  await first.close();

  // The volume is not mounted (or a relative database.path resolves elsewhere): the files are gone.
  const aside = join(dir, '..', 'aside');
  mkdirSync(aside);
  for (const f of readdirSync(dir).filter((f) => f.startsWith(CA_FILES.database))) renameSync(join(dir, f), join(aside, f));

  const refused = serveRefused(yaml);
  t.equal(refused.status, 1, 'refused (before: started on a new, empty database, logging only "listening")');
  t.match(
    refused.stderr,
    /^warden ca serve: \S+\/ca\.db: the CA database is missing; starting on a new, empty one would lose every revocation and spent token it held .*restore it from a backup .*warden ca serve --create-database/,
  );
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
  t.notOk(existsSync(join(dir, CA_FILES.database)), 'and no database was made');

  // The explicit opt-in (a CA directory from an older init that never served): a new database, and it starts.
  const created = await serveCaProcessIn(t, dir, ['--create-database']);
  t.match(created.output(), /created a new, empty CA database: it knows no certificate, token or revocation from before/);
  t.match(created.output(), /warden CA listening/);
  const url = `https://127.0.0.1:${created.port}`;
  const fresh = await fetchCrl(url, first.rootPem);
  t.same([...fresh.serials], [], 'a new database knows no revocation (what the refusal above protects)');
  t.ok(
    (fresh.number as bigint) > (inForce.number as bigint),
    `its first CRL (number ${fresh.number}) is numbered above the one sidecars hold (${inForce.number}); before: 1`,
  );
  t.equal(crlOrderProblem(fresh, inForce), undefined, 'a sidecar applies it: revocations made from now on reach it');
  created.child.kill('SIGTERM');
  await new Promise((resolve) => created.child.once('exit', resolve));

  const twice = serveRefused(yaml, '--create-database');
  t.equal(twice.status, 1, 'the flag makes a database only where there is none: left in place, the next start is refused');
  t.match(twice.stderr, /ca\.db: a CA database is already there, and is not replaced: start without --create-database/);
});

t.test('a database of another trust domain is refused at start; one of the same trust domain (root rotation) is shared', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'warden-ca-database-'));
  const example = await caDir(EXAMPLE, base);
  const other = await caDir(OTHER, base);
  // example.test's CA runs once: its database is stamped (and records its admin certificate).
  await (await startIn(example, EXAMPLE)).close();
  const exampleDb = join(example, CA_FILES.database);

  const yaml = join(other, CA_FILES.config);
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('path: ca.db', `path: ${exampleDb}`));
  const run = serveRefused(yaml);
  t.equal(run.status, 1, 'other.test’s CA does not start on example.test’s database (before: it started, and issued example.test IDs)');
  t.match(
    run.stderr,
    /^warden ca serve: \S+\/example\.test\/ca\.db: this CA database belongs to trust domain "example\.test", not this CA's "other\.test" \(trust_domain\): database\.path names another CA's database/,
  );
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.notMatch(run.stdout, /listening/);

  // Root rotation: a second directory of example.test on the same database.
  const rotated = await caDir(EXAMPLE, mkdtempSync(join(tmpdir(), 'warden-ca-database-')));
  const ca = await startIn(rotated, EXAMPLE, exampleDb);
  t.equal(ca.trustDomain, EXAMPLE, 'a second CA directory of the same trust domain starts on the shared database');
  await ca.close();
});

t.test('an enrollment with a token whose ID is outside the CA’s trust domain is refused (403, rule ca.token.trust_domain)', async (t) => {
  const dir = await caDir(OTHER);
  const ca = await startIn(dir, OTHER);
  t.teardown(() => ca.close());
  // A token row of example.test in other.test's database: what a database of another CA (or an edited one) holds.
  const token = 'x'.repeat(43);
  const foreignId = `spiffe://${EXAMPLE}/ns/shop/sa/orders`;
  const db = new Database(join(dir, CA_FILES.database));
  db.prepare(
    `INSERT INTO tokens (id, sha256, spiffe_id, dns_names, created_at, expires_at, used_at, revoked_at) VALUES (?, ?, ?, '[]', ?, ?, NULL, NULL)`,
  ).run('00112233aabbccdd', hashToken(token), foreignId, Date.now(), Date.now() + 600_000);
  db.close();

  const { csrPem } = await makeCsr({ spiffeId: foreignId });
  const answer = await postToCa<{ code: string; detail: string }>(
    `${ca.url}${CA_PATHS.enroll}`,
    { token, csr: csrPem },
    { ca: ca.rootPem },
  );
  t.equal(answer.status, 403, `refused (before: 201, a certificate for ${foreignId} signed by other.test’s intermediate)`);
  t.equal(answer.body.code, 'ERR_CA_IDENTITY_MISMATCH');
  t.match(answer.body.detail, /outside this CA's trust domain other\.test/);
  t.same(ca.list({ spiffe_id: foreignId }), [], 'nothing issued');
});

/**
 * Takes `serial` out of the revocations index by hand, leaving its row in the table: one byte of the
 * index entry changed in the file (the CA closed, so nothing waits in the WAL). A few revocations
 * fit on the index's root page, which is then a leaf holding every entry.
 */
function dropFromRevocationsIndex(file: string, serial: string): void {
  const db = new Database(file, { readonly: true });
  const root = db.prepare(`SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_revocations_1'`).pluck().get() as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const bytes = readFileSync(file);
  const page = bytes.subarray((root - 1) * pageSize, root * pageSize);
  const at = page.indexOf(Buffer.from(serial));
  if (at < 0) throw new Error(`${serial} is not on the index's root page`);
  // The last hex digit, changed: the entry now names a serial the CA never issued.
  page[at + serial.length - 1] = serial.endsWith('0') ? 0x31 : 0x30;
  writeFileSync(file, bytes);
}

t.test('a database whose revocations index lost an entry (integrity_check fails, quick_check passes): ca serve refuses', async (t) => {
  const dir = await caDir(EXAMPLE);
  const file = join(dir, CA_FILES.database);
  const ca = await startIn(dir, EXAMPLE);
  const { csrPem } = await makeCsr({ spiffeId: `spiffe://${EXAMPLE}/ns/shop/sa/orders` });
  const enrolled = await postToCa<{ serial: string }>(
    `${ca.url}${CA_PATHS.enroll}`,
    { token: ca.createToken({ spiffe_id: `spiffe://${EXAMPLE}/ns/shop/sa/orders` }).token, csr: csrPem },
    { ca: ca.rootPem },
  );
  const { serial } = enrolled.body;
  await ca.revoke({ serial, reason: 'keyCompromise' });
  await ca.close();
  const backup = join(dir, '..', 'ca-backup.db');
  writeFileSync(backup, readFileSync(file));

  dropFromRevocationsIndex(file, serial);
  const db = new Database(file, { readonly: true });
  t.same(db.pragma('quick_check'), [{ quick_check: 'ok' }], 'quick_check passes the damage');
  t.same(
    db.pragma('integrity_check'),
    [{ integrity_check: 'row 1 missing from index sqlite_autoindex_revocations_1' }],
    'integrity_check finds it',
  );
  const lookup = `SELECT r.revoked_at FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = ?`;
  t.equal(
    db.prepare(lookup).pluck().get(serial),
    null,
    'the CA’s lookup (through the index) finds no revocation: before, the certificate renewed',
  );
  t.ok(db.prepare(`SELECT revoked_at FROM revocations NOT INDEXED WHERE serial = ?`).pluck().get(serial), 'though the row is still there');
  db.close();

  const run = serveRefused(join(dir, CA_FILES.config));
  t.equal(run.status, 1, 'refused (before: it started, and the revoked certificate renewed)');
  t.match(
    run.stderr,
    /^warden ca serve: ERR_CA_DATABASE_DAMAGED: \S+\/ca\.db: the CA database is damaged: integrity_check says "row 1 missing from index sqlite_autoindex_revocations_1"; .*restore the database from a backup .*sqlite3 \S+\/ca\.db "\.recover"/,
  );
  t.equal(run.stderr.trim().split('\n').length, 1, 'one line');
  t.notMatch(run.stdout, /listening/);
  await t.rejects(startIn(dir, EXAMPLE), { code: 'ERR_CA_DATABASE_DAMAGED' }, 'in-process too');

  // Restored from the backup: it starts, and the certificate is revoked.
  writeFileSync(file, readFileSync(backup));
  const restored = await startIn(dir, EXAMPLE);
  t.equal(restored.list({ status: 'revoked' })[0]?.serial, serial, 'restored: the revocation is back');
  await restored.close();
});

t.test(
  'a database restored from an older backup: ca serve refuses it; --accept-restored-database, once, with a security event',
  async (t) => {
    const dir = await caDir(EXAMPLE);
    const file = join(dir, CA_FILES.database);
    const yaml = join(dir, CA_FILES.config);
    const enroll = async (ca: Awaited<ReturnType<typeof startIn>>, name: string) => {
      const spiffeId = `spiffe://${EXAMPLE}/ns/shop/sa/${name}`;
      const { csrPem } = await makeCsr({ spiffeId });
      const answer = await postToCa<{ serial: string }>(
        `${ca.url}${CA_PATHS.enroll}`,
        { token: ca.createToken({ spiffe_id: spiffeId }).token, csr: csrPem },
        { ca: ca.rootPem },
      );
      return answer.body.serial;
    };
    // The CA at work: one certificate revoked, then the backup, then another revoked.
    let ca = await startIn(dir, EXAMPLE);
    const [first, second] = [await enroll(ca, 'orders'), await enroll(ca, 'payments')];
    await ca.revoke({ serial: first, reason: 'keyCompromise' });
    await ca.close();
    const backup = readFileSync(file);
    ca = await startIn(dir, EXAMPLE);
    await ca.revoke({ serial: second, reason: 'keyCompromise' });
    const inForce = await fetchCrl(ca.url, ca.rootPem);
    t.same([...inForce.serials].sort(), [first, second].sort(), 'both on the CRL sidecars hold');
    await ca.close();
    t.ok(existsSync(join(dir, 'crl-published.json')), 'the CA keeps a record of what it published, beside its keys');

    // Restored from the backup: the second revocation is not in it.
    writeFileSync(file, backup);
    const refused = serveRefused(yaml);
    t.equal(refused.status, 1, 'refused (before: it started, and its next CRL un-revoked the second certificate at every sidecar)');
    t.match(
      refused.stderr,
      /^warden ca serve: ERR_CA_DATABASE_RESTORED: \S+\/ca\.db: the CA database is older than what this CA published \(\S+\/crl-published\.json: CRL number \d+ was published on \S+ with 2 revocations; the database's last is \d+, with 1\): restored from an older backup\? .*start once with --accept-restored-database, then revoke again what was revoked since/,
    );
    t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
    t.notMatch(refused.stdout, /listening/);

    // What the refusal prevents: started anyway, its first CRL replaces the one in force without the second revocation.
    const accepted = await serveCaProcessIn(t, dir, ['--accept-restored-database']);
    t.match(accepted.output(), /warden CA listening/, 'accepted with the flag');
    t.match(
      accepted.output(),
      /"event":"warden\.ca\.database_restored","warden\.code":"ERR_CA_DATABASE_RESTORED","warden\.detail":"CRL number \d+ was published/,
      'a security event says so',
    );
    const restored = await fetchCrl(`https://127.0.0.1:${accepted.port}`, readFileSync(join(dir, CA_FILES.bundle), 'utf8'));
    t.same([...restored.serials], [first], 'the second revocation is gone from its CRL');
    t.equal(crlOrderProblem(restored, inForce), undefined, 'and sidecars would apply it: hence the refusal');
    accepted.child.kill('SIGTERM');
    await new Promise((resolve) => accepted.child.once('exit', resolve));

    const again = serveRefused(yaml, '--accept-restored-database');
    t.equal(again.status, 1, 'the flag accepts once: left in place, the next start is refused');
    t.match(
      again.stderr,
      /ca\.db: the database is not older than what this CA published .*nothing to accept: start without --accept-restored-database/,
    );
    const after = await startIn(dir, EXAMPLE);
    t.ok(after, 'and without it the CA starts');
    await after.close();
  },
);

t.test('warden ca serve prunes the ledger: certificates and tokens expired over database.keep_expired ago leave it at start', async (t) => {
  const dir = await caDir(EXAMPLE);
  const day = 86_400_000;
  const id = `spiffe://${EXAMPLE}/ns/shop/sa/orders`;
  const db = new Database(join(dir, CA_FILES.database));
  const insert = db.prepare(
    `INSERT INTO certificates (serial, spiffe_id, kind, not_before, not_after, pem, issued_at, key_id) VALUES (?, ?, 'enroll', ?, ?, '', ?, ?)`,
  );
  const insertToken = db.prepare(
    `INSERT INTO tokens (id, sha256, spiffe_id, dns_names, created_at, expires_at) VALUES (?, ?, ?, '[]', ?, ?)`,
  );
  const at = (daysAgo: number) => Date.now() - daysAgo * day;
  insert.run('0a01', id, at(41), at(40), at(41), 'k1');
  insert.run('0a02', id, at(3), at(2), at(3), 'k2');
  insert.run('0a03', id, at(41), at(40), at(41), 'k3');
  db.prepare(`INSERT INTO revocations (serial, reason, revoked_at) VALUES ('0a03', 'keyCompromise', ?)`).run(at(40.5));
  insertToken.run('00000000000000aa', 'a'.repeat(64), id, at(40), at(39));
  insertToken.run('00000000000000bb', 'b'.repeat(64), id, at(2), at(1));
  db.close();
  t.match(readFileSync(join(dir, CA_FILES.config), 'utf8'), /keep_expired: 720h/, 'ca init writes the key');

  const ca = await serveCaProcessIn(t, dir);
  for (let i = 0; i < 100 && !ca.output().includes('expired ledger rows pruned'); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(
    ca.output(),
    /"certificates":1,"tokens":1,"expired_before":"[^"]+","msg":"expired ledger rows pruned \(database\.keep_expired\)"/,
  );
  const after = new Database(join(dir, CA_FILES.database), { readonly: true });
  t.teardown(() => after.close());
  const serials = after.prepare(`SELECT serial FROM certificates WHERE spiffe_id = ? ORDER BY serial`).pluck().all(id);
  t.same(serials, ['0a02', '0a03'], 'the one expired 40 days ago went; the recent and the revoked ones stayed');
  t.same(after.prepare(`SELECT id FROM tokens ORDER BY id`).pluck().all(), ['00000000000000bb']);
  t.match(after.prepare(`SELECT action, actor, detail FROM audit WHERE action = 'database.prune'`).get(), {
    action: 'database.prune',
    actor: 'warden-ca',
    detail: /^1 certificates and 1 bootstrap tokens expired before /,
  });
  // The CA's own rows (its admin and server certificates, unexpired) are untouched.
  t.ok((after.prepare(`SELECT count(*) FROM certificates WHERE kind IN ('admin', 'server')`).pluck().get() as number) >= 2);
});
