/**
 * The CA asks every caller for a client certificate (renewal and admin calls authenticate with
 * one), so a fabricated chain cost it as much as it cost a sidecar: the same admission control of
 * failed handshakes per client network (src/net/handshake-admission.ts). Real sockets: the failures
 * from 127.0.0.1, an anonymous caller from 127.0.0.2, which the CA tells apart.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';
import { startCaUnderTest } from '../support/ca-harness.js';

t.test('the CA refuses new connections of a network that keeps failing handshakes, before any TLS', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t, {}, { limits: { handshakeFailures: { burst: 3, perMs: 1500 } } });
  const stranger = await createSelfSignedCertificate({ commonName: 'stranger' }); // not of the CA: does not verify
  /** One TLS connection: 'secure' once the handshake is done, else 'closed' (no ServerHello at all: 'silent'). */
  const attempt = (localAddress: string, withCert: boolean) =>
    new Promise<'secure' | 'closed' | 'silent'>((resolve) => {
      let bytes = 0;
      const socket = tlsConnect({
        socket: netConnect({ host: '127.0.0.1', port: ca.port, localAddress }),
        servername: 'localhost',
        ca: ca.rootPem,
        ...(withCert ? { cert: stranger.certPem, key: stranger.keyPem } : {}),
      });
      socket.on('secureConnect', () => {
        socket.end();
        resolve('secure');
      });
      socket.on('data', (d: Buffer) => (bytes += d.length));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(bytes === 0 && socket.bytesWritten > 0 && !socket.authorized ? 'silent' : 'closed'));
    });
  for (let i = 0; i < 5; i++) t.equal(await attempt('127.0.0.1', false), 'secure', `anonymous caller ${i + 1}: never counted`);
  for (let i = 0; i < 3; i++)
    t.equal(await attempt('127.0.0.1', true), 'secure', `a certificate the CA does not verify ${i + 1}: a failure`);
  t.not(await attempt('127.0.0.1', false), 'secure', 'past the burst: 127.0.0.1 is closed before its handshake');
  t.equal(await attempt('127.0.0.2', false), 'secure', 'another client network is served');
  let back = 'closed';
  for (let i = 0; i < 40 && back !== 'secure'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    back = await attempt('127.0.0.1', false);
  }
  t.equal(back, 'secure', 'admitted again once a token is back');
  for (let i = 0; i < 40 && eventsNamed('warden.tls.handshake_throttled').length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  t.match(eventsNamed('warden.tls.handshake_throttled'), [{ 'client.address': '127.0.0.1', 'warden.rule': 'ca.handshake_failures' }]);
});
