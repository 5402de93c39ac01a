/**
 * Egress against hostile setups: a destination that is no workload (the CA itself), a backend that
 * forges what only a proxy asserts, a destination answering with a status no HTTP client has a
 * class for. Real CA, real sidecars, real TLS.
 */
import t from 'tap';
import { createServer as createTlsServer } from 'node:tls';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { makeCsr, meshSection, ORDERS, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startTestBackend } from '../support/backend.js';
import { enrollWorkload } from '../support/workload.js';

const CA_IDENTITY = `spiffe://${TRUST_DOMAIN}/warden/ca`;
const PAYMENTS = `spiffe://${TRUST_DOMAIN}/ns/payments/sa/api`;

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

t.test('egress is the first hop: what only a proxy asserts never leaves, though the destination trusts the calling sidecar', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The destination believes proxy fields from 127.0.0.1, where the calling sidecars are.
  const payments = await startTestSidecar(t, backend.url, { ...meshSection(ca, PAYMENTS), headers: { trusted_proxies: ['127.0.0.1'] } });
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: { port: 0, services: { payments: { url: `https://localhost:${payments.port}`, spiffe_id: PAYMENTS } } },
  });
  const forged = {
    'x-forwarded-for': '10.9.9.9',
    forwarded: 'for=10.9.9.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'admin.example',
    'x-forwarded-user': 'admin',
    'x-forwarded-client-cert': `By=x;URI=spiffe://${TRUST_DOMAIN}/ns/admin/sa/root`,
    'x-real-ip': '10.9.9.9',
    'true-client-ip': '10.9.9.9',
    'client-cert': ':AAAA:',
    'remote-user': 'admin',
    'x-envoy-peer-metadata': 'evil',
    'x-amzn-oidc-identity': 'admin',
  };
  const res = await request(`http://127.0.0.1:${orders.sidecar.egress?.port}/payments/echo`, {
    headers: { ...forged, 'x-app': 'kept', authorization: 'Bearer kept' },
  });
  t.equal(res.statusCode, 200);
  const seen = ((await res.body.json()) as { headers: Record<string, string> }).headers;
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For names the calling sidecar only');
  t.equal(seen['x-forwarded-proto'], 'https', 'X-Forwarded-Proto is the destination sidecar’s own');
  t.equal(seen['x-forwarded-host'], `localhost:${payments.port}`, 'X-Forwarded-Host too');
  t.match(seen['x-forwarded-client-cert'], new RegExp(`^By=.*URI=${ORDERS.replaceAll('.', '\\.')}$`), 'the caller is the orders workload');
  for (const name of [
    'forwarded',
    'x-forwarded-user',
    'true-client-ip',
    'client-cert',
    'remote-user',
    'x-envoy-peer-metadata',
    'x-amzn-oidc-identity',
  ]) {
    t.equal(seen[name], undefined, `${name} never leaves egress`);
  }
  t.equal(seen['x-app'], 'kept', 'application headers pass');
  t.equal(seen.authorization, 'Bearer kept', 'and the backend’s credentials for the destination');
});

t.test('a destination status outside 100–599 is 502 ERR_UPSTREAM_PROTOCOL, as from the backend inbound', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const destination = await enrollWorkload(ca, PAYMENTS, ['localhost']);
  // The destination's own sidecar would refuse these (upstream.status): this one holds the ID and writes raw HTTP.
  const server = createTlsServer({ key: destination.keyPem, cert: destination.certPem }, (socket) => {
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = /^GET \/s(\d{3}) /.exec(head)?.[1] ?? '404';
      head = head.slice(end + 4);
      socket.write(`HTTP/1.1 ${status} Odd\r\nContent-Length: 2\r\n\r\nok`);
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: {
      port: 0,
      services: { payments: { url: `https://localhost:${(server.address() as AddressInfo).port}`, spiffe_id: PAYMENTS } },
    },
  });
  const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
  for (const status of [600, 999]) {
    const res = await request(`${egress}/payments/s${status}`);
    t.equal(res.statusCode, 502, `${status}: 502`);
    t.match(await res.body.text(), /"code":"ERR_UPSTREAM_PROTOCOL"/, `${status}: ERR_UPSTREAM_PROTOCOL`);
  }
  t.ok(
    orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'egress.status'),
    'warden.upstream.failed, rule egress.status',
  );
  const last = await request(`${egress}/payments/s599`);
  t.equal(last.statusCode, 599, '599 passes');
  t.equal(await last.body.text(), 'ok');
});
