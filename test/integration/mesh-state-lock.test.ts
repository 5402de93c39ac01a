/**
 * One process per mesh.state_dir, with a real CA: a second identity on the same state dir is refused
 * (in this process, and beside a `warden proxy` process), a clean stop releases the directory, a
 * lock left by a process that died (kill -9, or one that simply exited) is taken over, and a state
 * dir whose file system hangs stops nothing but the lock.
 */
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { meshSection, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { currentPidSpace, LOCK_FILE, type LockHolder } from '../../src/mesh/state-lock.js';
import { hungFile } from '../support/hung-file.js';
import { request } from 'undici';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
const holderIn = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder;
const LOCKED =
  /^mesh: mesh\.state_dir \S+ is in use by another Warden process \(pid \d+ on host .*\): .*give each replica its own mesh\.state_dir \(an emptyDir/;

t.test('a second identity on the same state dir is refused; once the first stops, a new one starts', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  const first = await startIdentity(t, mesh);
  const workload = readFileSync(join(mesh.state_dir, 'workload.pem'), 'utf8');
  const refused: unknown = await startIdentity(t, { ...mesh, bootstrap_token: undefined }).catch((err: unknown) => err);
  t.match(refused, { name: 'MeshStartupError', code: 'ERR_MESH_STATE_LOCKED', message: LOCKED });
  const message = refused instanceof Error ? refused.message : '(it started)';
  t.match(message, `(pid ${process.pid} on host ${hostname()}, since `, 'names the holder');
  t.notOk(message.includes('\n'), 'one line');
  t.equal(readFileSync(join(mesh.state_dir, 'workload.pem'), 'utf8'), workload, 'the holder’s credentials untouched');

  await first.identity.stop();
  t.notOk(existsSync(join(mesh.state_dir, LOCK_FILE)), 'stop() releases the state dir');
  const next = await startIdentity(t, { ...mesh, bootstrap_token: undefined });
  t.equal(next.identity.material().serial, first.identity.material().serial, 'and the next one starts on its credentials');
});

t.test('beside a warden proxy process: refused naming its pid; SIGTERM releases; after a kill -9 the lock is taken over', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  const yaml = await testConfigYaml('http://127.0.0.1:1', { mesh });
  const proxy = await spawnWarden(t, yaml);
  t.match(holderIn(mesh.state_dir), { pid: proxy.child.pid, hostname: hostname() });

  const again = { ...mesh, bootstrap_token: undefined };
  await t.rejects(startIdentity(t, again), {
    code: 'ERR_MESH_STATE_LOCKED',
    message: new RegExp(`\\(pid ${proxy.child.pid} on host .*: its process is running\\)`),
  });
  // `warden enroll` (an init container, or by hand in a running pod) is refused the same way: exit 1, one line.
  const configFile = join(mkdtempSync(join(tmpdir(), 'warden-lock-')), 'sidecar.yaml');
  writeFileSync(configFile, await testConfigYaml('http://127.0.0.1:1', { mesh: again }));
  const enroll = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin/warden.js'), 'enroll', '-c', configFile], { timeout: 20_000 }, (err, _out, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  t.equal(enroll.code, 1, 'warden enroll exits 1');
  t.match(enroll.stderr, /^warden enroll: mesh: mesh\.state_dir .* is in use by another Warden process/);
  t.equal(enroll.stderr.trim().split('\n').length, 1, 'one line');

  proxy.child.kill('SIGTERM');
  t.equal(await proxy.exited, 0, 'drained');
  t.notOk(existsSync(join(mesh.state_dir, LOCK_FILE)), 'the drain released the state dir');

  const killed = await spawnWarden(t, yaml);
  killed.child.kill('SIGKILL');
  await killed.exited;
  t.equal(holderIn(mesh.state_dir).pid, killed.child.pid, 'kill -9 leaves its lock behind');
  const after = await startIdentity(t, again);
  t.ok(
    after.logs.some(
      (l) => l.level === 'warn' && String(l.msg).includes(`took over the lock of mesh.state_dir left by pid ${killed.child.pid}`),
    ),
    'taken over at once (its pid is not running), with a warning',
  );
  t.equal(holderIn(mesh.state_dir).pid, process.pid);
});

t.test('a lock left by a process that exited is taken over', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.once('exit', resolve));
  const holder: LockHolder = {
    pid: gone.pid ?? 0,
    hostname: hostname(),
    id: randomBytes(12).toString('hex'),
    ...(currentPidSpace() !== undefined ? { pidSpace: currentPidSpace() } : {}),
    since: new Date().toISOString(),
  };
  writeFileSync(join(mesh.state_dir, LOCK_FILE), JSON.stringify(holder));
  const started = Date.now();
  const { logs } = await startIdentity(t, mesh);
  t.ok(Date.now() - started < 5000, 'without waiting for a heartbeat');
  t.ok(
    logs.some((l) => String(l.msg).includes(`left by pid ${holder.pid} on host ${hostname()}`) && String(l.msg).includes('is not running')),
    'the warning names the dead holder and why',
  );
  t.equal(holderIn(mesh.state_dir).pid, process.pid, 'held by this process now');
});

