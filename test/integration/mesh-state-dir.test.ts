/**
 * The mesh identity and its state dir, with a real CA: a CRL enforced although crl.der cannot be
 * written, a changed mesh.dns_names at start, and a state dir this process cannot write costing no
 * bootstrap token (`warden enroll` as another user).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { meshSection, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';
import { repoRoot } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `done` every 100 ms, at most `tries` times. */
async function eventually(done: () => boolean, tries = 80): Promise<boolean> {
  for (let i = 0; i < tries && !done(); i++) await sleep(100);
  return done();
}

const dnsNamesOfCert = (certPem: string) =>
  (new X509Certificate(certPem).subjectAltName ?? '')
    .split(', ')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4))
    .sort();

t.test('a CRL that cannot be saved is enforced all the same, with a warning', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const caller = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`);
  const { mesh } = meshSection(ca, ORDERS);
  const { identity, logs } = await startIdentity(t, mesh);
  t.notOk(identity.revocations.isRevoked(caller.serial), 'not revoked yet');
  // crl.der becomes a directory: every save of a CRL fails (EISDIR at the rename), as on a full disk.
  rmSync(join(mesh.state_dir, 'crl.der'), { force: true });
  mkdirSync(join(mesh.state_dir, 'crl.der', 'in-the-way'), { recursive: true });
  await ca.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  t.ok(
    await eventually(() => identity.revocations.isRevoked(caller.serial)),
    'the revocation is enforced (refresh.crl 500 ms) although crl.der cannot be written',
  );
  t.ok(
    logs.some((l) => /the new crl is in force but could not be saved in mesh\.state_dir/.test(String(l.msg))),
    'a warning says the CRL was not saved',
  );
});

t.test('a changed mesh.dns_names: a token enrolls the new names; without one the current names are kept and renewed', async (t) => {
  // 4 s certificates renewed at half-life: a renewal within the test.
  const { ca } = await startCaUnderTest(t, { certificates: { lifetime: '4s', backdate: '0s' } });
  const { mesh } = meshSection(ca, ORDERS, { renew_at: 0.5, renew_jitter: 0, max_backoff: '1s' });
  const first = await startIdentity(t, mesh);
  const firstSerial = first.identity.material().serial;
  await first.identity.stop();

  const names = ['localhost', 'orders.example.test'];
  const token = ca.createToken({ spiffe_id: ORDERS, dns_names: names }).token;
  const second = await startIdentity(t, { ...mesh, dns_names: names, bootstrap_token: token });
  t.not(second.identity.material().serial, firstSerial, 'a new certificate, enrolled with the new token');
  t.same(dnsNamesOfCert(second.identity.material().cert), names, 'carrying the new names');
  t.ok(second.events.some((e) => e.name === 'warden.mesh.enrolled'));
  await second.identity.stop();

  // Another name, no token: the persisted certificate, a warning naming mesh.dns_names, renewals that succeed.
  const third = await startIdentity(t, { ...mesh, dns_names: ['localhost', 'other.example.test'], bootstrap_token: undefined });
  const ignored = third.events.find((e) => e.name === 'warden.mesh.dns_names_ignored');
  t.match(ignored?.['warden.detail'], /mesh\.dns_names \(localhost, other\.example\.test\) differs .*\(localhost, orders\.example\.test\)/);
  t.ok(
    third.logs.some((l) => l.level === 'warn' && /mesh\.dns_names/.test(String(l.msg))),
    'and a warning in the log',
  );
  t.ok(
    await eventually(() => third.events.some((e) => e.name === 'warden.mesh.rotated')),
    'the renewal succeeds: it asks for the certificate’s own names',
  );
  t.same(dnsNamesOfCert(third.identity.material().cert), names, 'renewed with the names it had');
  t.notOk(
    third.events.some((e) => e.name === 'warden.mesh.renewal_failed'),
    'no renewal refused (ERR_CA_IDENTITY_MISMATCH)',
  );
});

t.test(
  'a state dir from a CA mesh.ca no longer names: enrolled afresh at the new one, the old root no longer trusted (defect 181)',
  async (t) => {
    const { ca: oldCa } = await startCaUnderTest(t);
    const { ca: newCa } = await startCaUnderTest(t, {}, { ownRoot: true });
    t.not(newCa.fingerprint, oldCa.fingerprint, 'two roots');
    const oldRoot = (await enrollWorkload(oldCa, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/attacker`)).bundlePem.trim();
    const newCaConfig = { url: newCa.url, fingerprint: newCa.fingerprint, timeout: '2s' };
    const newToken = () => newCa.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] }).token;

    const { mesh } = meshSection(oldCa, ORDERS);
    const first = await startIdentity(t, mesh);
    const oldSerial = first.identity.material().serial;
    t.ok(first.identity.material().ca.includes(oldRoot), 'first: the old root trusted');
    await first.identity.stop();
    // The operator replaces the CA: its URL and fingerprint, a token of the new CA, the same state dir.
    const second = await startIdentity(t, { ...mesh, ca: newCaConfig, bootstrap_token: newToken() });
    t.not(second.identity.material().serial, oldSerial, 'not the old certificate');
    t.ok(
      second.events.some((e) => e.name === 'warden.mesh.enrolled'),
      'enrolled at the new CA with its token',
    );
    t.notOk(second.identity.material().ca.includes(oldRoot), 'the old root is no longer trusted');
    t.ok(
      second.logs.some((l) => l.level === 'warn' && /names none of the roots mesh\.ca does/.test(String(l.msg))),
      'a warning says why',
    );
    await second.identity.stop();
    const third = await startIdentity(t, { ...mesh, ca: newCaConfig, bootstrap_token: undefined });
    t.equal(third.identity.material().serial, second.identity.material().serial, 'restarted: the new CA’s certificate, kept');
    await third.identity.stop();

    // Without a token: a refusal to start that says what to do, not the old CA's certificate.
    const other = meshSection(oldCa, ORDERS).mesh;
    await (await startIdentity(t, other)).identity.stop();
    await t.rejects(startIdentity(t, { ...other, ca: newCaConfig, bootstrap_token: undefined }), {
      message: /issued under a CA whose root mesh\.ca no longer names; set mesh\.bootstrap_token/,
    });
  },
);

