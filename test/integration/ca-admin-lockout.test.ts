/**
 * The administrator certificate: revoking the last valid one locked the administrator out for good
 * (no command issued another, and `ca init` refuses a directory holding a CA). Now that revocation is
 * refused (409 ERR_CA_LAST_ADMIN), and `warden ca admin issue` makes a new one offline, which a
 * running CA accepts at once. Real `warden ca serve` and `warden ca admin issue` processes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { request, Agent } from 'undici';
import { initCa } from '../../src/ca/init.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { x509 } from '../../src/ca/pki.js';
import { makeCsr, postToCa, repoRoot, serveCaProcessIn, TRUST_DOMAIN } from '../support/ca-harness.js';

const ADMIN = `spiffe://${TRUST_DOMAIN}/warden/admin`;

type Problem = {
  code?: string;
  rule?: string;
  detail?: string;
  revoked?: string[];
  certificates?: { serial: string; kind: string; status: string }[];
};

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('the last valid admin certificate cannot be revoked; ca admin issue makes a new one the running CA accepts', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const { port, config } = await serveCaProcessIn(t, dir);
  const url = `https://127.0.0.1:${port}`;
  const bundle = readFileSync(join(dir, 'bundle.pem'), 'utf8');
  const adminFiles = () => ({
    ca: bundle,
    cert: readFileSync(join(dir, 'admin.crt'), 'utf8'),
    key: readFileSync(join(dir, 'admin.key'), 'utf8'),
  });
  const serialOf = (pem: string) => canonicalSerial(new x509.X509Certificate(pem).serialNumber);
  const first = adminFiles();
  const firstSerial = serialOf(first.cert);
  const revoke = (body: unknown, as = first) => postToCa<Problem>(`${url}/v1/admin/revocations`, body, as);

  for (const body of [{ serial: firstSerial }, { spiffe_id: ADMIN }, { serial: firstSerial, reason: 'keyCompromise' }]) {
    t.match(
      await revoke(body),
      { status: 409, body: { code: 'ERR_CA_LAST_ADMIN', detail: /warden ca admin issue/ } },
      `refused: ${JSON.stringify(body)}`,
    );
  }
  const listed = await postToCa<Problem>(`${url}/v1/admin/tokens`, { spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` }, first);
  t.equal(listed.status, 201, 'the administrator still works');

  const renewed = await postToCa<Problem>(`${url}/v1/renew`, { csr: (await makeCsr({ spiffeId: ADMIN })).csrPem }, first);
  t.match(renewed, { status: 401, body: { detail: 'an admin certificate cannot be renewed over the API' } }, '"an admin", not "a admin"');

  const issued = warden('ca', 'admin', 'issue', '-c', config);
  t.equal(issued.code, 0, `ca admin issue: exit 0 (${issued.stderr.trim()})`);
  t.match(issued.stdout, new RegExp(`still valid: ${firstSerial} \\(${firstSerial}: the admin.crt replaced\\)`));
  const second = adminFiles();
  const secondSerial = serialOf(second.cert);
  t.not(secondSerial, firstSerial, 'admin.crt replaced');
  t.not(second.key, first.key, 'with a new key');
  t.equal(statSync(join(dir, 'admin.key')).mode & 0o777, 0o600, 'admin.key is 0600');

  // The running CA accepts it at once (it is in the ledger), and it can retire the old one.
  t.match(await revoke({ serial: firstSerial, reason: 'keyCompromise' }, second), { status: 200, body: { revoked: [firstSerial] } });
  t.match(
    await revoke({ serial: secondSerial }, second),
    { status: 409, body: { code: 'ERR_CA_LAST_ADMIN' } },
    'now the new one is the last',
  );
  t.match(
    await postToCa<Problem>(`${url}/v1/admin/tokens`, { spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` }, first),
    { status: 403, body: { code: 'ERR_CA_CERT_REVOKED' } },
    'the old one is refused',
  );
  const list = warden('ca', 'list', '--id', ADMIN, '--json', '-c', config);
  t.equal(list.code, 0, `the CLI uses the new admin.crt (${list.stderr.trim()})`);
  const statuses = Object.fromEntries(
    (JSON.parse(list.stdout) as Problem).certificates!.filter((c) => c.kind === 'admin').map((c) => [c.serial, c.status]),
  );
  t.same(statuses, { [firstSerial]: 'revoked', [secondSerial]: 'valid' });
});

/** Runs warden without blocking the event loop: its pid at once, its result when it ends. */
function wardenAsync(...args: string[]) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args]);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { pid: child.pid!, result };
}

