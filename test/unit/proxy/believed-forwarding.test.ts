/**
 * A believed X-Forwarded-Host / -Proto (a trusted proxy's, listed in headers.trusted_proxy_headers)
 * is one host in the form of a Host and one scheme; an unbelieved one is never checked, as Warden
 * replaces it (red team 29 F1).
 */
import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { isHostForm, namesHost } from '../../../src/net/host-form.js';
import { checkBelievedForwarding } from '../../../src/proxy/believed-forwarding.js';
import { compileHeaderRules } from '../../../src/proxy/headers.js';

const upstream = {
  url: 'http://127.0.0.1:8080',
  connections: 8,
  host_header: 'preserve' as const,
  keep_alive: 4000,
  timeouts: { connect: 1000, headers: 1000, body: 1000 },
};
const rulesListing = (listed: string[]) =>
  compileHeaderRules({ internal: [], trusted_proxies: ['10.0.0.0/8'], trusted_proxy_headers: listed, overrides: 'refuse' }, upstream);
const listing = rulesListing(['x-forwarded-host', 'x-forwarded-proto']);
const ruleOf = (e: WardenError | undefined) => e?.rule;

t.test('listed, from a trusted proxy: one host[:port], and http or https', async (t) => {
  for (const host of ['app.example', 'app.example:8443', '[2001:db8::1]:8443', '127.0.0.1', 'my_host.internal', 'APP.example'])
    t.equal(checkBelievedForwarding({ 'x-forwarded-host': host }, '10.1.1.1', listing), undefined, `${host} passes`);
  for (const host of ['localhost@evil.example', 'evil.example, 127.0.0.1', 'evil.example/x?', 'a b', '', ':8443', 'evil.example:80x'])
    t.equal(
      ruleOf(checkBelievedForwarding({ 'x-forwarded-host': host }, '10.1.1.1', listing)),
      'host.form',
      `${JSON.stringify(host)}: host.form`,
    );
  for (const proto of ['http', 'https', 'HTTPS', 'Http'])
    t.equal(checkBelievedForwarding({ 'x-forwarded-proto': proto }, '10.1.1.1', listing), undefined, `${proto} passes`);
  for (const proto of ['', 'ftp', 'https, http', 'HTTPS,HTTPS', 'https ', 'wss', 'httpſ'])
    t.equal(
      ruleOf(checkBelievedForwarding({ 'x-forwarded-proto': proto }, '10.1.1.1', listing)),
      'proto.form',
      `${JSON.stringify(proto)}: proto.form`,
    );
  const refused = checkBelievedForwarding({ 'x-forwarded-host': 'a@b' }, '10.1.1.1', listing);
  t.equal(refused?.code, 'ERR_REQUEST_MALFORMED');
  t.equal(refused?.status, 400);
});

t.test('not believed: never checked (Warden replaces the value)', async (t) => {
  const bad = { 'x-forwarded-host': 'localhost@evil.example', 'x-forwarded-proto': 'ftp' };
  t.equal(checkBelievedForwarding(bad, '192.0.2.7', listing), undefined, 'listed, but from an untrusted client');
  t.equal(checkBelievedForwarding(bad, '10.1.1.1', rulesListing([])), undefined, 'from a trusted proxy, not listed');
  t.equal(
    ruleOf(checkBelievedForwarding(bad, '10.1.1.1', rulesListing(['x-forwarded-proto']))),
    'proto.form',
    'only -Proto listed: only it checked',
  );
  t.equal(ruleOf(checkBelievedForwarding(bad, '10.1.1.1', rulesListing(['x-forwarded-*']))), 'host.form', '"x-forwarded-*" lists both');
});

t.test('the host form is checked in linear time on hostile values', async (t) => {
  for (const size of [16 * 1024, 1024 * 1024, 10 * 1024 * 1024]) {
    for (const [name, value] of [
      ['host, then @', `${'a'.repeat(size)}@`],
      ['a bracket never closed', `[${':'.repeat(size)}`],
      ['port digits, then x', `a:${'1'.repeat(size)}x`],
      ['a: repeated', 'a:'.repeat(size / 2)],
      ['a valid host', 'a'.repeat(size)],
    ] as const) {
      const started = performance.now();
      namesHost(value);
      isHostForm(value);
      checkBelievedForwarding({ 'x-forwarded-host': value, 'x-forwarded-proto': value }, '10.1.1.1', listing);
      const ms = performance.now() - started;
      t.ok(ms < 2000, `${name}, ${size} characters: ${ms.toFixed(1)} ms`);
    }
  }
});
