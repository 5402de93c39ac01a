/**
 * Mesh mode end to end, identity changes and root rotation: a changed mesh.spiffe_id, a workload
 * posing as the CA, root rotation with a renewal between its steps and CRLs signed under the new
 * root (kept across a restart with the CA down), a lost bundle.pem (split from mesh.test.ts so tap
 * runs it beside).
 */
import t from 'tap';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpsServer } from 'node:https';
import { createHash, X509Certificate } from 'node:crypto';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { initCa } from '../../src/ca/init.js';
import { startCaServer, type CaServer } from '../../src/ca/server.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, startRestartableCa, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';
import { readyzOf, startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload, type Workload } from '../support/workload.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const ORDERS = id('ns/shop/sa/orders');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startCa = startRestartableCa;

function meshConfig(ca: CaServer, extra: Record<string, unknown> = {}) {
  return meshSection(ca, ORDERS, extra);
}

t.test('a changed mesh.spiffe_id: enroll again with a token, a clear error without one', async (t) => {
  const ca = await startCa(t);
  const config = meshConfig(ca.server).mesh;
  const first = await startIdentity(t, config);
  await first.identity.stop();
  const PAYMENTS = id('ns/payments/sa/api');
  await t.rejects(startIdentity(t, { ...config, spiffe_id: PAYMENTS, bootstrap_token: undefined }), {
    name: 'MeshStartupError',
    code: 'ERR_MESH_TOKEN_REQUIRED',
    message: /holds credentials for .*orders, not mesh\.spiffe_id .*payments.*; set mesh\.bootstrap_token/,
  });
  const renamed = await startIdentity(t, {
    ...config,
    spiffe_id: PAYMENTS,
    bootstrap_token: ca.server.createToken({ spiffe_id: PAYMENTS, dns_names: ['localhost'] }).token,
  });
  t.equal(renamed.identity.status().spiffeId, PAYMENTS, 'enrolled as the new identity');
  t.ok(renamed.events.some((e) => e.name === 'warden.mesh.enrolled'));
  await renamed.identity.stop();
  await t.rejects(
    startIdentity(t, { ...config, bootstrap_token: undefined }),
    /holds credentials for .*payments/,
    'the state dir now holds the new one',
  );
});

t.test('a workload holding the CA’s DNS name cannot pose as the CA: the trust bundle stays, the refusal is an error', async (t) => {
  const ca = await startCa(t, { server: { dns_names: ['localhost'], ip_addresses: ['127.0.0.1'] } });
  const attacker = await enrollWorkload(ca.server, id('ns/shop/sa/attacker'), ['localhost']);
  const port = ca.server.port;
  const { identity, events, logs } = await startIdentity(t, {
    ...meshConfig(ca.server).mesh,
    ca: { url: `https://localhost:${port}`, fingerprint: ca.server.fingerprint, timeout: '2s' },
    refresh: { bundle: '200ms', crl: '1m' },
  });
  const rootsBefore = identity.material().ca;
  const startupEvents = events.length;
  // The attacker takes over the CA's address and serves its own "bundle".
  await ca.server.close();
  let answered = 0;
  const impostor = createHttpsServer({ key: attacker.keyPem, cert: attacker.certPem }, (_req, res) => {
    answered++;
    res.end(attacker.certPem);
  });
  await new Promise<void>((resolve) => impostor.listen(port, '127.0.0.1', resolve));
  t.teardown(() => {
    impostor.closeAllConnections();
    return new Promise((resolve) => impostor.close(resolve));
  });
  const later = () => events.slice(startupEvents);
  const refusal = () => logs.find((l) => l.msg === 'mesh bundle refresh failed; keeping the last good copy');
  const deadline = Date.now() + 10_000;
  while (!refusal() && !later().some((e) => e.name === 'warden.mesh.trust_updated') && Date.now() < deadline) await sleep(50);
  t.same(later(), [], 'no trust_updated: nothing from the impostor was applied');
  t.equal(identity.material().ca, rootsBefore, 'the trust bundle is the CA’s');
  t.equal(answered, 0, 'no request reached the impostor (refused at the handshake)');
  t.match(refusal(), { level: 'error', 'error.type': 'ERR_CA_UNTRUSTED (ERR_CA_IDENTITY_MISMATCH)', err: /not the Warden CA/ });
});

