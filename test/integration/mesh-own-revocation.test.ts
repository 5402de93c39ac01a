/**
 * A sidecar whose own certificate the CA revokes (docs/adversarial.md 184), with a real CA: every
 * peer refuses it, so it enrolls again at once with an unspent bootstrap token, or, without one,
 * stops renewing with an error and fails readiness — it stayed ready until its renewal time.
 */
import t from 'tap';
import { meshSection, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';
import { startTestBackend } from '../support/backend.js';
import { readyzOf, startTestSidecar } from '../support/sidecar.js';

const ORDERS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(done: () => boolean, tries = 80): Promise<boolean> {
  for (let i = 0; i < tries && !done(); i++) await sleep(100);
  return done();
}

t.test('revoked with an unspent token: enrolled again at once, with a new certificate', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  await (await startIdentity(t, mesh)).identity.stop(); // spends the first token
  // Restarted on its persisted certificate, with a new token it has not needed yet.
  const token = ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] }).token;
  const { identity, events, logs } = await startIdentity(t, { ...mesh, bootstrap_token: token });
  const revokedSerial = identity.material().serial;
  t.notOk(
    events.some((e) => e.name === 'warden.mesh.enrolled'),
    'started on the persisted certificate',
  );

  await ca.revoke({ serial: revokedSerial, reason: 'superseded' });
  t.ok(await eventually(() => events.some((e) => e.name === 'warden.mesh.enrolled')), 'enrolled again (refresh.crl 500 ms)');
  t.not(identity.material().serial, revokedSerial, 'on a new certificate');
  t.notOk(identity.status().revoked, 'not revoked');
  t.ok(
    logs.some((l) => l.level === 'error' && /revoked this sidecar’s own certificate/.test(String(l.msg))),
    'an error in the log says why',
  );
  t.same(
    ca
      .listTokens({ spiffe_id: ORDERS })
      .map((x) => x.state)
      .sort(),
    ['used', 'used'],
    'the new token spent on it',
  );
});

t.test('revoked without a token: readiness fails, renewal stops with an error that says what to do', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca } = await startCaUnderTest(t);
  const { mesh } = meshSection(ca, ORDERS);
  const s = await startTestSidecar(t, backend.url, { mesh });
  const ready = () => readyzOf(s.adminUrl);
  t.equal((await ready()).status, 200, 'ready');
  const serial = s.sidecar.mesh?.material().serial as string;

  await ca.revoke({ serial, reason: 'superseded' });
  t.ok(await eventually(() => s.sidecar.mesh?.status().revoked === true), 'the sidecar sees its own serial on the CRL');
  const after = await ready();
  t.equal(after.status, 503, 'not ready');
  t.match(after.body, `certificate ${serial} revoked by the CA`);
  t.ok(
    await eventually(() => s.events.some((e) => e.name === 'warden.mesh.renewal_failed' && e['error.type'] === 'ERR_MESH_CERT_REVOKED')),
    'renewal_failed, ERR_MESH_CERT_REVOKED',
  );
  t.match(
    s.events.find((e) => e['error.type'] === 'ERR_MESH_CERT_REVOKED')?.['warden.detail'],
    /set it as mesh\.bootstrap_token and restart/,
  );
});
