/**
 * What a sidecar takes from mesh.state_dir at start, with a real CA and real sidecars. The files
 * there can be written while the sidecar is stopped, so each is used only as far as it can be
 * justified: a crl.der only when it is signed by an issuing CA of the trust bundle (an unsigned
 * CRL numbered 2^47-1 un-revoked every caller and, as the baseline, made every real CRL "older");
 * a root of bundle.pem only when mesh.ca names it (an extra root let a certificate it signed for
 * another SPIFFE ID in while the CA was down); and the directory only when it is this user's and
 * closed to others' writes (it was used silently, and as root chmodded to 0700, which its owner undid).
 */
import t from 'tap';
import { webcrypto, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { loadCaMaterial } from '../../src/ca/layout.js';
import { EC_P256, x509 } from '../../src/ca/pki.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, repoRoot, startCaUnderTest, startRestartableCa, testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';
import { readyzOf, startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload, type Workload } from '../support/workload.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const ORDERS = id('ns/shop/sa/orders');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(done: () => boolean, tries = 100): Promise<boolean> {
  for (let i = 0; i < tries && !done(); i++) await sleep(100);
  return done();
}

/** GET /echo as `w`, trusting `roots` for the sidecar's certificate: the status, or 'refused' at the handshake. */
async function call(t: { teardown(fn: () => unknown): void }, port: number, w: Workload, roots: string): Promise<number | 'refused'> {
  const agent = new Agent({ connect: { ca: roots, cert: w.certPem, key: w.keyPem } });
  t.teardown(() => agent.close());
  try {
    const res = await request(`https://localhost:${port}/echo`, { dispatcher: agent });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 'refused';
  }
}

const readyz = readyzOf;

t.test('a forged crl.der (no entries, number 2^47-1, not signed by the CA) is ignored: the revocation stays enforced', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startRestartableCa(t);
  const rootPem = ca.server.rootPem;
  const thief = await enrollWorkload(ca.server, id('ns/shop/sa/thief'));
  const good = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
  const { mesh } = meshSection(ca.server, ORDERS);
  const first = await startIdentity(t, mesh);
  await ca.server.revoke({ serial: thief.serial, reason: 'keyCompromise' });
  t.ok(await eventually(() => first.identity.revocations.isRevoked(thief.serial)), 'the first run enforces the revocation');
  const realNumber = BigInt(first.identity.crl().number ?? 0);
  await first.identity.stop();

  // While the sidecar is stopped: a CRL in the intermediate's name, signed by a key of the attacker's.
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const forged = await x509.X509CrlGenerator.create({
    issuer: material.intermediate.subjectName,
    signingAlgorithm: EC_P256,
    signingKey: keys.privateKey,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + 3_600_000),
    entries: [],
    // CRL number 2^47-1: INTEGER 0x7fffffffffff.
    extensions: [new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x06, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff]))],
  });
  writeFileSync(join(mesh.state_dir, 'crl.der'), Buffer.from(forged.rawData));
  await ca.server.close();

  const s = await startTestSidecar(t, backend.url, { mesh: { ...mesh, bootstrap_token: undefined } });
  t.equal(s.sidecar.mesh?.crl().inForce, false, 'CA down: the forged CRL is not in force');
  t.not(await call(t, s.port, thief, rootPem), 200, 'the revoked caller is not served');
  const notReady = await readyz(s.adminUrl);
  t.equal(notReady.status, 503, '/readyz does not report a CRL in force');
  t.match(notReady.body, /no CRL in force/);
  t.ok(
    s.logs.some((l) => l.level === 'error' && /ignoring a persisted CRL/.test(String(l.msg)) && /not signed/.test(String(l.err))),
    'an error line says why the saved CRL is ignored',
  );

  await ca.restart();
  t.ok(await eventually(() => s.sidecar.mesh?.crl().inForce === true), 'the CA’s CRL is fetched once the CA is back');
  const number = BigInt(s.sidecar.mesh?.crl().number ?? -1);
  t.ok(number >= realNumber && number < 2n ** 47n - 1n, `the CA’s own number (${number}), not the forged one`);
  t.not(await call(t, s.port, thief, rootPem), 200, 'the revoked caller is refused');
  t.equal(await call(t, s.port, good, rootPem), 200, 'others are served');
  t.equal((await readyz(s.adminUrl)).status, 200, 'ready');
  t.notOk(
    s.logs.some((l) => /older than the one in force/.test(String(l.err))),
    'no real CRL refused as older than the forged one',
  );
  t.not(readFileSync(join(mesh.state_dir, 'crl.der')).equals(Buffer.from(forged.rawData)), 'crl.der replaced by the CA’s');
});