/**
 * The two CA directories of a root rotation (docs/mesh-identity.md): A, the CA now, and B, the one
 * under the new root, sharing one ledger; `caConfig` serves either on a port.
 */
async function rotationCas(extra: Record<string, unknown> = {}) {
  const base = mkdtempSync(join(tmpdir(), 'warden-rotation-'));
  const [dirA, dirB] = [join(base, 'a'), join(base, 'b')];
  await initCa({ trustDomain: TRUST_DOMAIN, dir: dirA });
  await initCa({ trustDomain: TRUST_DOMAIN, dir: dirB });
  const [rootA, rootB] = [readFileSync(join(dirA, 'root.crt'), 'utf8'), readFileSync(join(dirB, 'root.crt'), 'utf8')];
  // The old directory's database, as the docs' step 3 says (`same database.path`).
  const database = { path: join(dirA, 'ca.db') };
  const caConfig = (dir: string, port: number) =>
    resolveCaConfig({ trust_domain: TRUST_DOMAIN, dir, listen: { host: '127.0.0.1', port }, database, log: { level: 'silent' }, ...extra });
  return { dirA, dirB, rootA, rootB, caConfig };
}

t.test('root rotation with a renewal between steps 2 and 3: the renewal applies the new bundle, the CA stays reachable', async (t) => {
  // docs/mesh-identity.md "Root rotation", with a bundle refresh far away: only the renewal can bring the new root.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas({ certificates: { lifetime: '6s', backdate: '0s' } });
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const { identity, events } = await startIdentity(t, {
    ...meshConfig(servers[0]!).mesh,
    renew_at: 0.5,
    renew_jitter: 0,
    max_backoff: '1s',
    refresh: { bundle: '5m', crl: '5m' },
  });
  const changes: string[] = [];
  identity.onChange((what) => changes.push(what));
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 12_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const named = (name: string) => events.filter((e) => e.name === name);

  // Step 2: the old CA serves both roots.
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => named('warden.mesh.rotated').length > 0);
  t.equal(named('warden.mesh.rotated').length, 1, 'renewed after step 2');
  t.equal((identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'material().ca holds both roots');
  t.same(changes, ['certificate', 'bundle'], 'listeners hear of the new bundle as from a refresh');
  t.match(named('warden.mesh.trust_updated').at(-1), { 'warden.detail': 'bundle: 2 root(s)' });

  // Step 3: the CA serves under the new root; the next renewal must reach it.
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await waitFor(() => named('warden.mesh.rotated').length > 1 || named('warden.mesh.renewal_failed').length > 0);
  t.same(named('warden.mesh.renewal_failed'), [], 'no renewal failed');
  t.equal(named('warden.mesh.rotated').length, 2, 'renewed at the CA under the new root');
  t.equal(identity.status().lastError, undefined);
});

t.test('root rotation step 3: CRLs signed by the new intermediate are applied before the sidecar renews', async (t) => {
  // docs/mesh-identity.md "Root rotation": our certificate is still from the old intermediate.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const { identity, logs } = await startIdentity(t, { ...meshConfig(servers[0]!).mesh, refresh: { bundle: '300ms', crl: '300ms' } });
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const caller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
  const ourSerial = identity.material().serial;

  // Step 2: the old CA serves both roots; wait until the sidecar trusts both.
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => (identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length === 2);
  // Step 3: the CA under the new root signs the CRL with the new intermediate.
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await servers[2]!.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  await waitFor(() => identity.revocations.isRevoked(caller.serial));
  t.ok(identity.revocations.isRevoked(caller.serial), 'the revocation is enforced');
  t.equal(identity.material().serial, ourSerial, 'without a renewal in between');
  // The CA restarting on its port may reset a refresh (ERR_CA_UNAVAILABLE): not a CRL refused.
  t.same(
    logs.filter((l) => /crl refresh failed/.test(String(l.msg)) && !String(l['error.type']).startsWith('ERR_CA_UNAVAILABLE')),
    [],
    'no CRL was refused',
  );
});