/** admin.crt and admin.key of a CA directory, and whether the key is the certificate's. */
function adminPair(dir: string) {
  const files = () => ({
    ca: readFileSync(join(dir, 'bundle.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'admin.crt'), 'utf8'),
    key: readFileSync(join(dir, 'admin.key'), 'utf8'),
  });
  const matches = () => {
    const { cert, key } = files();
    const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' });
    return spki(createPublicKey(key)).equals(spki(new X509Certificate(cert).publicKey));
  };
  return { files, matches };
}

const tokenAs = (port: number, as: { ca: string; cert: string; key: string }) =>
  postToCa<Problem>(`https://127.0.0.1:${port}/v1/admin/tokens`, { spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` }, as);

t.test('a lost admin.crt: ca admin issue makes a new pair without it, which a running or restarted CA accepts', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-lost-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const served = await serveCaProcessIn(t, dir);
  const pair = adminPair(dir);

  rmSync(join(dir, 'admin.crt'));
  rmSync(join(dir, 'admin.key'));
  const issued = warden('ca', 'admin', 'issue', '-c', served.config);
  t.equal(issued.code, 0, `admin.crt and admin.key lost: ca admin issue exits 0 (${issued.stderr.trim()})`);
  t.match(issued.stdout, /issued a new administrator certificate/);
  t.ok(existsSync(join(dir, 'admin.crt')) && pair.matches(), 'a new pair: admin.key is the key of admin.crt');
  if (!existsSync(join(dir, 'admin.crt'))) return;
  t.equal((await tokenAs(served.port, pair.files())).status, 201, 'the running CA accepts the new pair at once');

  served.child.kill('SIGKILL');
  await new Promise((resolve) => served.child.once('exit', resolve));
  const restarted = await serveCaProcessIn(t, dir);
  t.match(restarted.output(), /warden CA listening/, 'ca serve starts again');
  t.equal((await tokenAs(restarted.port, pair.files())).status, 201, 'and accepts the new pair');
});

t.test('ca serve and the admin CLI without admin.crt name the remedy: warden ca admin issue', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-lost-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const config = join(dir, 'ca.yaml');
  rmSync(join(dir, 'admin.crt'));
  const serve = warden('ca', 'serve', '-c', config);
  t.equal(serve.code, 2, 'ca serve: invalid configuration');
  t.match(
    serve.stderr,
    /admin\.crt is missing: make a new administrator certificate with warden ca admin issue -c \S*ca\.yaml/,
    'names the remedy',
  );
  const list = warden('ca', 'list', '-c', config);
  t.not(list.code, 0, 'ca list fails');
  t.match(
    list.stderr,
    `admin.crt is missing: make a new administrator certificate with warden ca admin issue -c ${config} `,
    'and names the remedy with the ca.yaml given',
  );
});

t.test('one ca admin issue at a time: a held lock is refused, and so is a run while another holds it', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-lock-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const config = join(dir, 'ca.yaml');
  const pair = adminPair(dir);
  const lock = join(dir, 'admin-issue.lock');
  const before = pair.files();

  // Held by another run (or left by a killed one): refused, the files untouched.
  writeFileSync(lock, 'pid 1 on elsewhere since then\n');
  const held = warden('ca', 'admin', 'issue', '-c', config);
  t.equal(held.code, 1, 'the lock is held: exit 1');
  t.match(held.stderr, /admin-issue\.lock exists: another warden ca admin issue is running \(pid 1 on elsewhere since then\)/);
  t.same(pair.files(), before, 'nothing written');
  rmSync(lock);

  // Two runs that overlap, deterministically: the first is held inside its lock (the test holds the
  // database's write lock, so its ledger insert waits, and stops it there), the second runs meanwhile.
  const db = new Database(join(dir, 'ca.db'));
  t.teardown(() => db.close());
  db.exec('BEGIN IMMEDIATE');
  const first = wardenAsync('ca', 'admin', 'issue', '-c', config);
  // Held once it names the first run (it is created, then written): the run then waits on the database.
  const holds = () => {
    try {
      return readFileSync(lock, 'utf8').startsWith(`pid ${first.pid} `);
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 2000 && !holds(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!t.ok(holds(), 'the first run holds the lock')) return void (await first.result);
  process.kill(first.pid, 'SIGSTOP');
  db.exec('ROLLBACK');
  const second = warden('ca', 'admin', 'issue', '-c', config);
  process.kill(first.pid, 'SIGCONT');
  t.equal(second.code, 1, 'the second run, while the first holds the lock: exit 1');
  t.match(second.stderr, new RegExp(`another warden ca admin issue is running \\(pid ${first.pid} on `), 'naming the first run');
  t.same(pair.files(), before, 'it wrote nothing');
  const done = await first.result;
  t.equal(done.code, 0, `the first run issues (${done.stderr.trim()})`);
  t.not(pair.files().cert, before.cert, 'admin.crt replaced');
  t.ok(pair.matches(), 'admin.key is the key of admin.crt');
  t.notOk(existsSync(lock), 'no lock left after the run');
});

t.test('admin.key cannot be written: the new certificate is revoked in the ledger, the error names the file and the remedy', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-unwritable-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const served = await serveCaProcessIn(t, dir);
  const pair = adminPair(dir);
  const first = pair.files();
  const firstSerial = canonicalSerial(new x509.X509Certificate(first.cert).serialNumber);

  // A directory, not empty, where admin.key is: the rename of the new key fails (EISDIR).
  rmSync(join(dir, 'admin.key'));
  mkdirSync(join(dir, 'admin.key', 'x'), { recursive: true });
  const failed = warden('ca', 'admin', 'issue', '-c', served.config);
  rmSync(join(dir, 'admin.key'), { recursive: true });
  writeFileSync(join(dir, 'admin.key'), first.key, { mode: 0o600 });
  t.equal(failed.code, 1, 'exit 1');
  t.equal(failed.stderr.trim().split('\n').length, 1, `one line: ${failed.stderr.trim()}`);
  const said =
    /admin\.key could not be written \(EISDIR on rename\): the new certificate ([0-9a-f]+) is revoked \(superseded\); admin\.key and admin\.crt are as they were; make \S*admin\.key a file that can be replaced \(not a directory\), in a writable directory, and run warden ca admin issue again/.exec(
      failed.stderr,
    );
  t.ok(said, 'names the file, what was undone and the remedy');
  const orphan = said?.[1] ?? 'none';
  t.equal(pair.files().cert, first.cert, 'admin.crt untouched');

  const list = warden('ca', 'list', '--id', ADMIN, '--json', '-c', served.config);
  t.equal(list.code, 0, list.stderr.trim());
  const rows = (JSON.parse(list.stdout) as Problem).certificates!.filter((c) => c.kind === 'admin');
  t.match(rows, [{ serial: orphan, status: 'revoked' }], 'the certificate whose key exists nowhere is revoked');
  t.notOk(
    rows.some((c) => c.serial !== firstSerial && c.status === 'valid'),
    'no valid administrator certificate but admin.crt',
  );
  const url = `https://127.0.0.1:${served.port}`;
  t.match(
    await postToCa<Problem>(`${url}/v1/admin/revocations`, { serial: firstSerial }, first),
    { status: 409, body: { code: 'ERR_CA_LAST_ADMIN' } },
    'admin.crt is still the last usable one: its revocation is refused',
  );

  // In the CRL the CA signs next, as a revocation over the API is (a restarted CA signs a new one).
  served.child.kill('SIGKILL');
  await new Promise((resolve) => served.child.once('exit', resolve));
  const restarted = await serveCaProcessIn(t, dir);
  const dispatcher = new Agent({ connect: { ca: first.ca } });
  t.teardown(() => dispatcher.close());
  const res = await request(`https://127.0.0.1:${restarted.port}/v1/crl`, { dispatcher });
  const crl = new x509.X509Crl(Buffer.from(await res.body.arrayBuffer()));
  const entry = crl.entries.find((e) => canonicalSerial(e.serialNumber) === orphan);
  t.equal(entry?.reason, x509.X509CrlReason.superseded, 'in the CRL, reason superseded');

  const again = warden('ca', 'admin', 'issue', '-c', served.config);
  t.equal(again.code, 0, `run again once admin.key is a file: exit 0 (${again.stderr.trim()})`);
  t.ok(pair.matches(), 'a matching pair');
});

t.test('a lock left by a run that is gone (same host and pid namespace, no such process) is taken over with a warning', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-stale-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const config = join(dir, 'ca.yaml');
  const pair = adminPair(dir);
  const lock = join(dir, 'admin-issue.lock');
  const namespace = readlinkSync('/proc/self/ns/pid');
  const gone = spawnSync(process.execPath, ['-e', '0']).pid;
  const left = `pid ${gone} on ${hostname()} since 2026-12-04T00:00:00.000Z (pid namespace ${namespace})`;

  // Not for sure gone: a live pid, another pid namespace, a lock without one (older warden): refused.
  for (const holder of [
    `pid ${process.pid} on ${hostname()} since 2026-12-04T00:00:00.000Z (pid namespace ${namespace})`,
    `pid ${gone} on ${hostname()} since 2026-12-04T00:00:00.000Z (pid namespace pid:[1])`,
    `pid ${gone} on ${hostname()} since 2026-12-04T00:00:00.000Z`,
  ]) {
    writeFileSync(lock, `${holder}\n`);
    const refused = warden('ca', 'admin', 'issue', '-c', config);
    t.equal(refused.code, 1, `refused: ${holder}`);
    t.match(refused.stderr, 'another warden ca admin issue is running');
  }

  writeFileSync(lock, `${left}\n`);
  const before = pair.files();
  const run = warden('ca', 'admin', 'issue', '-c', config);
  t.equal(run.code, 0, `exit 0 (${run.stderr.trim()})`);
  t.match(run.stderr, `admin-issue.lock was left by a run that is gone (${left}): taken over`, 'says so');
  t.not(pair.files().cert, before.cert, 'issued');
  t.ok(pair.matches(), 'a matching pair');
  t.notOk(existsSync(lock) || existsSync(`${lock}.takeover`), 'no lock left');
});