t.test(
  'bundle.pem with an extra root, CA down: its certificates are refused, the configured root’s served; a root mesh.ca pins is kept',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const ca = await startRestartableCa(t);
    const rootPem = ca.server.rootPem;
    // Another CA altogether: its root is the attacker's (or, pinned, the new root of a rotation).
    const { ca: other } = await startCaUnderTest(t, {}, { ownRoot: true });
    const stranger = await enrollWorkload(other, id('ns/shop/sa/payments'));
    const good = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
    const { mesh } = meshSection(ca.server, ORDERS);
    await (await startIdentity(t, mesh)).identity.stop();
    const bundleFile = join(mesh.state_dir, 'bundle.pem');
    appendFileSync(bundleFile, other.rootPem);
    await ca.server.close();

    const s = await startTestSidecar(t, backend.url, { mesh: { ...mesh, bootstrap_token: undefined } });
    t.not(await call(t, s.port, stranger, rootPem), 200, 'a certificate of the unpinned root is refused');
    t.equal(await call(t, s.port, good, rootPem), 200, 'a peer under the configured root is served');
    t.notOk(s.sidecar.mesh?.material().ca.includes(other.rootPem.trim()), 'the extra root is not in the trust bundle');
    t.notOk(readFileSync(bundleFile, 'utf8').includes(other.rootPem.trim()), 'nor in bundle.pem any more');
    t.ok(
      s.logs.some((l) => l.level === 'warn' && /holds 1 root mesh\.ca does not name/.test(String(l.msg))),
      'a warning says a root was dropped',
    );
    await s.sidecar.drain();

    // A root rotation as docs/mesh-identity.md says: mesh.ca pins both roots. A restart with the CA
    // down keeps both, and peers under either are served.
    appendFileSync(bundleFile, other.rootPem);
    const both = await startTestSidecar(t, backend.url, {
      mesh: { ...mesh, bootstrap_token: undefined, ca: { ...mesh.ca, fingerprint: [ca.server.fingerprint, other.fingerprint] } },
    });
    t.equal(await call(t, both.port, stranger, rootPem), 200, 'pinned: a peer under the new root is served');
    t.equal(await call(t, both.port, good, rootPem), 200, 'and one under the old root');
  },
);

