import t from 'tap';
import { compileSpiffeMatcher, isSpiffeId, spiffeIdOfSubjectAltName, trustDomainOf } from '../../../src/mesh/spiffe-id.js';

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