t.test('processes taking over one stale lock at once: exactly one gets it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lock-race-'));
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.once('exit', resolve));
  const stale = { pid: gone.pid, hostname: hostname(), id: 'dead', pidSpace: currentPidSpace(), since: new Date().toISOString() };
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify(stale));
  // Each waits for the same moment, tries, holds what it got for a while, and says what happened.
  const at = Date.now() + 1500;
  const script = [
    `import { acquireStateLock } from ${JSON.stringify(join(repoRoot, 'dist/mesh/state-lock.js'))};`,
    `await new Promise((r) => setTimeout(r, ${at} - Date.now()));`,
    `try { const lock = await acquireStateLock(${JSON.stringify(dir)}); console.log('held');`,
    `  await new Promise((r) => setTimeout(r, 1500)); lock.release(); }`,
    `catch (err) { console.log(err.name); }`,
  ].join('\n');
  const outcomes = await Promise.all(
    Array.from(
      { length: 6 },
      () =>
        new Promise<string>((resolve) =>
          execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, stdout, stderr) =>
            resolve(err ? `failed: ${stderr}` : stdout.trim()),
          ),
        ),
    ),
  );
  t.same(
    [...outcomes].sort(),
    ['StateLockHeldError', 'StateLockHeldError', 'StateLockHeldError', 'StateLockHeldError', 'StateLockHeldError', 'held'],
    'one holder, five refused',
  );
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'released by its holder');
  t.notOk(existsSync(join(dir, `${LOCK_FILE}.takeover`)), 'no takeover guard left behind');
});

/** A mesh sidecar (its CA and backend too) holding the lock of its mesh.state_dir. */
async function meshSidecar(t: Test) {
  const { readyzOf, startTestSidecar } = await import('../support/sidecar.js');
  const { startTestBackend } = await import('../support/backend.js');
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  const s = await startTestSidecar(t, backend.url, { mesh });
  return { s, mesh, readyzOf };
}

t.test('a holder that finds its lock taken over saves nothing more there and is not ready', async (t) => {
  // A holder stalled past the heartbeat bound (SIGSTOP, a frozen node) is taken over; it kept
  // renewing into the directory another process now owned, and stayed ready.
  const { s, mesh, readyzOf } = await meshSidecar(t);
  const readyz = () => readyzOf(s.adminUrl);
  t.equal((await readyz()).status, 200, 'ready while it holds the lock');
  const other: LockHolder = { ...holderIn(mesh.state_dir), pid: 424242, id: randomBytes(8).toString('hex'), hostname: 'elsewhere' };
  writeFileSync(join(mesh.state_dir, LOCK_FILE), JSON.stringify(other));
  const deadline = Date.now() + 5000;
  while (s.sidecar.mesh?.status().stateLockLost === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.match(s.sidecar.mesh?.status().stateLockLost, /now held by pid 424242 on host elsewhere/, 'it notices at its next heartbeat');
  const unready = await readyz();
  t.equal(unready.status, 503, 'not ready');
  t.match(unready.body, 'lost the lock of mesh.state_dir', 'saying why');
  t.ok(
    s.logs.some((l) => l.level === 'error' && /no longer holds the lock of mesh\.state_dir/.test(String(l.msg))),
    'an error line',
  );
});

t.test('a state dir whose file system hangs: the sidecar answers on, and is not ready, saying why', async (t) => {
  // A hard-mounted NFS whose server is gone: the heartbeat's calls never return. Made on the event
  // loop (futimesSync every 2 s), they stopped the whole sidecar: traffic, /healthz, the drain.
  const { s, mesh, readyzOf } = await meshSidecar(t);
  t.equal((await readyzOf(s.adminUrl)).status, 200, 'ready');
  (await hungFile(t, join(mesh.state_dir, LOCK_FILE), 20_000)).hang();
  const hungAt = Date.now();
  // /healthz asked every 200 ms: the longest between two answers says whether the event loop stopped.
  let answeredAt = hungAt;
  let longest = 0;
  const statuses = new Set<number>();
  while (s.sidecar.mesh?.status().stateLockLost === undefined && Date.now() - hungAt < 15_000) {
    const res = await request(`${s.adminUrl}/healthz`);
    await res.body.dump();
    statuses.add(res.statusCode);
    longest = Math.max(longest, Date.now() - answeredAt);
    answeredAt = Date.now();
    await new Promise((r) => setTimeout(r, 200));
  }
  const noticed = Date.now() - hungAt;
  longest = Math.max(longest, noticed - (answeredAt - hungAt));
  t.ok(longest < 1500, `/healthz answered all along (at most ${longest} ms between two answers, asked every 200 ms)`);
  t.same([...statuses], [200], 'with 200');
  t.match(
    s.sidecar.mesh?.status().stateLockLost,
    /^the file system has not answered its heartbeat for \d+(\.\d)? s \(a hung mount\?\): another process may take it over meanwhile; restart this one once mesh\.state_dir answers$/,
  );
  // Others take it over 8 s after the last beat that answered (a heartbeat, 2 s, before the hang at most).
  t.ok(
    noticed < 6500,
    `lost ${noticed} ms after the hang: at most 6 s after the last beat that answered, 2 s before another process may take it over`,
  );
  const unready = await readyzOf(s.adminUrl);
  t.equal(unready.status, 503, 'not ready');
  t.match(unready.body, 'lost the lock of mesh.state_dir: the file system has not answered its heartbeat', 'saying why');
  t.ok(
    s.logs.some(
      (l) => l.level === 'error' && /no longer holds the lock of mesh\.state_dir: the file system has not answered/.test(String(l.msg)),
    ),
    'an error line',
  );
  const draining = Date.now();
  await s.sidecar.drain();
  t.ok(Date.now() - draining < 5000, 'and the drain (SIGTERM) ends: it does not wait on the state dir');
});
