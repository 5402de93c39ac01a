/**
 * Two `warden ca serve` on one database (a root rotation's old and new CA, mesh-identity.md). Each
 * kept its own signed CRL and re-signed it only on a revocation made through itself or at half its
 * window: a revocation made through one was missing from the other's CRL for up to half of
 * `crl.next_update` (5 min by default, 3.5 days with 7d), and sidecars fed by the other admitted the
 * revoked peer all that time (red-team round 27, F1). Every GET now compares the database's last
 * revocation with the one the cached CRL was made from, and re-signs when they differ.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { CA_PATHS } from '../../src/ca/api.js';
import { initCa } from '../../src/ca/init.js';
import { CA_FILES, loadCaMaterial } from '../../src/ca/layout.js';
import { readCrl } from '../../src/net/crl-reader.js';
import { startTestBackend } from '../support/backend.js';
import { freePort, makeCsr, postToCa, repoRoot, TRUST_DOMAIN, type Teardown } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `warden ca serve -c CONFIG` as a process on a port of its own, once it listens; killed at teardown. */
async function serveCa(t: Teardown, template: string, config: string): Promise<string> {
  const port = await freePort();
  writeFileSync(config, readFileSync(template, 'utf8').replace(/port: \d+/, `port: ${port}`));
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), 'ca', 'serve', '-c', config]);
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 200 && !out.includes('warden CA listening'); i++) await sleep(50);
  if (!out.includes('warden CA listening')) throw new Error(`ca serve did not start: ${out}`);
  return `https://127.0.0.1:${port}`;
}

t.test('two CAs on one database: a revocation through one is on the other’s CRL at once, and its sidecars refuse the peer', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-shared-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const template = join(dir, CA_FILES.config);
  t.match(
    readFileSync(template, 'utf8'),
    /next_update: 10m/,
    'the stock crl.next_update: a CRL re-signed only at half its window lasts 5 min',
  );
  // Both from one directory and one database (ca.md: a second CA shares it during a root rotation).
  const one = await serveCa(t, template, join(dir, 'ca1.yaml'));
  const two = await serveCa(t, template, join(dir, 'ca2.yaml'));
  const material = await loadCaMaterial(dir);
  const rootPem = material.bundlePem;
  const admin = {
    ca: rootPem,
    cert: readFileSync(join(dir, CA_FILES.adminCert), 'utf8'),
    key: readFileSync(join(dir, CA_FILES.adminKey), 'utf8'),
  };
  const anonymous = new Agent({ connect: { ca: rootPem } });
  t.teardown(() => anonymous.close());
  const tokenFor = async (spiffeId: string, dnsNames: string[] = []) =>
    (await postToCa<{ token: string }>(`${one}${CA_PATHS.adminTokens}`, { spiffe_id: spiffeId, dns_names: dnsNames }, admin)).body.token;
  const enroll = async (spiffeId: string) => {
    const csr = await makeCsr({ spiffeId });
    const answer = await postToCa<{ serial: string; certificate: string; chain: string }>(
      `${one}${CA_PATHS.enroll}`,
      { token: await tokenFor(spiffeId), csr: csr.csrPem },
      { ca: rootPem },
    );
    return { serial: answer.body.serial, certPem: answer.body.certificate + answer.body.chain, keyPem: csr.keyPem };
  };
  const crlOf = async (url: string, etag?: string) => {
    const res = await request(`${url}${CA_PATHS.crl}`, { dispatcher: anonymous, headers: etag ? { 'if-none-match': etag } : {} });
    const der = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, etag: String(res.headers.etag), crl: res.statusCode === 200 ? readCrl(der) : undefined };
  };

  const first = await enroll(id('ns/shop/sa/first'));
  const before = await crlOf(two);
  t.notOk(before.crl?.serials.includes(first.serial), 'CA#2 signed its CRL before the revocation');
  t.equal((await crlOf(two, before.etag)).status, 304, 'nothing changed: CA#2 answers 304 with the CRL it holds');
  t.equal((await postToCa(`${one}${CA_PATHS.adminRevocations}`, { serial: first.serial, reason: 'keyCompromise' }, admin)).status, 200);
  const fromOne = await crlOf(one);
  t.ok(fromOne.crl?.serials.includes(first.serial), 'CA#1 (which revoked) lists it');
  const fromTwo = await crlOf(two, before.etag);
  t.equal(fromTwo.status, 200, 'CA#2: a new CRL for the sidecar holding the old one (before: 304 for up to 5 min)');
  t.ok(fromTwo.crl?.serials.includes(first.serial), 'CA#2 lists the revocation made through CA#1 at once');
  t.ok(
    (fromTwo.crl?.number ?? 0n) > (fromOne.crl?.number ?? 0n),
    'signed after CA#1’s, its number is higher (numbers come from the shared database)',
  );
  const again = await crlOf(two, fromTwo.etag);
  t.equal(again.status, 304, 'and no new signing while nothing changes');

  // End to end: a sidecar fed by CA#2 admits a caller, which is revoked through CA#1.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const spiffeId = id('ns/shop/sa/orders');
  const sidecar = await startTestSidecar(t, backend.url, {
    mesh: {
      spiffe_id: spiffeId,
      dns_names: ['localhost'],
      ca: { url: two, fingerprint: material.fingerprint, timeout: '2s' },
      bootstrap_token: await tokenFor(spiffeId, ['localhost']),
      state_dir: mkdtempSync(join(tmpdir(), 'warden-state-')),
      refresh: { bundle: '1s', crl: '500ms' },
    },
  });
  const caller = await enroll(id('ns/shop/sa/frontend'));
  const asCaller = new Agent({ connect: { ca: rootPem, cert: caller.certPem, key: caller.keyPem } });
  t.teardown(() => asCaller.close());
  const call = async () => {
    try {
      const res = await request(`https://localhost:${sidecar.port}/echo`, { dispatcher: asCaller });
      await res.body.dump();
      return res.statusCode;
    } catch {
      return 'refused';
    }
  };
  t.equal(await call(), 200, 'the caller is admitted');
  t.equal((await postToCa(`${one}${CA_PATHS.adminRevocations}`, { serial: caller.serial, reason: 'keyCompromise' }, admin)).status, 200);
  let status: number | 'refused' = 200;
  const revokedAt = performance.now();
  while (status === 200 && performance.now() - revokedAt < 3_000) {
    await sleep(100);
    status = await call();
  }
  t.equal(status, 401, 'the sidecar fed by CA#2 refuses the revoked caller (before: admitted for up to 5 min)');
  t.ok(performance.now() - revokedAt < 1_500, 'within a CRL refresh (500 ms) and a fetch');
});