t.test('root rotation step 3, restarted with the CA down: the saved CRL, signed by the new intermediate, stays in force', async (t) => {
  // A saved crl.der is checked as a fetched one is: its signer is kept beside it (crl-signer.pem),
  // as our own chain holds only the old intermediate until we renew.
  const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
  const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
  t.teardown(() => Promise.all(servers.map((s) => s.close())));
  const port = servers[0]!.port;
  const fingerprint = (pem: string) => `sha256:${createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')}`;
  const { mesh } = meshConfig(servers[0]!, { refresh: { bundle: '300ms', crl: '300ms' } });
  // Step 1: mesh.ca names both roots.
  const config = { ...mesh, ca: { ...mesh.ca, fingerprint: [fingerprint(rootA), fingerprint(rootB)] } };
  const first = await startIdentity(t, config);
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };
  const caller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
  const ourSerial = first.identity.material().serial;
  await servers[0]!.close();
  appendFileSync(join(dirA, 'bundle.pem'), rootB);
  servers.push(await startCaServer({ config: caConfig(dirA, port) }));
  await waitFor(() => (first.identity.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length === 2);
  await servers[1]!.close();
  writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
  servers.push(await startCaServer({ config: caConfig(dirB, port) }));
  await servers[2]!.revoke({ serial: caller.serial, reason: 'keyCompromise' });
  await waitFor(() => first.identity.revocations.isRevoked(caller.serial));
  t.ok(first.identity.revocations.isRevoked(caller.serial), 'the CRL of the new intermediate is enforced');
  await first.identity.stop();
  await servers[2]!.close();

  const again = await startIdentity(t, { ...config, bootstrap_token: undefined });
  t.equal(again.identity.material().serial, ourSerial, 'restarted on the certificate of the old intermediate');
  t.ok(again.identity.revocations.isRevoked(caller.serial), 'the saved CRL is in force again: the revocation is enforced');
  t.same(
    again.logs.filter((l) => /persisted CRL/.test(String(l.msg))),
    [],
    'not ignored',
  );
});

