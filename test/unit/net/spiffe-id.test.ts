import t from 'tap';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import {
  compileSpiffeMatcher,
  isReservedSpiffePath,
  isSpiffeId,
  parseSpiffeId,
  spiffeIdOfCertificate,
  spiffeIdOfSubjectAltName,
  trustDomainOf,
} from '../../../src/net/spiffe-id.js';
import { startCaUnderTest } from '../../support/ca-harness.js';
import { enrollWorkload } from '../../support/workload.js';

t.test('valid and invalid SPIFFE IDs', async (t) => {
  for (const ok of ['spiffe://example.org/ns/shop/sa/orders', 'spiffe://td/a', 'spiffe://a.b-c_d/x.y/z-1']) t.ok(isSpiffeId(ok), ok);
  for (const bad of [
    'spiffe://example.org',
    'spiffe://example.org/',
    'spiffe://Example.org/a',
    'spiffe://example.org/a//b',
    'spiffe://example.org/a/../b',
    'spiffe://example.org/./b',
    'spiffe://example.org:8443/a',
    'spiffe://user@example.org/a',
    'spiffe://example.org/a?x=1',
    'spiffe://example.org/a#f',
    'https://example.org/a',
    'spiffe:///a',
  ])
    t.notOk(isSpiffeId(bad), bad);
  t.equal(trustDomainOf('spiffe://example.org/ns/a'), 'example.org');
});

t.test('the SPIFFE ID of a certificate: exactly one valid URI SAN', async (t) => {
  t.equal(spiffeIdOfSubjectAltName('URI:spiffe://td/ns/a/sa/b, DNS:localhost'), 'spiffe://td/ns/a/sa/b');
  t.equal(spiffeIdOfSubjectAltName('DNS:localhost, URI:spiffe://td/x'), 'spiffe://td/x');
  t.equal(spiffeIdOfSubjectAltName('URI:spiffe://td/a, URI:spiffe://td/b'), undefined, 'two URI SANs: not an SVID');
  t.equal(spiffeIdOfSubjectAltName('URI:https://td/a'), undefined);
  t.equal(spiffeIdOfSubjectAltName('DNS:localhost'), undefined);
  t.equal(spiffeIdOfSubjectAltName(undefined), undefined);
});

t.test('allow-list patterns: exact ids and /* prefixes on segment boundaries', async (t) => {
  const allowed = compileSpiffeMatcher(['spiffe://td/ns/payments/*', 'spiffe://td/ns/shop/sa/frontend']);
  t.ok(allowed('spiffe://td/ns/payments/sa/api'));
  t.ok(allowed('spiffe://td/ns/shop/sa/frontend'));
  t.notOk(allowed('spiffe://td/ns/payments'), 'the prefix itself is not below it');
  t.notOk(allowed('spiffe://td/ns/paymentsX/sa/api'));
  t.notOk(allowed('spiffe://td/ns/shop/sa/frontend2'));
  t.notOk(allowed('spiffe://other/ns/payments/sa/api'));
  t.notOk(compileSpiffeMatcher([])('spiffe://td/a'));
});

t.test('parseSpiffeId: parts, or an error with the reason', async (t) => {
  t.same(parseSpiffeId('spiffe://example.org/ns/shop/sa/orders'), { trustDomain: 'example.org', path: '/ns/shop/sa/orders' });
  t.throws(() => parseSpiffeId('spiffe://example.org'), { code: 'ERR_SPIFFE_ID_INVALID', message: /no path/ });
  t.throws(() => parseSpiffeId('spiffe://EXAMPLE.org/a'), { name: 'SpiffeIdError', message: /trust domain/ });
  t.throws(() => parseSpiffeId('spiffe://example.org/a%2Fb'), { message: /percent-encoding/ });
  t.throws(() => parseSpiffeId('SPIFFE://example.org/a'), { message: /scheme/ });
  t.throws(() => parseSpiffeId(`spiffe://${'a'.repeat(256)}/x`), { message: /trust domain/ }, 'trust domain ≤ 255');
  t.throws(() => parseSpiffeId(`spiffe://td/${'a'.repeat(2040)}`), { message: /2048/ });
  t.ok(isSpiffeId(`spiffe://${'a'.repeat(255)}/x`));
});

t.test('spiffeIdOfCertificate: Node X509Certificate and tls.PeerCertificate alike', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const w = await enrollWorkload(ca, 'spiffe://example.test/ns/shop/sa/orders', ['localhost']);
  const cert = new X509Certificate(w.certPem);
  t.equal(spiffeIdOfCertificate(cert), 'spiffe://example.test/ns/shop/sa/orders');
  t.equal(spiffeIdOfCertificate(new X509Certificate(ca.intermediatePem)), undefined, 'a CA certificate has no SPIFFE ID');
  t.equal(spiffeIdOfCertificate({ subjectaltname: 'DNS:localhost, URI:spiffe://td/a/b' } as PeerCertificate), 'spiffe://td/a/b');
  t.equal(spiffeIdOfCertificate({} as PeerCertificate), undefined, 'no certificate presented');
  t.equal(spiffeIdOfCertificate(undefined), undefined);
});

t.test('a DNS name cannot smuggle in a URI SAN (Node quotes entries with ", ")', async (t) => {
  // Node renders a SAN value holding ", " as a JSON string: DNS:"x, URI:spiffe://td/admin"
  t.equal(spiffeIdOfSubjectAltName('DNS:"x, URI:spiffe://td/admin"'), undefined);
  t.equal(spiffeIdOfSubjectAltName('URI:spiffe://td/real, DNS:"x, URI:spiffe://td/admin"'), undefined, 'two URI-looking entries: refused');
  t.equal(spiffeIdOfSubjectAltName('URI:"spiffe://td/a, b"'), undefined);
});

t.test('isReservedSpiffePath: /warden and under it, in any letter case (red team 28)', async (t) => {
  for (const path of ['/warden', '/warden/', '/warden/admin', '/warden/ca', '/Warden/admin', '/WARDEN', '/wArDeN/ca/x'])
    t.ok(isReservedSpiffePath(path), `${path}: reserved`);
  for (const path of ['/', '/wardens', '/warden-x/admin', '/ns/warden/admin', '/x/warden', '/Wardens/admin', ''])
    t.notOk(isReservedSpiffePath(path), `${path}: a workload's`);
});
