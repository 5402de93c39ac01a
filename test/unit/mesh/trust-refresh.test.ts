import t from 'tap';
import { webcrypto } from 'node:crypto';
import { EC_P256, x509 } from '../../../src/ca/pki.js';
import { verifyCrl } from '../../../src/mesh/trust-refresh.js';
import { startCaUnderTest } from '../../support/ca-harness.js';
import { request, Agent } from 'undici';

t.test('a CRL is applied only when our issuing CA signed it', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const agent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => agent.close());
  const der = Buffer.from(await (await request(`${ca.url}/v1/crl`, { dispatcher: agent })).body.arrayBuffer());
  t.ok(await verifyCrl(der, ca.intermediatePem), 'the CA’s own CRL verifies against its intermediate');
  t.notOk(await verifyCrl(der, ca.rootPem), 'not against another certificate');
  const keys = await webcrypto.subtle.generateKey(EC_P256, false, ['sign', 'verify']);
  const issuer = new x509.X509Certificate(ca.intermediatePem);
  const forged = await x509.X509CrlGenerator.create({
    issuer: issuer.subject,
    signingAlgorithm: EC_P256,
    signingKey: keys.privateKey,
    entries: [],
  });
  t.notOk(await verifyCrl(Buffer.from(forged.rawData), ca.intermediatePem), 'a CRL with the right name but another key is refused');
});
