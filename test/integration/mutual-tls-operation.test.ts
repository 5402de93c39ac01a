/**
 * File mode (no mesh), an OpenAPI operation whose security accepts a `mutualTLS` scheme, no
 * `peers.allow`: the backend is told who called (X-Forwarded-Client-Cert), as in mesh mode. Before,
 * no peers stage ran there and the backend never learnt which certificate had met the scheme
 * (docs/adversarial.md 215).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';
import { enrollWorkload } from '../support/workload.js';

t.test('a mutualTLS operation tells the backend which certificate called; a presented bad one is refused', async (t) => {
  const { ca } = await startCaUnderTest(t, {});
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const caller = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/caller`);
  const stranger = await createSelfSignedCertificate({ commonName: 'stranger' }); // not of client_ca
  const document = openApiFile(
    JSON.stringify({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      components: { securitySchemes: { mtls: { type: 'mutualTLS' } } },
      paths: {
        '/secure': { get: { operationId: 'secure', security: [{ mtls: [] }], responses: { '200': { description: 'ok' } } } },
        '/open': { get: { operationId: 'open', security: [], responses: { '200': { description: 'ok' } } } },
      },
    }),
  );
  const s = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { client_certificates: 'request', client_ca: caller.bundleFile } } },
    openapi: { document, allow_public: true },
    tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
  });
  const get = (path: string, who?: { certPem: string; keyPem: string }) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: s.port,
          servername: 'localhost',
          path,
          ca: s.ca,
          cert: who?.certPem,
          key: who?.keyPem,
          agent: false,
          // Forged by the client: never believed. The request id is kept only from a verified caller.
          headers: { 'x-forwarded-client-cert': 'Hash=forged;URI=spiffe://example.org/ns/admin', 'x-request-id': 'caller-id-1' },
        },
        (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.once('error', reject);
      req.end();
    });
  const xfccs = () => backend.requests.map((r) => r.headers['x-forwarded-client-cert']);

  t.equal(await get('/secure', caller), 200, 'a verified certificate meets the scheme');
  const hash = createHash('sha256').update(new X509Certificate(caller.certPem).raw).digest('hex');
  t.same(xfccs(), [`Hash=${hash};URI=spiffe://${TRUST_DOMAIN}/ns/shop/sa/caller`], 'the backend is told who called');
  t.equal(await get('/secure'), 401, 'no certificate: the scheme is not met (ERR_PEER_CERT_REQUIRED)');
  t.equal(await get('/secure', stranger), 401, 'a certificate client_ca does not verify is refused, not ignored');
  t.equal(backend.requests.length, 1, 'neither reached the backend');
  t.equal(await get('/open', caller), 200, 'an operation without the scheme');
  t.equal(xfccs()[1], undefined, 'passes no client certificate, and not the forged one');
  t.equal(await get('/open'), 200);
  t.same(
    backend.requests.map((r) => r.headers['x-request-id'] === 'caller-id-1'),
    [true, true, false],
    "x-request-id: a verified caller's kept, an unauthenticated caller's replaced (docs/adversarial.md 276)",
  );
});
