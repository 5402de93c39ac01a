/**
 * Fault suite — a slow mesh.state_dir. A real `warden proxy` in mesh mode rotates its certificate
 * every ~2 s while every fsync(2) of the process is held 600 ms (strace's syscall fault injection,
 * attached to the running sidecar and each of its threads). A rotation's save is four fsyncs: when
 * it ran on the event loop, every request waited 2.4 s per rotation. Saves now run off the event
 * loop (mesh/state-writer.ts): requests are not held, and the disk catches up with the newest
 * certificate. A stop (SIGTERM) waits for a save in flight before the process exits and the
 * state dir's lock is released.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalSerial } from '../../src/net/serial.js';
import { startTestBackend } from '../support/backend.js';
import { TRUST_DOMAIN } from '../support/ca-harness.js';
import { startFaultCa } from './fault-ca.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';
import { maxLatency, sleep, startLoad } from './fault-tools.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
const FSYNC_DELAY_MS = 600;
/** A request held behind one rotation's save took 4 × FSYNC_DELAY_MS; a request not held, tens of ms. */
const REQUEST_BOUND_MS = 500;

/**
 * strace attached to `pid` and its threads, holding each fsync/fdatasync `delayMs` before it runs.
 * Resolves with the trace file once attached, or with the reason it cannot attach (ptrace refused).
 */
async function slowFsyncs(
  t: { teardown(fn: () => unknown): void },
  pid: number,
  delayMs: number,
): Promise<{ trace: string; detach(): void } | { refused: string }> {
  const trace = join(mkdtempSync(join(tmpdir(), 'warden-strace-')), 'fsync.trace');
  const strace = spawn(
    'strace',
    ['-f', '-p', String(pid), '-e', 'trace=fsync,fdatasync', '-e', `inject=fsync,fdatasync:delay_enter=${delayMs * 1000}`, '-o', trace],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => strace.kill());
  let stderr = '';
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ refused: `strace did not attach within 10 s: ${stderr}` }), 10_000);
    strace.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (/Process \d+ attached/.test(stderr)) {
        clearTimeout(timer);
        resolve({ trace, detach: () => strace.kill() });
      }
    });
    strace.once('error', (err) => resolve({ refused: err.message }));
    strace.once('exit', () => resolve({ refused: stderr.trim() }));
  });
}

/** A `warden proxy` in mesh mode whose certificate (4 s) rotates every ~2 s, saved in a fresh state dir. */
async function rotatingSidecar(t: Parameters<typeof spawnWarden>[0], backendUrl: string) {
  const ca = await startFaultCa(t, '4s');
  const stateDir = mkdtempSync(join(tmpdir(), 'warden-state-'));
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backendUrl, {
      service: { name: 'orders' },
      log: { access: false },
      mesh: {
        spiffe_id: ORDERS,
        dns_names: ['localhost'],
        ca: { url: ca.url, fingerprint: ca.fingerprint, timeout: '1s' },
        bootstrap_token: ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] }).token,
        state_dir: stateDir,
        renew_at: 0.5,
        renew_jitter: 0,
        refresh: { bundle: '1s', crl: '1s' },
      },
    }),
  );
  return { warden, stateDir };
}

/** The serial of the certificate saved in `stateDir`/workload.pem. */
function savedSerial(stateDir: string): string {
  const pem = readFileSync(join(stateDir, 'workload.pem'), 'utf8');
  return canonicalSerial(
    new X509Certificate(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0] ?? '').serialNumber,
  );
}

/**
 * strace refused by the machine: a skip saying why (ptrace is a property of the machine — a
 * container without CAP_SYS_PTRACE, Yama scope 3 — not of Warden); strace missing, or failing
 * otherwise, is a failure (README names it).
 */
