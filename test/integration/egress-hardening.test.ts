/**
 * Egress against hostile setups: a destination that is no workload (the CA itself). Real CA, real
 * sidecars, real TLS.
 */
import t from 'tap';
import { request } from 'undici';
import { makeCsr, meshSection, ORDERS, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';

const CA_IDENTITY = `spiffe://${TRUST_DOMAIN}/warden/ca`;

t.test('egress never reaches the CA: the backend cannot renew the workload identity with a key of its own', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  // Load refuses this destination (test/unit/config/load.test.ts); here it is set after load, as a
  // path other than the YAML might, and the egress identity check must refuse it on its own.
  const orders = await startTestSidecar(
    t,
    'http://127.0.0.1:1',
    {
      ...meshSection(ca, ORDERS),
      egress: { port: 0, services: { 'warden-ca': { url: ca.url, spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/any/sa/workload` } } },
    },
    (config) => {
      const service = config.egress?.services['warden-ca'];
      if (service) service.spiffe_id = CA_IDENTITY;
    },
  );
  const renewedBefore = eventsNamed('warden.ca.renewed').length;
  const csr = await makeCsr({ spiffeId: ORDERS, dnsNames: ['localhost'] });
  const res = await request(`http://127.0.0.1:${orders.sidecar.egress?.port}/warden-ca/v1/renew`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: csr.csrPem }),
  });
  const body = (await res.body.json()) as { code?: string; certificate?: string };
  t.equal(res.statusCode, 502, 'refused');
  t.equal(body.code, 'ERR_EGRESS_PEER_MISMATCH', 'as a destination that is not the one expected');
  t.equal(body.certificate, undefined, 'no certificate for a key the backend chose');
  t.equal(eventsNamed('warden.ca.renewed').length, renewedBefore, 'the CA renewed nothing');
});
