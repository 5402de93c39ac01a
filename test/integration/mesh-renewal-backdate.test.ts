/**
 * A certificate's lifetime is counted from when it was received, not from its backdated notBefore:
 * with `certificates.backdate` 5 min (the default) and `lifetime` 2 min, the renewal point at 70 %
 * of notAfter − notBefore fell before the certificate came, and the sidecar renewed in a loop (35
 * renewals in a minute, each a certificate counted against max_active_per_identity).
 */
import t from 'tap';
import { meshSection, ORDERS, startCaUnderTest } from '../support/ca-harness.js';
import { startIdentity } from '../support/mesh-identity.js';

t.test('a short-lived, backdated certificate is renewed at 70 % of its lifetime, not at once and again', async (t) => {
  const { ca } = await startCaUnderTest(t, { certificates: { lifetime: '2m', backdate: '5m' } });
  const { mesh } = meshSection(ca, ORDERS);
  const { identity, events } = await startIdentity(t, mesh);
  const started = Date.now();
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(events.filter((e) => e.name === 'warden.mesh.rotated').length, 0, 'no renewal in the first 2 s');
  t.equal(ca.list({ spiffe_id: ORDERS }).length, 1, 'one certificate issued');
  const next = Date.parse(identity.status().nextRenewalAt ?? '');
  const inSeconds = (next - started) / 1000;
  // 70 % ± 5 % of 120 s after it was received: 78–90 s (and the time to enroll).
  t.ok(inSeconds > 70 && inSeconds < 100, `the next renewal in ${inSeconds.toFixed(0)} s (70 % of 2 min after receipt)`);
});

t.test('persisted credentials: counted from when workload.pem was written', async (t) => {
  const { ca } = await startCaUnderTest(t, { certificates: { lifetime: '2m', backdate: '5m' } });
  const { mesh } = meshSection(ca, ORDERS);
  await (await startIdentity(t, mesh)).identity.stop();
  const started = Date.now();
  const { identity, events } = await startIdentity(t, { ...mesh, bootstrap_token: undefined });
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(events.filter((e) => e.name === 'warden.mesh.rotated').length, 0, 'not renewed at once on restart');
  const inSeconds = (Date.parse(identity.status().nextRenewalAt ?? '') - started) / 1000;
  t.ok(inSeconds > 65 && inSeconds < 100, `the next renewal in ${inSeconds.toFixed(0)} s`);
});
