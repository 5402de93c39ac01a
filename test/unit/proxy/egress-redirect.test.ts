import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { checkNamedLocation, egressLocation, MAX_NAME_LOOKUPS, type HostLookup } from '../../../src/proxy/egress-redirect.js';

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
  t.equal(egressLocation('/login', proxyCall, services), 'http://payments/login', 'proxy form: absolute, on the service');
  t.equal(egressLocation('http://payments/v2', pathCall, services), 'http://payments/v2', 'the same service by name');
  t.same(
    egressLocation('https://idp.example/authorize', pathCall, services),
    { href: 'https://idp.example/authorize', hostname: 'idp.example' },
    'a host name: resolved before it passes (checkNamedLocation)',
  );
  t.equal(egressLocation('http://192.0.2.7/x', pathCall, services), 'http://192.0.2.7/x', 'an address of another host passes as it is');
  // Same scheme, one slash: relative to a WHATWG client, so inside the destination.
  t.equal(
    egressLocation('http:/ledger/admin/delete', pathCall, services),
    '/payments/ledger/admin/delete',
    'http:/x is relative: under the service',
  );
  t.same(
    egressLocation('/\t/login', pathCall, services),
    { href: 'http://login/', hostname: 'login' },
    'tabs dropped as a client drops them: //login, another host',
  );
  t.equal(egressLocation('/lo\tgin', pathCall, services), '/payments/login', 'and inside a path');
  t.equal(egressLocation('/login\\x', proxyCall, services), 'http://payments/login/x', 'proxy form: sent as the client resolves it');
});

t.test("a 201's Location is not followed by clients: passed as it is when absolute", async (t) => {
  t.equal(egressLocation('http://localhost:8080/orders/12', { ...pathCall, status: 201 }, services), 'http://localhost:8080/orders/12');
  t.equal(egressLocation('/orders/12', { ...pathCall, status: 201 }, services), '/payments/orders/12', 'relative: under the service');
  t.equal(egressLocation('/orders/12', { ...proxyCall, status: 201 }, services), 'http://payments/orders/12', 'proxy form: on the service');
});

// The twentieth red-team round: in proxy form `/.//ledger/admin/delete` went back as `//ledger/admin/delete`,
// a network-path reference — curl -L and Python requests POSTed to `ledger` as this workload.
t.test('a Location whose path starts with // stays on the destination in both forms', async (t) => {
  for (const [location, path] of [
    ['/.//ledger/admin/delete?via=payments', '//ledger/admin/delete?via=payments'],
    ['/x/..//ledger/y', '//ledger/y'],
    ['/%2e//ledger/z', '//ledger/z'],
    ['\\.\\/ledger/a', '//ledger/a'],
    ['/./\\ledger/b', '//ledger/b'],
    ['/x/..//127.0.0.1:8080/debug/keys', '//127.0.0.1:8080/debug/keys'],
  ] as const) {
    const proxy = egressLocation(location, proxyCall, services);
    t.equal(proxy, `http://payments${path}`, `${location} (proxy form): absolute, on payments`);
    t.equal(
      new URL(proxy as string, 'http://payments/v1/charge').host,
      'payments',
      `${location} (proxy form): a client resolves it to payments`,
    );
    const pathForm = egressLocation(location, pathCall, services);
    t.equal(pathForm, `/payments${path}`, `${location} (path form): under the service`);
    t.equal(
      new URL(pathForm as string, 'http://127.0.0.1:15001/payments/v1/charge').host,
      '127.0.0.1:15001',
      `${location} (path form): back to egress`,
    );
  }
});

