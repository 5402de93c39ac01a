import { networkInterfaces } from 'node:os';
import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { egressLocation } from '../../../src/proxy/egress-redirect.js';

const services = new Set(['payments', 'ledger']);
/** This host's interface addresses, link-local ones (with a zone) left out: a URL cannot name those. */
const ownAddresses = Object.values(networkInterfaces())
  .flatMap((list) => list ?? [])
  .filter((i) => !i.address.includes('%') && !i.address.toLowerCase().startsWith('fe80'))
  .map((i) => i.address);
const pathCall = { status: 307, service: 'payments', path: '/v1/charge?x=1', pathForm: true };
const proxyCall = { ...pathCall, pathForm: false };

t.test('a redirect back to this machine or to another egress service is refused', async (t) => {
  for (const location of [
    'http://127.0.0.1:15001/ledger/admin',
    'http://localhost:9901/tokens/revoke',
    'http://[::1]:15001/x',
    'HTTP://LOCALHOST/x',
    '//127.0.0.1/x',
    'http://a.localhost/x',
    'http://ledger/entries',
    'https:/ledger/entries',
    '/\\127.0.0.1:15001/ledger/x',
    '\\\\127.0.0.1:15001/ledger/x',
    'h\ttp://127.0.0.1:15001/ledger/x',
    'http://0:15001/x',
    'http://0.0.0.0:15001/x',
    'http://[::]:15001/x',
    // Decided by address, not spelling (the sixteenth red-team round: [::ffff:0:0] reached a loopback service).
    'http://[::ffff:0:0]:15001/x',
    'http://[::ffff:0.0.0.0]:15001/x',
    'http://[::ffff:7f00:1]:15001/x',
    'http://0.1.2.3:15001/x',
    'http://[0:0:0:0:0:0:0:0]:15001/x',
    // This host's own interface addresses (an admin listener bound to 0.0.0.0 answers there).
    ...ownAddresses.map((a) => (a.includes(':') ? `http://[${a}]:9901/metrics` : `http://${a}:9901/metrics`)),
    // …and an IPv4 one in its IPv4-mapped form, which the URL parser writes in hex (the review's `[::ffff:192.0.2.2]`).
    ...ownAddresses.filter((a) => !a.includes(':')).map((a) => `http://[::ffff:${a}]:9901/metrics`),
  ]) {
    for (const call of [pathCall, proxyCall]) {
      const verdict = egressLocation(location, call, services);
      t.ok(
        verdict instanceof WardenError && verdict.code === 'ERR_UPSTREAM_PROTOCOL',
        `${location} (${call.pathForm ? 'path' : 'proxy'} form): refused`,
      );
    }
  }
});

t.test('a redirect inside the destination stays inside it; one to another host passes', async (t) => {
  t.equal(egressLocation('/login', pathCall, services), '/payments/login', 'path form: under the service');
  t.equal(egressLocation('receipt?id=2#top', pathCall, services), '/payments/v1/receipt?id=2#top', 'relative to the call');
  t.equal(egressLocation('../../../etc', pathCall, services), '/payments/etc', 'dot segments cannot climb out of the service');
  t.equal(egressLocation('/login', proxyCall, services), '/login', 'proxy form: resolved against http://payments/ by the client');
  t.equal(egressLocation('http://payments/v2', pathCall, services), 'http://payments/v2', 'the same service by name');
  t.equal(egressLocation('https://idp.example/authorize', pathCall, services), 'https://idp.example/authorize');
  // Same scheme, one slash: relative to a WHATWG client, so inside the destination.
  t.equal(
    egressLocation('http:/ledger/admin/delete', pathCall, services),
    '/payments/ledger/admin/delete',
    'http:/x is relative: under the service',
  );
  t.equal(egressLocation('/\t/login', pathCall, services), 'http://login/', 'tabs dropped as a client drops them: //login, another host');
  t.equal(egressLocation('/lo\tgin', pathCall, services), '/payments/login', 'and inside a path');
  t.equal(egressLocation('/login\\x', proxyCall, services), '/login/x', 'proxy form: sent as the client resolves it');
});

t.test("a 201's Location is not followed by clients: passed as it is when absolute", async (t) => {
  t.equal(egressLocation('http://localhost:8080/orders/12', { ...pathCall, status: 201 }, services), 'http://localhost:8080/orders/12');
  t.equal(egressLocation('/orders/12', { ...pathCall, status: 201 }, services), '/payments/orders/12', 'relative: under the service');
});
