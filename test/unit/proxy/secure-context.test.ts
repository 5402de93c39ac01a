/**
 * The inbound listener's TLS context never trusts Node's public roots for client certificates
 * (red-team round 21a, suspected): without a client CA — a reload to `client_certificates: none`
 * (restart-only, so the listener still asks for certificates) that also drops `client_ca` — OpenSSL
 * fell back on them. An empty list trusts no one.
 */
import t from 'tap';
import { createSecureContext } from 'node:tls';
import { secureContextOptions } from '../../../src/proxy/listener.js';
import { testCertificate } from '../../support/certs.js';

t.test('no client CA: an empty trust list, not the public roots', async (t) => {
  const cert = await testCertificate();
  const material = { cert: Buffer.from(cert.certPem), key: Buffer.from(cert.keyPem), passphrase: undefined, clientCa: undefined };
  const options = secureContextOptions(
    { cert: cert.certFile, key: cert.keyFile, client_certificates: 'require', min_version: 'TLSv1.2' } as never,
    material,
  );
  t.same(options.ca, [], 'ca is an empty list');
  t.doesNotThrow(() => createSecureContext(options), 'and OpenSSL takes it');
});
