/**
 * A client certificate that expires after the handshake: OpenSSL checks validity only in a full
 * handshake, so a resumed TLS session or a kept-alive connection outlived it, and a certificate
 * revoked and then expired (dropped from the CRL) was served again. Both are refused now.
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { meshSection, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';

const TD = TRUST_DOMAIN;
const id = (path: string) => `spiffe://${TD}/${path}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('an expired client certificate is refused on a resumed session and on an open connection', async (t) => {
  // Two CAs of the same material (one trust domain): the second issues 3 s certificates.
  const caOf = async (extra: Record<string, unknown>) => (await startCaUnderTest(t, extra)).ca;
  const ca = await caOf({});
  const shortLived = await caOf({ certificates: { lifetime: '3s', backdate: '0s' } });
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ORDERS = id('ns/shop/sa/orders');
  const s = await startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { refresh: { bundle: '5m', crl: '5m' } }));
  const caller = await enrollWorkload(shortLived, id('ns/shop/sa/caller'));
  const notAfter = Date.parse(new X509Certificate(caller.certPem).validTo);

  /** One TLS connection: GET /echo, then (keep-alive) a second GET once `between` has run. */
  const exchange = (session?: Buffer, between?: () => Promise<void>) =>
    new Promise<{ statuses: string[]; reused: boolean; session?: Buffer }>((resolve) => {
      let saved: Buffer | undefined;
      let text = '';
      let reused = false;
      const socket = connect({
        host: '127.0.0.1',
        port: s.port,
        servername: 'localhost',
        ca: caller.bundlePem,
        cert: caller.certPem,
        key: caller.keyPem,
        session,
        ALPNProtocols: ['http/1.1'],
      });
      const statuses = () => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1] as string);
      socket.on('session', (s: Buffer) => (saved = s));
      socket.on('secureConnect', () => {
        reused = socket.isSessionReused();
        socket.write('GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
        if (!between) return socket.end();
        void (async () => {
          while (statuses().length === 0 && !socket.destroyed) await sleep(20);
          await between();
          socket.end('GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        })();
      });
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve({ statuses: statuses(), reused, session: saved }));
    });
  const expiry = async () => {
    while (Date.now() < notAfter + 1200) await sleep(100);
  };

  const kept = await exchange(undefined, expiry);
  t.same(kept.statuses, ['200', '401'], 'one connection: served while valid, refused once the certificate has expired');
  const resumed = await exchange(kept.session);
  t.same(resumed.statuses, [], 'a resumed session with the expired certificate is not served');
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.peer_denied' && e['error.type'] === 'CERT_HAS_EXPIRED'),
    'warden.tls.peer_denied CERT_HAS_EXPIRED',
  );
});