t.test(
  'root rotation step 4: callers under the removed root lose their open connections, callers under the new root keep theirs',
  async (t) => {
    // docs/mesh-identity.md "Root rotation": OpenSSL checked a caller's chain at its handshake only.
    const { connect: h2Connect } = await import('node:http2');
    const { dirA, dirB, rootA, rootB, caConfig } = await rotationCas();
    const servers: CaServer[] = [await startCaServer({ config: caConfig(dirA, 0) })];
    t.teardown(() => Promise.all(servers.map((s) => s.close())));
    const port = servers[0]!.port;
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url, meshConfig(servers[0]!, { refresh: { bundle: '300ms', crl: '5m' } }));
    const roots = () => (s.sidecar.mesh?.material().ca.match(/BEGIN CERTIFICATE/g) ?? []).length;
    const waitFor = async (what: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!what() && Date.now() < deadline) await sleep(50);
    };
    const readyz = () => readyzOf(s.adminUrl);
    t.equal((await readyz()).status, 200, 'ready under the old root');
    const oldCaller = await enrollWorkload(servers[0]!, id('ns/shop/sa/frontend'));
    // Steps 2 and 3: both roots trusted; the CA under the new root issues.
    await servers[0]!.close();
    appendFileSync(join(dirA, 'bundle.pem'), rootB);
    servers.push(await startCaServer({ config: caConfig(dirA, port) }));
    await waitFor(() => roots() === 2);
    await servers[1]!.close();
    writeFileSync(join(dirB, 'bundle.pem'), rootA + rootB);
    servers.push(await startCaServer({ config: caConfig(dirB, port) }));
    const newCaller = await enrollWorkload(servers[2]!, id('ns/shop/sa/checkout'));
    const open = (w: Workload) => {
      const session = h2Connect(s.url, { ca: rootA + rootB, cert: w.certPem, key: w.keyPem });
      session.on('error', () => undefined);
      t.teardown(() => session.destroy());
      return session;
    };
    const get = (session: ReturnType<typeof open>) =>
      new Promise<number | string>((resolve) => {
        let status: number | string = 'NO_RESPONSE';
        try {
          const stream = session.request({ ':path': '/echo' });
          stream.on('response', (h) => (status = Number(h[':status'])));
          stream.on('error', (err: NodeJS.ErrnoException) => (status = err.code ?? 'ERR'));
          stream.resume();
          stream.on('close', () => resolve(status));
          stream.end();
        } catch (err) {
          resolve((err as NodeJS.ErrnoException).code ?? 'ERR');
        }
      });
    const oldSession = open(oldCaller);
    const newSession = open(newCaller);
    t.equal(await get(oldSession), 200, 'a caller under the old root, before step 4');
    t.equal(await get(newSession), 200, 'a caller under the new root');
    const oldClosed = new Promise<boolean>((resolve) => {
      oldSession.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 8000).unref();
    });

    // Step 4: the old root leaves the bundle.
    await servers[2]!.close();
    writeFileSync(join(dirB, 'bundle.pem'), rootB);
    servers.push(await startCaServer({ config: caConfig(dirB, port) }));
    await waitFor(() => roots() === 1);
    t.equal(roots(), 1, 'the sidecar trusts the new root alone');
    // Its own certificate is still from the old root (step 4 applied before it renewed): no peer accepts it.
    const unready = await readyz();
    t.equal(unready.status, 503, 'a sidecar whose certificate no longer chains to its bundle is not ready');
    t.match(unready.body, 'does not chain to the trust bundle', 'and says why');
    const after = await get(oldSession);
    t.not(after, 200, `the old-root caller's open connection is not served (${after})`);
    t.ok(await oldClosed, '…and is closed');
    t.equal(await get(newSession), 200, 'the new-root caller keeps its connection');
    t.notOk(newSession.closed || newSession.destroyed, 'not closed');
    t.ok(
      s.events.some(
        (e) =>
          e.name === 'warden.tls.peer_denied' &&
          e['error.type'] === 'WARDEN_TRUST_ANCHOR_REMOVED' &&
          e['warden.peer.id'] === oldCaller.spiffeId,
      ),
      'warden.tls.peer_denied WARDEN_TRUST_ANCHOR_REMOVED',
    );
    t.ok(
      s.logs.some((l) => l.level === 'warn' && /a CA was removed from the trust bundle: closing 1 open connection/.test(String(l.msg))),
      'a warning says how many connections were closed',
    );
  },
);

t.test('workload.pem without a usable bundle.pem: the configured roots are used, the CA’s bundle fetched', async (t) => {
  const ca = await startCa(t);
  const config = { ...meshConfig(ca.server).mesh, refresh: { bundle: '5m', crl: '5m' } };
  const first = await startIdentity(t, config);
  const good = first.identity.material();
  await first.identity.stop();
  const bundleFile = join(config.state_dir, 'bundle.pem');
  for (const [how, damage] of [
    ['missing', () => rmSync(bundleFile)],
    ['empty', () => writeFileSync(bundleFile, '')],
  ] as const) {
    damage();
    const again = await startIdentity(t, { ...config, bootstrap_token: undefined });
    const m = again.identity.material();
    t.equal(m.serial, good.serial, `${how}: started on the persisted certificate`);
    t.equal(m.ca.trim(), ca.server.rootPem.trim(), `${how}: material().ca holds the CA's root`);
    t.equal(readFileSync(bundleFile, 'utf8').trim(), ca.server.rootPem.trim(), `${how}: bundle.pem restored`);
    t.same(
      again.logs.filter((l) => /refresh failed/.test(String(l.msg))),
      [],
      `${how}: the CA is still reachable`,
    );
    await again.identity.stop();
  }
});
