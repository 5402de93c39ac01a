/**
 * The CRL in force, with a real CA that goes down. A sidecar restarted on its credentials without a
 * CRL (crl.der removed, as ca.md suggests after a restore, or damaged) while the CA is down served a
 * revoked caller, was ready, and said only "keeping the last good copy" of a copy it did not have:
 * now it refuses mesh peers with 503 ERR_MESH_CRL_UNAVAILABLE, fails readiness saying why, logs one
 * error and raises one event, and serves again once a CRL is fetched. A CRL past its nextUpdate with
 * the CA down was said nowhere: now one error, one event, a gauge and a readiness detail, and it
 * stays in force.
 */
import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { loadCaMaterial } from '../../src/ca/layout.js';
import { startTestBackend } from '../support/backend.js';
import { libraryCrl, meshSection, startRestartableCa, testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';
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

const startCa = startRestartableCa;

/** The status and body of GET /echo as `w`, or 'refused' when the connection is closed on it. */
async function call(
  port: number,
  w: Workload,
  agents: Map<Workload, Agent>,
): Promise<{ status: number | 'refused'; body: string; type: string }> {
  let agent = agents.get(w);
  if (!agent) {
    agent = new Agent({ connect: { ca: w.bundlePem, cert: w.certPem, key: w.keyPem } });
    agents.set(w, agent);
  }
  try {
    const res = await request(`https://localhost:${port}/echo`, { dispatcher: agent });
    return { status: res.statusCode, body: await res.body.text(), type: String(res.headers['content-type']) };
  } catch {
    return { status: 'refused', body: '', type: '' };
  }
}

const readyz = readyzOf;

async function metric(adminUrl: string, name: string): Promise<number | undefined> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const messages = (logs: Record<string, unknown>[], pattern: RegExp, level?: string) =>
  logs.filter((l) => pattern.test(String(l.msg)) && (level === undefined || l.level === level));

t.test(
  'no CRL in force (crl.der removed, CA down): mesh peers get 503, readiness fails, one error; all resumes once one is fetched',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const ca = await startCa(t);
    const caUrl = ca.server.url;
    const thief = await enrollWorkload(ca.server, id('ns/shop/sa/thief'));
    const good = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
    const { mesh } = meshSection(ca.server, ORDERS);
    // A first run enrolls and holds the CRL that revokes the thief.
    const first = await startIdentity(t, mesh);
    await ca.server.revoke({ serial: thief.serial, reason: 'keyCompromise' });
    t.ok(await eventually(() => first.identity.revocations.isRevoked(thief.serial)), 'the first run applied the revocation');
    await first.identity.stop();

    rmSync(join(mesh.state_dir, 'crl.der'));
    await ca.server.close();
    // The revoked workload also serves: a destination the backend may call through egress.
    const thiefServer = createHttpsServer({ cert: thief.certPem, key: thief.keyPem }, (_req, res) => res.end('thief served'));
    await new Promise<void>((resolve) => thiefServer.listen(0, '127.0.0.1', resolve));
    t.teardown(() => thiefServer.close());
    const thiefUrl = `https://localhost:${(thiefServer.address() as AddressInfo).port}`;
    const s = await startTestSidecar(t, backend.url, {
      mesh: { ...mesh, bootstrap_token: undefined },
      egress: { port: 0, services: { thief: { url: thiefUrl, spiffe_id: thief.spiffeId } } },
    });
    const viaEgress = async () => {
      const res = await request(`http://127.0.0.1:${s.sidecar.egress?.port}/thief/x`);
      return { status: res.statusCode, body: await res.body.text(), retryAfter: res.headers['retry-after'] };
    };
    const out = await viaEgress();
    t.equal(out.status, 503, 'the backend cannot call a destination that nothing says is not revoked');
    t.match(JSON.parse(out.body || '{}'), { code: 'ERR_EGRESS_CRL_UNAVAILABLE', status: 503 }, 'a stable code');
    t.equal(out.retryAfter, '5', 'with Retry-After');
    const agents = new Map<Workload, Agent>();
    t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));

    const refused = await call(s.port, thief, agents);
    t.equal(refused.status, 503, 'the revoked caller is not served');
    t.match(JSON.parse(refused.body || '{}'), { code: 'ERR_MESH_CRL_UNAVAILABLE', status: 503 }, 'a stable code');
    t.match(refused.type, /application\/problem\+json/, 'problem+json');
    t.equal((await call(s.port, good, agents)).status, 503, 'nor is any mesh peer: none can be checked');

    const notReady = await readyz(s.adminUrl);
    t.equal(notReady.status, 503, 'not ready');
    t.match(notReady.body, `no CRL in force: the CA at ${caUrl} could not be reached`, 'readiness says why');
    t.equal(await metric(s.adminUrl, 'warden_crl_in_force'), 0, 'warden_crl_in_force 0');

    await sleep(2000); // refresh.crl 500 ms: several failed retries
    t.equal(messages(s.logs, /no CRL in force/, 'error').length, 1, 'one error line, not one per retry');
    t.equal(messages(s.logs, /crl refresh failed; keeping the last good copy/).length, 0, 'no "last good copy" that does not exist');
    t.equal(s.events.filter((e) => e.name === 'warden.mesh.crl_unavailable').length, 1, 'one warden.mesh.crl_unavailable');

    await ca.restart();
    t.ok(await eventually(() => s.sidecar.mesh?.crl().inForce === true), 'a CRL is fetched once the CA is back');
    t.equal((await call(s.port, good, agents)).status, 200, 'mesh peers are served again, without a restart');
    t.not((await call(s.port, thief, agents)).status, 200, 'and the revoked one refused');
    const after = await viaEgress();
    t.equal(after.status, 502, 'egress to the revoked destination is refused once the CRL says so');
    t.match(JSON.parse(after.body || '{}'), { code: 'ERR_EGRESS_PEER_MISMATCH' });
    t.equal((await readyz(s.adminUrl)).status, 200, 'ready');
    t.equal(await metric(s.adminUrl, 'warden_crl_in_force'), 1, 'warden_crl_in_force 1');
    t.equal(messages(s.logs, /a verified CRL is in force/).length, 1, 'and the log says so');
  },
);

