/**
 * The CA's own identities (`spiffe://<td>/warden/…`: its administrator, its server) chain to the
 * mesh's roots and carry client auth, but are never workload callers: not with an empty
 * peers.allow ("any workload"), not with a `spiffe://<td>/*` rule. Real CA, real sidecars, curl.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CA_FILES } from '../../src/ca/layout.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, ORDERS, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';

t.test('the CA administrator certificate is not a workload peer', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca, dir } = await startCaUnderTest(t);
  const frontend = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`);
  // The administrator's credentials as `warden ca init` wrote them, with the intermediate for the chain.
  const files = mkdtempSync(join(tmpdir(), 'warden-admin-'));
  const adminCert = join(files, 'admin-chain.pem');
  writeFileSync(
    adminCert,
    readFileSync(join(dir, CA_FILES.adminCert), 'utf8') + readFileSync(join(dir, CA_FILES.intermediateCert), 'utf8'),
  );
  const asAdmin = ['--cacert', frontend.bundleFile, '--cert', adminCert, '--key', join(dir, CA_FILES.adminKey)];
  const asFrontend = ['--cacert', frontend.bundleFile, '--cert', frontend.certFile, '--key', frontend.keyFile];
  const routes = [
    { id: 'wild', path: '/wild/*', peers: { allow: [`spiffe://${TRUST_DOMAIN}/*`] } },
    { id: 'any', path: '/*' },
  ];

  // Certificates requested (mtls: optional): the peer-authz stage decides per request.
  const optional = await startTestSidecar(t, backend.url, { ...meshSection(ca, ORDERS, { mtls: 'optional' }), routes });
  const url = `https://localhost:${optional.port}`;
  t.equal((await curl([...asFrontend, `${url}/any`])).status, 200, 'a workload: 200 (empty allow-list)');
  t.equal((await curl([...asFrontend, `${url}/wild/x`])).status, 200, 'a workload: 200 (spiffe://td/*)');
  for (const path of ['/any', '/wild/x']) {
    const r = await curl([...asAdmin, `${url}${path}`]);
    t.equal(r.status, 401, `admin on ${path}: refused`);
    t.match(JSON.parse(r.body), { code: 'ERR_PEER_CERT_INVALID' }, `admin on ${path}: as a CA certificate is`);
  }
  t.ok(
    optional.events.some((e) => e.name === 'warden.tls.peer_denied' && e['warden.rule'] === 'tls:WARDEN_RESERVED_IDENTITY'),
    'warden.tls.peer_denied, rule tls:WARDEN_RESERVED_IDENTITY',
  );

  // Certificates required (default): refused when the connection is admitted.
  const required = await startTestSidecar(t, backend.url, { ...meshSection(ca, ORDERS), routes });
  const before = backend.requests.length;
  const r = await curl([...asAdmin, `https://localhost:${required.port}/any`]);
  t.not(r.status, 200, 'admin: refused at admission');
  t.equal(backend.requests.length, before, 'the backend never saw it');
  t.ok(
    required.events.some((e) => e.name === 'warden.tls.peer_denied' && e['error.type'] === 'WARDEN_RESERVED_IDENTITY'),
    'warden.tls.peer_denied with error.type WARDEN_RESERVED_IDENTITY',
  );
  t.equal((await curl([...asFrontend, `https://localhost:${required.port}/any`])).status, 200, 'a workload: 200');
});
