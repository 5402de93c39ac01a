/**
 * Mutual TLS with certificates from a real Warden CA, sidecar in file mode (certificate files,
 * client_certificates: require, peers.allow): who gets through the handshake, who gets through the
 * route, and what the backend is told about the caller. Real curl and undici clients.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Agent } from 'undici';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';
import { startTestBackend } from '../support/backend.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl, fetchText } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;

/** A backend, a CA, and three workloads: the sidecar's own (localhost), an allowed caller and a stranger. */
/** Writes a certificate and key into `dir` as NAME.crt / NAME.key; curl's arguments to present them. */
function curlCertArgs(dir: string, name: string, pair: { certPem: string; keyPem: string }): string[] {
  writeFileSync(join(dir, `${name}.crt`), pair.certPem);
  writeFileSync(join(dir, `${name}.key`), pair.keyPem);
  return ['--cert', join(dir, `${name}.crt`), '--key', join(dir, `${name}.key`)];
}

async function fileModeParties(t: { teardown(fn: () => unknown): void }) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca } = await startCaUnderTest(t);
  const server = await enrollWorkload(ca, id('ns/shop/sa/orders'), ['localhost']);
  const frontend = await enrollWorkload(ca, id('ns/shop/sa/frontend'));
  const stranger = await enrollWorkload(ca, id('ns/other/sa/batch'));
  return { backend, server, frontend, stranger };
}

t.test('file-mode mTLS: handshake policy, peers.allow per route, X-Forwarded-Client-Cert', async (t) => {
  const { backend, server, frontend, stranger } = await fileModeParties(t);

  const s = await startTestSidecar(t, backend.url, {
    listeners: {
      inbound: { tls: { cert: server.certFile, key: server.keyFile, client_certificates: 'require', client_ca: server.bundleFile } },
    },
    peers: { allow: [id('ns/shop/*')] },
    routes: [
      { id: 'api', path: '/*' },
      { id: 'ops', path: '/ops/*', peers: { allow: [id('ns/other/sa/batch')] } },
    ],
  });
  const url = `https://localhost:${s.port}`;
  const as = (w: typeof frontend) => ['--cacert', server.bundleFile, '--cert', w.certFile, '--key', w.keyFile];

  const ok = await curl([...as(frontend), '-H', 'x-forwarded-client-cert: By=evil;URI=spiffe://example.test/ns/admin', `${url}/echo`]);
  t.equal(ok.status, 200, 'an allowed workload gets through (curl, HTTP/2 by ALPN)');
  const seen = JSON.parse(ok.body) as { headers: Record<string, string> };
  t.match(
    seen.headers['x-forwarded-client-cert'],
    new RegExp(`^Hash=[0-9a-f]{64};URI=${frontend.spiffeId.replace(/[/.]/g, '\\$&')}$`),
    'the backend learns the verified caller; the forged header is gone',
  );

  const denied = await curl([...as(stranger), `${url}/echo`]);
  t.equal(denied.status, 403);
  t.match(JSON.parse(denied.body), { code: 'ERR_AUTHZ_PEER_DENIED' });
  t.equal((await curl([...as(stranger), `${url}/ops/run`])).status, 200, 'a route with its own peers list admits its caller');
  t.equal((await curl([...as(frontend), `${url}/ops/run`])).status, 403, '…and only that caller');
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.peer_denied' && e['warden.peer.id'] === stranger.spiffeId),
    'the refusal is an event naming the caller',
  );

  const before = backend.requests.length;
  const none = await curl(['--cacert', server.bundleFile, `${url}/echo`]);
  t.not(none.code, 0, 'no client certificate: the handshake fails');
  const self = await createSelfSignedCertificate({ commonName: 'intruder', dnsNames: [], ipAddresses: [] });
  const selfSigned = await curl(['--cacert', server.bundleFile, ...curlCertArgs(dirname(frontend.certFile), 'self', self), `${url}/echo`]);
  t.not(selfSigned.code, 0, 'a self-signed client certificate: the handshake fails');
  t.equal(backend.requests.length, before, 'none of them reached the backend');
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.handshake_failed'),
    'failed handshakes are events',
  );

  const agent = new Agent({ allowH2: true, connect: { ca: server.bundlePem, cert: frontend.certPem, key: frontend.keyPem } });
  t.teardown(() => agent.close());
  const viaUndici = await fetchText(`${url}/echo`, agent);
  t.equal(viaUndici.status, 200, 'undici with a client certificate over h2');
});