t.test('a damaged crl.der with the CA down: no CRL in force either', async (t) => {
  const ca = await startCa(t);
  const { mesh } = meshSection(ca.server, ORDERS);
  await (await startIdentity(t, mesh)).identity.stop();
  writeFileSync(join(mesh.state_dir, 'crl.der'), Buffer.from('not a CRL'));
  await ca.server.close();
  const { identity, events, logs } = await startIdentity(t, { ...mesh, bootstrap_token: undefined });
  t.equal(identity.revocations.inForce, false, 'nothing in force');
  t.match(identity.crl(), { inForce: false, lastError: /could not be reached/ });
  t.equal(events.filter((e) => e.name === 'warden.mesh.crl_unavailable').length, 1, 'warden.mesh.crl_unavailable');
  t.equal(messages(logs, /unreadable persisted CRL/).length, 1, 'the damaged copy is named');
});

t.test('a CRL past its nextUpdate with the CA down: one error, one event, a gauge, a readiness detail; it stays in force', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = await startCa(t);
  const thief = await enrollWorkload(ca.server, id('ns/shop/sa/thief'));
  const good = await enrollWorkload(ca.server, id('ns/shop/sa/frontend'));
  await ca.server.revoke({ serial: thief.serial, reason: 'keyCompromise' });
  const { mesh } = meshSection(ca.server, ORDERS);
  await (await startIdentity(t, mesh)).identity.stop();
  // The CRL in force lists the thief and is due for replacement in 2 s (the CA allows no less than 1 min).
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const now = Date.now();
  const due = new Date(now + 2000);
  const crl = await libraryCrl(material, {
    thisUpdate: new Date(now - 60_000),
    nextUpdate: due,
    entries: [{ serialNumber: thief.serial, revocationDate: new Date(now - 60_000) }],
  });
  writeFileSync(join(mesh.state_dir, 'crl.der'), crl);
  await ca.server.close();
  const s = await startTestSidecar(t, backend.url, { mesh: { ...mesh, bootstrap_token: undefined } });
  const agents = new Map<Workload, Agent>();
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));

  t.equal(await metric(s.adminUrl, 'warden_crl_stale_seconds'), 0, 'not stale yet: 0');
  await sleep(due.getTime() - Date.now() + 2500);
  const stale = messages(s.logs, /past its nextUpdate/, 'error');
  t.equal(stale.length, 1, 'one error line once nextUpdate passed');
  t.match(stale[0]?.msg, /stays in force/);
  t.equal(s.events.filter((e) => e.name === 'warden.mesh.crl_stale').length, 1, 'one warden.mesh.crl_stale');
  t.ok(((await metric(s.adminUrl, 'warden_crl_stale_seconds')) ?? 0) >= 2, 'warden_crl_stale_seconds counts from nextUpdate');
  const ready = await readyz(s.adminUrl);
  t.equal(ready.status, 200, 'still ready: the last CRL is enforced');
  t.match(ready.body, /past its nextUpdate .* still in force/, 'with a detail that says it is stale');
  t.not((await call(s.port, thief, agents)).status, 200, 'the known-revoked peer is still refused');
  t.equal((await call(s.port, good, agents)).status, 200, 'others are served');

  await ca.restart();
  t.ok(await eventually(() => s.sidecar.mesh?.crl().secondsPastNextUpdate === 0), 'a current CRL once the CA is back');
  t.equal(await metric(s.adminUrl, 'warden_crl_stale_seconds'), 0, 'the gauge back to 0');
  t.equal(messages(s.logs, /a current CRL is in force again/).length, 1, 'and the log says so');
});
