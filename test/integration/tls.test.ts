/** TLS options over real handshakes: versions, ALPN, client certificate request and requirement. */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Agent } from 'undici';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ ok: boolean; protocol?: string | false | null; version?: string | null; error?: string }> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ...options });
    socket.once('secureConnect', () => {
      // With TLS 1.3 a refused client certificate is only reported after the handshake: read once.
      socket.once('data', () => undefined);
      setTimeout(() => {
        const result = { ok: !socket.destroyed, protocol: socket.alpnProtocol, version: socket.getProtocol() };
        socket.destroy();
        resolve(result);
      }, 150);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, error: err.code ?? err.message }));
  });
}

t.test('ALPN picks h2 or http/1.1; TLS 1.2 and 1.3 by default; min_version TLSv1.3 refuses 1.2', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  t.match(await handshake(s.port, { ca: s.ca, ALPNProtocols: ['h2', 'http/1.1'] }), { ok: true, protocol: 'h2' });
  t.match(await handshake(s.port, { ca: s.ca, ALPNProtocols: ['http/1.1'] }), { ok: true, protocol: 'http/1.1' });
  t.match(await handshake(s.port, { ca: s.ca }), { ok: true, protocol: false }, 'no ALPN → HTTP/1.1');
  t.match(await handshake(s.port, { ca: s.ca, maxVersion: 'TLSv1.2' }), { ok: true, version: 'TLSv1.2' });
  t.match(
    await handshake(s.port, { ca: s.ca, maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA' }),
    { ok: false },
    'no non-forward-secret suites',
  );
  t.match(await handshake(s.port, { ca: s.ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), { ok: false }, 'TLS 1.1 refused');

  const strict = await startTestSidecar(t, backend.url, { listeners: { inbound: { tls: { min_version: 'TLSv1.3' } } } });
  t.match(await handshake(strict.port, { ca: strict.ca, maxVersion: 'TLSv1.2' }), { ok: false });
  t.match(await handshake(strict.port, { ca: strict.ca }), { ok: true, version: 'TLSv1.3' });
  t.ok(
    strict.events.some((e) => e.name === 'warden.tls.handshake_failed'),
    'failed handshakes raise an event',
  );
  // OpenSSL's message opens with the thread's handle (an address in the process) and ends with a
  // source path and a newline: the event says its reason (red team 29).
  const failed = strict.events.find((e) => e.name === 'warden.tls.handshake_failed');
  t.equal(failed?.['warden.detail'], 'unsupported protocol', "the detail is OpenSSL's reason, no address, path or newline");
});

t.test('client certificates: require refuses callers without one; request accepts both', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const dir = mkdtempSync(join(tmpdir(), 'warden-client-'));
  const client = await createSelfSignedCertificate({ commonName: 'client', dnsNames: [], ipAddresses: [] });
  writeFileSync(join(dir, 'client-ca.pem'), client.certPem);

  const required = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { client_certificates: 'require', client_ca: join(dir, 'client-ca.pem') } } },
  });
  t.match(await handshake(required.port, { ca: required.ca }), { ok: false }, 'no certificate → refused');
  const stranger = await createSelfSignedCertificate({ commonName: 'stranger', dnsNames: [], ipAddresses: [] });
  t.match(
    await handshake(required.port, { ca: required.ca, cert: stranger.certPem, key: stranger.keyPem }),
    { ok: false },
    'unknown issuer → refused',
  );
  const agent = new Agent({ connect: { ca: required.ca, servername: 'localhost', cert: client.certPem, key: client.keyPem } });
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${required.url}/`, agent)).status, 200, 'trusted client certificate → served');

  const requested = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { client_certificates: 'request', client_ca: join(dir, 'client-ca.pem') } } },
  });
  t.match(await handshake(requested.port, { ca: requested.ca }), { ok: true }, 'request: no certificate is fine');
  t.match(await handshake(requested.port, { ca: requested.ca, cert: client.certPem, key: client.keyPem }), { ok: true });
});
