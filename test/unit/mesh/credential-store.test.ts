import t from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../support/ca-harness.js';
import {
  chainsToItsBundle,
  CredentialError,
  createCredentialStore,
  describeCredentials,
  isExpired,
} from '../../../src/mesh/credential-store.js';
import { enrollWorkload } from '../../support/workload.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../../support/ca-harness.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;

t.test('saves key and chain in one 0600 file, loads them back, refuses mismatches and a changed identity', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const w = await enrollWorkload(ca, ORDERS);
  const other = await enrollWorkload(ca, ORDERS);
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-store-')), 'state');
  const store = createCredentialStore(dir);
  t.equal(statSync(dir).mode & 0o777, 0o700, 'state dir 0700');
  t.equal(store.load(ORDERS), undefined, 'empty at first');
  const credentials = describeCredentials(w.keyPem, w.certPem, w.bundlePem);
  t.equal(credentials.spiffeId, ORDERS);
  t.equal(credentials.serial, w.serial);
  await store.save(credentials);
  t.equal(statSync(join(dir, 'workload.pem')).mode & 0o777, 0o600, 'key file 0600');
  t.same(store.load(ORDERS)?.serial, w.serial, 'loads back');
  t.equal(store.loadBundle(), w.bundlePem);
  t.throws(() => store.load(`spiffe://${TRUST_DOMAIN}/ns/shop/sa/renamed`), { code: 'ERR_MESH_IDENTITY_CHANGED' });
  t.throws(() => describeCredentials(other.keyPem, w.certPem, w.bundlePem), CredentialError, 'a key that is not the certificate’s');
  writeFileSync(join(dir, 'workload.pem'), other.keyPem + w.certPem, { mode: 0o600 });
  t.throws(() => store.load(ORDERS), { code: 'ERR_MESH_STATE_INVALID' }, 'a tampered state file is refused, not used');
  t.same(readdirSync(dir).sort(), ['bundle.pem', 'workload.pem'], 'only the state files: no temp file left behind');
});

t.test('atomic replacement: no temp files left, the old pair readable until the new one is complete', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const first = describeCredentials(...(await pemsOf(ca)));
  const second = describeCredentials(...(await pemsOf(ca)));
  const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
  chmodSync(dir, 0o755);
  const store = createCredentialStore(dir);
  t.equal(statSync(dir).mode & 0o777, 0o700, 'an existing, wider state dir is tightened');
  await store.save(first);
  const inode = statSync(join(dir, 'workload.pem')).ino;
  await store.save(second);
  t.not(statSync(join(dir, 'workload.pem')).ino, inode, 'replaced by rename, not rewritten in place');
  t.equal(store.load(ORDERS)?.serial, second.serial);
  await store.saveCrl(Buffer.from([1, 2, 3]), 'SIGNER');
  t.same(readdirSync(dir).sort(), ['bundle.pem', 'crl-signer.pem', 'crl.der', 'workload.pem'], 'no temp files');
  t.same(store.loadCrl(), Buffer.from([1, 2, 3]));
  t.equal(store.loadCrlSigner(), 'SIGNER', 'the CRL’s signer saved beside it');
  t.notOk(isExpired(second), 'fresh');
  t.ok(isExpired(second, second.notAfter.getTime()), 'expired at notAfter');
});

async function pemsOf(ca: Parameters<typeof enrollWorkload>[0]): Promise<[string, string, string]> {
  const w = await enrollWorkload(ca, ORDERS);
  return [w.keyPem, w.certPem, w.bundlePem];
}

t.test('a bundle without certificates is never saved, and a persisted one is not used', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const w = await enrollWorkload(ca, ORDERS);
  const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
  const store = createCredentialStore(dir);
  await store.save(describeCredentials(w.keyPem, w.certPem, w.bundlePem));
  for (const empty of ['', '\n', 'not a certificate\n', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']) {
    await t.rejects(
      store.saveBundle(empty),
      { code: 'ERR_MESH_BUNDLE_INVALID' },
      `saveBundle(${JSON.stringify(empty.slice(0, 12))}) refused`,
    );
    t.equal(readFileSync(join(dir, 'bundle.pem'), 'utf8'), w.bundlePem, 'the good bundle stays on disk');
  }
  await store.save(describeCredentials(w.keyPem, w.certPem, ''));
  t.equal(readFileSync(join(dir, 'bundle.pem'), 'utf8'), w.bundlePem, 'save() without a usable bundle keeps the one on disk');
  for (const damaged of ['', 'garbage\n']) {
    writeFileSync(join(dir, 'bundle.pem'), damaged);
    t.equal(store.loadBundle(), undefined, `a persisted ${JSON.stringify(damaged)} bundle is no bundle`);
    t.equal(store.load(ORDERS)?.bundlePem, '', 'and the credentials load without one');
  }
});