t.test('a state dir of another user, or writable by others: startup refused with one line saying what to do', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  await (await startIdentity(t, mesh)).identity.stop();
  const dir = mesh.state_dir;
  const again = { ...mesh, bootstrap_token: undefined };
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;

  chmodSync(dir, 0o777);
  await t.rejects(startIdentity(t, again), {
    code: 'ERR_MESH_STATE_UNSAFE',
    message: new RegExp(`^mesh: ${dir}: the mesh\\.state_dir is writable by every user \\(mode 777\\): chmod o-w it.*directory under it`),
  });
  t.equal(statSync(dir).mode & 0o777, 0o777, 'left as it was: nothing read from it, nothing changed');

  // The same through the CLI: one line on stderr, exit 1.
  const file = join(mkdtempSync(join(tmpdir(), 'warden-unsafe-')), 'sidecar.yaml');
  const config = {
    service: { name: 'orders' },
    listeners: { inbound: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
    upstream: { url: 'http://127.0.0.1:1' },
    mesh: again,
  };
  writeFileSync(file, JSON.stringify(config));
  const cli = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
    execFile(process.execPath, [join(repoRoot, 'bin/warden.js'), 'enroll', '-c', file], { timeout: 20_000 }, (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
  t.equal(cli.code, 1, 'warden enroll exits 1');
  t.match(cli.stderr, /^warden enroll: mesh: \S+: the mesh\.state_dir is writable by every user/, 'naming mesh.state_dir');
  t.equal(cli.stderr.trim().split('\n').length, 1, 'one line');

  chmodSync(dir, 0o700);
  if (uid === 0) {
    // Root could write anywhere, and chmodded such a dir to 0700; its owner could open it again.
    chownSync(dir, 65534, 65534);
    await t.rejects(startIdentity(t, again), {
      code: 'ERR_MESH_STATE_UNSAFE',
      message: new RegExp(`^mesh: ${dir}: the mesh\\.state_dir is owned by uid 65534, not by this process's user \\(uid 0\\) or root`),
    });
    chownSync(dir, uid, gid);
  }

  chmodSync(dir, 0o770); // group bits allowed: Kubernetes' fsGroup adds g+rwx
  const ok = await startIdentity(t, again);
  t.ok(ok.identity.material().serial, 'this user’s, closed to others: used');
});

t.test("a volume's mount point (root's, the pod's fsGroup, 2775) is a state dir a non-root sidecar may use", async (t) => {
  // Refused at first ("owned by uid 0"): a PVC per pod, as deploy.md recommends, stopped starting.
  if (process.getuid?.() !== 0) {
    t.comment('skipped: needs root, to make the volume and run as another user');
    return;
  }
  // Not under the test's temporary root (0700): the other user must reach it.
  const parent = mkdtempSync('/tmp/warden-pvc-');
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  chmodSync(parent, 0o755);
  const volume = join(parent, 'volume');
  mkdirSync(volume);
  chownSync(volume, 0, 4242);
  chmodSync(volume, 0o2775);
  const storeAs = (groups: string) =>
    new Promise<string>((resolve) =>
      execFile(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          `--groups=${groups}`,
          process.execPath,
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import { createCredentialStore } from ${JSON.stringify(join(repoRoot, 'src/mesh/credential-store.ts'))};
           try { await createCredentialStore(${JSON.stringify(volume)}).probeWritable(); console.log('used'); } catch (e) { console.log(e.code + ': ' + e.message); }`,
        ],
        // Without the test's NODE_OPTIONS and TMPDIR: they name this process's temporary root (0700).
        { cwd: repoRoot, timeout: 20_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
        (_err, out, err) => resolve(String(out).trim() || String(err).trim()),
      ),
    );
  t.equal(await storeAs('4242'), 'used', 'as a member of its group (fsGroup): used');
  t.equal(statSync(volume).mode & 0o7777, 0o2775, 'and left as it is (not ours to tighten)');
  t.match(
    await storeAs('4343'),
    /^ERR_MESH_STATE_UNSAFE: mesh: \S+: the mesh\.state_dir is writable by group 4242, not a group of this process/,
    'a group not its own: refused',
  );
});

t.test('a save that fails (crl.der cannot be replaced) is tried again until it lands, without a newer CRL', async (t) => {
  const ca = await startRestartableCa(t);
  const victim = await enrollWorkload(ca.server, id('ns/shop/sa/victim'));
  const { mesh } = meshSection(ca.server, ORDERS);
  const { identity, logs } = await startIdentity(t, mesh);
  const crlFile = join(mesh.state_dir, 'crl.der');
  t.ok(await eventually(() => identity.crl().inForce), 'a CRL is in force');
  // A directory where crl.der goes: the rename over it fails (EISDIR / ENOTEMPTY), as root too.
  rmSync(crlFile, { force: true });
  mkdirSync(join(crlFile, 'blocker'), { recursive: true });
  await ca.server.revoke({ serial: victim.serial, reason: 'keyCompromise' });
  t.ok(await eventually(() => identity.revocations.isRevoked(victim.serial)), 'the new CRL is in force at once');
  t.ok(
    await eventually(() =>
      logs.some((l) => /the new crl is in force but could not be saved in mesh\.state_dir; trying again/.test(String(l.msg))),
    ),
    'its save failed, and says it is tried again',
  );
  const number = identity.crl().number;
  rmSync(crlFile, { recursive: true, force: true });
  t.ok(
    await eventually(() => {
      try {
        return statSync(crlFile).isFile();
      } catch {
        return false;
      }
    }, 60),
    'once the obstacle is gone, the retry writes crl.der',
  );
  t.equal(identity.crl().number, number, 'with no newer CRL in between: the retry did it');
});

t.test(
  'a renewal saves workload.pem alone: bundle.pem is a save of its own, so a retried renewal cannot put an older bundle back',
  async (t) => {
    // Before, a renewal's save wrote bundle.pem too; retried after a failure, it put the bundle of
    // its time back on disk after a newer one saved by the refresher had landed (adversarial.md 308).
    const ca = await startRestartableCa(t, { certificates: { lifetime: '4s', backdate: '0s' } });
    const { mesh } = meshSection(ca.server, ORDERS, { renew_at: 0.5, renew_jitter: 0, max_backoff: '1s' });
    const { identity, logs } = await startIdentity(t, mesh);
    const bundleFile = join(mesh.state_dir, 'bundle.pem');
    const saved = readFileSync(bundleFile, 'utf8');
    // A directory where bundle.pem goes: any save of it fails (EISDIR / ENOTEMPTY), as root too.
    rmSync(bundleFile, { force: true });
    mkdirSync(join(bundleFile, 'blocker'), { recursive: true });
    const first = identity.material().serial;
    t.ok(await eventually(() => identity.material().serial !== first, 80), 'renewed');
    const renewed = identity.material().serial;
    const onDisk = () => {
      try {
        return canonicalSerial(new X509Certificate(readFileSync(join(mesh.state_dir, 'workload.pem'), 'utf8')).serialNumber);
      } catch {
        return undefined;
      }
    };
    t.ok(await eventually(() => onDisk() === renewed), 'workload.pem holds the renewed certificate');
    t.same(
      logs.filter((l) => /could not be saved in mesh\.state_dir/.test(String(l.msg))),
      [],
      'and nothing failed: the unchanged bundle was not written with it',
    );
    rmSync(bundleFile, { recursive: true, force: true });
    writeFileSync(bundleFile, saved);
  },
);