t.test('a certificate from another trust domain is refused at the handshake', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca } = await startCaUnderTest(t);
  const server = await enrollWorkload(ca, id('ns/shop/sa/orders'), ['localhost']);
  const s = await startTestSidecar(t, backend.url, {
    listeners: {
      inbound: { tls: { cert: server.certFile, key: server.keyFile, client_certificates: 'require', client_ca: server.bundleFile } },
    },
    peers: { allow: [id('ns/*')] },
  });
  const { initCa } = await import('../../src/ca/init.js');
  const { startCaServer } = await import('../../src/ca/server.js');
  const { resolveCaConfig } = await import('../../src/config/ca-load.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const otherDir = join(mkdtempSync(join(tmpdir(), 'warden-other-ca-')), 'ca');
  await initCa({ trustDomain: 'other.test', dir: otherDir });
  const other = await startCaServer({
    config: resolveCaConfig({
      trust_domain: 'other.test',
      dir: otherDir,
      listen: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
    }),
  });
  t.teardown(() => other.close());
  const foreign = await enrollWorkload(other, 'spiffe://other.test/ns/shop/sa/frontend');
  const r = await curl([
    '--cacert',
    server.bundleFile,
    '--cert',
    foreign.certFile,
    '--key',
    foreign.keyFile,
    `https://localhost:${s.port}/echo`,
  ]);
  t.not(r.code, 0, 'refused');
  t.equal(backend.requests.length, 0);
});

t.test('file mode, client_certificates: request: a peers.allow route needs a certificate', async (t) => {
  const { backend, server, frontend, stranger } = await fileModeParties(t);
  const s = await startTestSidecar(t, backend.url, {
    listeners: {
      inbound: { tls: { cert: server.certFile, key: server.keyFile, client_certificates: 'request', client_ca: server.bundleFile } },
    },
    routes: [
      { id: 'pay', path: '/pay/*', peers: { allow: [id('ns/shop/sa/frontend')] } },
      { id: 'open', path: '/*' },
    ],
  });
  const url = `https://localhost:${s.port}`;
  const as = (w: typeof frontend) => ['--cacert', server.bundleFile, '--cert', w.certFile, '--key', w.keyFile];

  t.equal((await curl([...as(stranger), `${url}/pay/x`])).status, 403, 'a workload outside the list: 403');
  const before = backend.requests.length;
  const none = await curl(['--cacert', server.bundleFile, `${url}/pay/x`]);
  t.equal(none.status, 401, 'no certificate is not a way around the list');
  t.match(JSON.parse(none.body), { code: 'ERR_PEER_CERT_REQUIRED' });
  t.equal(backend.requests.length, before, 'the backend never saw it');
  t.equal((await curl([...as(frontend), `${url}/pay/x`])).status, 200, 'the listed workload gets through');
  t.equal((await curl(['--cacert', server.bundleFile, `${url}/open`])).status, 200, 'a route without a list needs no certificate');

  // A self-signed certificate claiming the listed workload's SPIFFE ID: refused, and never recorded
  // as that workload in events or traces (a Jaeger search by warden.peer.id trusts it).
  const forged = await createSelfSignedCertificate({ commonName: 'forged', dnsNames: [], ipAddresses: [], uris: [frontend.spiffeId] });
  const claimed = await curl([
    '--cacert',
    server.bundleFile,
    ...curlCertArgs(dirname(frontend.certFile), 'forged', forged),
    `${url}/pay/x`,
  ]);
  t.equal(claimed.status, 401, 'an unverified certificate naming the listed workload: 401');
  t.match(JSON.parse(claimed.body), { code: 'ERR_PEER_CERT_INVALID' });
  const refusal = s.events.findLast((e) => e['warden.code'] === 'ERR_PEER_CERT_INVALID');
  t.equal(refusal?.['warden.peer.id'], undefined, 'the event does not name it as the caller');
  t.equal(refusal?.['warden.peer.presented_id'], frontend.spiffeId, 'but says what it claimed');
  t.equal(backend.requests.length, before + 2);
});