t.test('a short write (file size limit) fails the save: no cut workload.pem is left as credentials', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const w = await enrollWorkload(ca, ORDERS);
  const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
  const input = join(dir, 'credentials.json');
  writeFileSync(input, JSON.stringify(describeCredentials(w.keyPem, w.certPem, w.bundlePem)));
  const state = join(dir, 'state');
  // Under `ulimit -f 1` write(2) stores 1 KiB and returns that count, with no error: the store must
  // write on (and meet EFBIG) rather than rename a 1 KiB file into place.
  const script = [
    `import { createCredentialStore } from ${JSON.stringify(join(repoRoot, 'src/mesh/credential-store.ts'))};`,
    `import { readFileSync } from 'node:fs';`,
    `const c = JSON.parse(readFileSync(${JSON.stringify(input)}, 'utf8'));`,
    `try { await createCredentialStore(${JSON.stringify(state)}).save(c); console.log('saved'); }`,
    `catch (err) { console.log('refused', err.code); }`,
  ].join('\n');
  const out = await new Promise<string>((resolve) => {
    execFile(
      '/bin/bash',
      ['-c', 'ulimit -f 1; exec "$0" "$@"', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 30_000, env: { ...process.env, NODE_OPTIONS: '', TSX_DISABLE_CACHE: '1' } },
      (err, stdout, stderr) => resolve(`${stdout}${stderr}${err && !stdout ? err.message : ''}`),
    );
  });
  t.match(out, /^refused EFBIG/, 'the save fails with the cause');
  t.notOk(existsSync(join(state, 'workload.pem')), 'no workload.pem');
  t.same(readdirSync(state), [], 'no temp file left behind');
});

t.test('a persisted chain cut short or not signed by its intermediate is refused at load, naming the file', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const w = await enrollWorkload(ca, ORDERS);
  const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
  const store = createCredentialStore(dir);
  await store.save(describeCredentials(w.keyPem, w.certPem, w.bundlePem));
  const file = join(dir, 'workload.pem');
  const whole = readFileSync(file, 'utf8');
  t.equal(store.load(ORDERS)?.serial, w.serial, 'the whole file loads');
  // Cut inside the intermediate, as a 1 KiB short write left it: key and leaf whole.
  const intermediateAt = whole.lastIndexOf('-----BEGIN CERTIFICATE-----');
  writeFileSync(file, whole.slice(0, intermediateAt + 100), { mode: 0o600 });
  t.throws(
    () => store.load(ORDERS),
    { code: 'ERR_MESH_STATE_INVALID', message: `${file}: the certificate chain is cut short` },
    'a cut intermediate',
  );
  writeFileSync(file, whole.slice(0, intermediateAt) + w.bundlePem, { mode: 0o600 });
  t.throws(
    () => store.load(ORDERS),
    { code: 'ERR_MESH_STATE_INVALID', message: `${file}: the certificate is not signed by the intermediate after it` },
    'another certificate in the intermediate’s place',
  );
});

t.test('a pending enrollment is used only when it is ours: no access for others, this user, a CSR for its key', async (t) => {
  const { createKeyAndCsr } = await import('../../../src/mesh/csr.js');
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-store-')), 'state');
  const store = createCredentialStore(dir);
  const file = join(dir, 'enrollment-pending.json');
  const mine = await createKeyAndCsr(ORDERS, ['localhost']);
  const pending = { spiffeId: ORDERS, dnsNames: ['localhost'], ...mine };
  t.equal(store.loadPending(ORDERS, ['localhost']), undefined, 'none at first');
  store.savePending(pending);
  t.same(store.loadPending(ORDERS, ['LOCALHOST']), { pending }, 'loads back for the same identity and names');
  t.equal(store.loadPending(ORDERS, ['other.example']), undefined, 'another set of names: not this enrollment');

  chmodSync(file, 0o644);
  const loose = store.loadPending(ORDERS, ['localhost']);
  t.match(
    loose,
    { ignored: `${file}: mode 644: other users can read or write it; a new key is made` },
    'a file others can read or write is not sent',
  );
  chmodSync(file, 0o660);
  t.same(store.loadPending(ORDERS, ['localhost']), { pending }, "group bits are allowed (Kubernetes' fsGroup adds g+rw at every mount)");

  const theirs = await createKeyAndCsr(ORDERS, ['localhost']);
  store.savePending({ ...pending, csrPem: theirs.csrPem });
  t.match(store.loadPending(ORDERS, ['localhost']), { ignored: /CSR is not for its key/ }, 'a CSR for another key would certify that key');

  writeFileSync(file, '{"spiffeId":', { mode: 0o600 });
  t.match(store.loadPending(ORDERS, ['localhost']), { ignored: /damaged/ }, 'a cut file is named, not used');

  if (process.getuid?.() === 0) {
    store.savePending(pending);
    const { chownSync } = await import('node:fs');
    chownSync(file, 65534, 65534);
    t.match(store.loadPending(ORDERS, ['localhost']), { ignored: /owned by uid 65534/ }, "another user's file is not ours to send");
  }
});

t.test('chainsToItsBundle: a certificate whose root is no longer in its bundle is refused by every peer', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { ca: next } = await startCaUnderTest(t, {}, { ownRoot: true });
  const w = await enrollWorkload(ca, ORDERS);
  t.ok(chainsToItsBundle({ certPem: w.certPem, bundlePem: w.bundlePem }), 'under its own root');
  t.ok(chainsToItsBundle({ certPem: w.certPem, bundlePem: w.bundlePem + next.rootPem }), 'the new root beside it (rotation step 2)');
  t.notOk(chainsToItsBundle({ certPem: w.certPem, bundlePem: next.rootPem }), 'the old root removed (step 4) before it renewed');
});