/** Names /etc/hosts maps to a loopback address, other than localhost's (here `vm`, `runsc`). */
function loopbackNamesInEtcHosts(): string[] {
  let text = '';
  try {
    text = readFileSync('/etc/hosts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/))
    .filter(([address]) => address !== undefined && (address.startsWith('127.') || address === '::1'))
    .flatMap(([, ...names]) => names)
    .filter((name) => name !== '' && name !== 'localhost' && !name.endsWith('.localhost') && !name.startsWith('ip6-'));
}

const fixed =
  (...addresses: string[]): HostLookup =>
  async () =>
    addresses;

t.test('a redirect to a host name that resolves to this machine is refused', async (t) => {
  const named = { href: 'http://vm:9901/metrics', hostname: 'vm' };
  const refusedBy = async (lookup: HostLookup, why: string) => {
    const verdict = await checkNamedLocation(named, lookup);
    t.ok(verdict instanceof WardenError && verdict.code === 'ERR_UPSTREAM_PROTOCOL' && verdict.rule === 'egress.redirect', why);
  };
  await refusedBy(fixed('127.0.0.1'), 'a loopback address');
  await refusedBy(fixed('203.0.113.9', '::1'), 'any of its addresses loopback');
  await refusedBy(fixed('0.0.0.0'), 'this host (0.0.0.0)');
  for (const own of ownAddresses) await refusedBy(fixed(own), `an interface address of this host (${own})`);
  const failing = (code: string) => async () => Promise.reject(Object.assign(new Error(code), { code }));
  await refusedBy(failing('EAI_AGAIN'), 'a name the resolver could not answer for now');
  // `vm.`: glibc does not read /etc/hosts for a name with its final dot, Go's resolver does (the third review).
  const dotted = { href: 'http://vm.:9901/metrics', hostname: 'vm.' };
  const hosts: HostLookup = async (name) =>
    name === 'vm' ? ['127.0.0.1'] : Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' }));
  t.match(
    await checkNamedLocation(dotted, hosts),
    { code: 'ERR_UPSTREAM_PROTOCOL', detail: /a name of this machine/ },
    'vm. is looked up as vm too',
  );
  // A name that does not exist passes, as before: the client, on the same resolver, reaches nothing by it
  // (the third review: a pod that cannot resolve a public IdP's name refused its redirects).
  t.equal(await checkNamedLocation(named, failing('ENOTFOUND')), named.href, 'a name that does not exist passes');
  t.equal(await checkNamedLocation(named, fixed()), named.href, 'no address: passes');
  // Ends past the bound, with another host's address: refused all the same.
  await refusedBy(
    () => new Promise((settle) => setTimeout(() => settle(['203.0.113.9']), 1100)),
    'a lookup that does not end within NAME_LOOKUP_MS',
  );
  t.equal(await checkNamedLocation(named, fixed('203.0.113.9')), 'http://vm:9901/metrics', 'another host passes');
});

t.test('lookups at once are bounded: past MAX_NAME_LOOKUPS a redirect waits its turn, within NAME_LOOKUP_MS', async (t) => {
  // The previous test's late lookup holds its slot until it ends (100 ms past its bound).
  await new Promise((settle) => setTimeout(settle, 200));
  t.equal(MAX_NAME_LOOKUPS, 2);
  const slow: HostLookup = () => new Promise((settle) => setTimeout(() => settle(['203.0.113.9']), 700));
  const named = { href: 'http://idp.example/x', hostname: 'idp.example' };
  const verdicts = await Promise.all(Array.from({ length: 3 }, () => checkNamedLocation(named, slow)));
  t.same(verdicts.slice(0, 2), [named.href, named.href], 'up to the bound: resolved and passed');
  // Its turn at 700 ms, its answer at 1 400: past NAME_LOOKUP_MS, waiting included.
  t.match(verdicts[2], { code: 'ERR_UPSTREAM_PROTOCOL', detail: /did not resolve within/ }, 'one that waits past the bound: refused');
  await new Promise((settle) => setTimeout(settle, 800));
  const quick = fixed('203.0.113.9');
  t.same(
    await Promise.all(Array.from({ length: 5 }, () => checkNamedLocation(named, quick))),
    Array(5).fill(named.href),
    'quick ones past the bound wait their turn and pass (they were refused)',
  );
});

t.test('a redirect that gave up waiting leaves the queue: its lookup never runs later (red-team round 21a)', async (t) => {
  await new Promise((settle) => setTimeout(settle, 300));
  let calls = 0;
  const silent: HostLookup = () => {
    calls++;
    return new Promise((settle) => setTimeout(() => settle(['203.0.113.9']), 1500));
  };
  const named = { href: 'http://slow.example/x', hostname: 'slow.example' };
  const verdicts = await Promise.all(Array.from({ length: 7 }, () => checkNamedLocation(named, silent)));
  t.ok(
    verdicts.every((v) => v instanceof WardenError),
    'all seven refused at the 1 s bound',
  );
  await new Promise((settle) => setTimeout(settle, 700)); // the two running lookups end
  t.equal(calls, 2, 'only the two that had a turn looked the name up; the five that gave up never did');
  t.equal(await checkNamedLocation(named, fixed('203.0.113.9')), named.href, 'the next redirect gets a turn at once');
});

t.test('a 304, a 300 and other schemes are not resolved: clients follow only 301/302/303/307/308 to web hosts', async (t) => {
  for (const status of [300, 304, 305]) {
    t.equal(egressLocation('https://cdn.example/x', { ...pathCall, status }, services), 'https://cdn.example/x', `${status}: as it is`);
  }
  for (const location of ['myapp://callback?code=1', 'mailto:a@example.org', 'urn:isbn:1']) {
    t.equal(egressLocation(location, pathCall, services), new URL(location).href, `${location}: as it is (it was looked up and refused)`);
  }
});

t.test('/etc/hosts is read as the client reads it', async (t) => {
  const names = loopbackNamesInEtcHosts();
  if (names.length === 0)
    return t.pass('/etc/hosts', { skip: 'no name other than localhost maps to a loopback address in /etc/hosts here' });
  for (const name of names) {
    const verdict = await checkNamedLocation({ href: `http://${name}:9901/metrics`, hostname: name });
    t.match(verdict, { code: 'ERR_UPSTREAM_PROTOCOL', detail: /a name of this machine/ }, `${name} (loopback in /etc/hosts): refused`);
  }
});