function cannotSlow(t: { pass(m: string, o: { skip: string }): void; fail(m: string): void }, refused: string): void {
  if (/Operation not permitted/.test(refused)) t.pass('the slow disk (strace) cannot be made here', { skip: refused });
  else t.fail(`strace did not run (install it: README, Prerequisites): ${refused}`);
}

t.test('a state dir whose fsyncs take 600 ms: rotations every ~2 s hold no request, and the disk catches up', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const caller = await enrollWorkload(await startFaultCa(t, '1h'), `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`);
  const { warden, stateDir } = await rotatingSidecar(t, backend.url);
  const slow = await slowFsyncs(t, warden.child.pid as number, FSYNC_DELAY_MS);
  if ('refused' in slow) return cannotSlow(t, slow.refused);
  const rotated = () => warden.lines.filter((l) => l.event === 'warden.mesh.rotated');
  const before = rotated().length;
  const load = startLoad(t, {
    url: warden.url,
    tls: { ca: caller.bundlePem, cert: caller.certPem, key: caller.keyPem },
    workers: 2,
    maxRequests: 20_000,
    maxMs: 9_000,
    pacingMs: 20,
    next: () => ({ path: '/echo' }),
  });
  const samples = await load.done;
  const rotations = rotated().slice(before);
  const delayed = readFileSync(slow.trace, 'utf8')
    .split('\n')
    .filter((l) => /fsync|fdatasync/.test(l)).length;
  t.comment(JSON.stringify({ requests: samples.length, maxMs: maxLatency(samples), rotations: rotations.length, delayedFsyncs: delayed }));

  t.ok(rotations.length >= 3, `the certificate rotated during the run (${rotations.length} times)`);
  t.ok(delayed >= 8, `the sidecar's fsyncs were held ${FSYNC_DELAY_MS} ms each (${delayed} of them)`);
  t.equal(samples.filter((s) => s.status !== 200).length, 0, `zero failed requests out of ${samples.length}`);
  const max = maxLatency(samples);
  t.ok(max <= REQUEST_BOUND_MS, `no request was held by a save (max ${max} ms, bound ${REQUEST_BOUND_MS} ms)`);

  // The disk catches up: with fsyncs quick again, the save queued last lands and workload.pem holds
  // the certificate in force (held 600 ms an fsync, a save takes longer than a rotation's 2 s).
  slow.detach();
  const latest = () => String(rotated().at(-1)?.['warden.cert.serial']);
  let caughtUp = false;
  for (let i = 0; i < 60 && !caughtUp; i++) {
    caughtUp = savedSerial(stateDir) === latest();
    if (!caughtUp) await sleep(100);
  }
  t.ok(caughtUp, `workload.pem holds the certificate in force (${latest()})`);
  t.same(
    readdirSync(stateDir).filter((f) => f.endsWith('.tmp')),
    [],
    'no temporary file left once the saves landed',
  );
});

t.test(
  'SIGTERM while a rotation is being saved (fsyncs held 1 s): the save lands before the process exits, then the lock is released',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const { warden, stateDir } = await rotatingSidecar(t, backend.url);
    const slow = await slowFsyncs(t, warden.child.pid as number, 1000);
    if ('refused' in slow) return cannotSlow(t, slow.refused);
    const rotations = () => warden.lines.filter((l) => l.event === 'warden.mesh.rotated').length;
    const before = rotations();
    // A rotation after strace attached, so that its save runs on the slow disk.
    const rotation = await warden.waitFor((l) => l.event === 'warden.mesh.rotated' && rotations() > before, 10_000);
    // The save of that certificate (two files, four fsyncs held 1 s each) has just begun.
    warden.child.kill('SIGTERM');
    const code = await warden.exited;
    t.equal(code, 0, 'the drain ended and the process exited');
    t.equal(
      savedSerial(stateDir),
      String(rotation['warden.cert.serial']),
      'workload.pem holds the certificate rotated to just before the stop',
    );
    t.notOk(existsSync(join(stateDir, 'warden.lock')), 'and the lock was released after it');
  },
);
