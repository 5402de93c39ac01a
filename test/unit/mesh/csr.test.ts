import t from 'tap';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { x509 } from '../../../src/ca/pki.js';
import { createKeyAndCsr } from '../../../src/mesh/csr.js';

const ID = 'spiffe://example.test/ns/shop/sa/orders';

/** The SAN entries of a CSR, as [type, value] (the library hands back a generic extension). */
const sansOf = (csr: x509.Pkcs10CertificateRequest) =>
  csr
    .getExtensions('2.5.29.17')
    .flatMap((e) => new x509.SubjectAlternativeNameExtension(e.rawData).names.items.map((n) => [n.type, n.value]));

t.test('a P-256 key (PKCS#8 PEM) and a signed CSR carrying the SPIFFE ID and the DNS names', async (t) => {
  const { keyPem, csrPem } = await createKeyAndCsr(ID, ['orders.shop', 'localhost']);
  t.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/, 'PKCS#8');
  const key = createPrivateKey(keyPem);
  t.equal(key.asymmetricKeyType, 'ec');
  t.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'P-256');

  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  t.ok(await csr.verify(), 'the CSR signature verifies');
  t.same(sansOf(csr), [
    ['url', ID],
    ['dns', 'orders.shop'],
    ['dns', 'localhost'],
  ]);
  const csrKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  t.same(csrKey.export({ format: 'jwk' }), createPublicKey(key).export({ format: 'jwk' }), 'the CSR is for this key');
});

t.test('every call makes a new key', async (t) => {
  const a = await createKeyAndCsr(ID);
  const b = await createKeyAndCsr(ID);
  t.not(a.keyPem, b.keyPem);
  t.same(sansOf(new x509.Pkcs10CertificateRequest(a.csrPem)), [['url', ID]], 'no DNS names unless configured');
});