t.test('warden enroll with a state dir it cannot write: one clear line, and the token is still unused', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const root = process.getuid?.() === 0;
  // The config file must be readable by the unprivileged user: through the test's own temp root too.
  if (root) chmodSync(tmpdir(), 0o755);
  const dir = mkdtempSync(join(tmpdir(), 'warden-enroll-'));
  chmodSync(dir, 0o755);
  const { mesh } = meshSection(ca, ORDERS);
  // As root, permissions do not apply: the enrollment runs as nobody, against a state dir of its own
  // (one of another user's is refused before anything is tried) that it may not write.
  if (root) chownSync(mesh.state_dir, 65534, 65534);
  chmodSync(mesh.state_dir, 0o555);
  t.teardown(() => chmodSync(mesh.state_dir, 0o755));
  const file = join(dir, 'sidecar.yaml');
  // No inbound TLS files (mesh mode serves its workload certificate), so the other user reads this file alone.
  const config = {
    service: { name: 'orders' },
    listeners: { inbound: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 } },
    upstream: { url: 'http://127.0.0.1:1' },
    mesh,
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o644 });
  const env = { PATH: process.env.PATH ?? '', TMPDIR: dir };
  const enroll = () =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      // Through sh, which drops the NODE_OPTIONS the test runner adds to its children: they would
      // make the child write its process info where the other user may not.
      const child = execFile(
        '/bin/sh',
        ['-c', 'unset NODE_OPTIONS; exec "$0" "$@"', process.execPath, join(repoRoot, 'bin/warden.js'), 'enroll', '-c', file],
        { timeout: 20_000, env, ...(root ? { uid: 65534, gid: 65534 } : {}) },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin?.end();
    });
  const refused = await enroll();
  t.equal(refused.code, 1, 'exit 1');
  t.match(
    refused.stderr,
    /^warden enroll: mesh: cannot write in mesh\.state_dir .* \(EACCES\): .*the bootstrap token was not used/,
    'names mesh.state_dir and says the token is unused',
  );
  t.equal(refused.stderr.trim().split('\n').length, 1, 'one line');
  chmodSync(mesh.state_dir, 0o755);
  const fixed = await enroll();
  t.equal(fixed.code, 0, `the same token enrolls once the state dir is writable: ${fixed.stderr}`);
});
