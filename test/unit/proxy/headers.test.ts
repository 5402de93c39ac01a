import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../../../src/errors.js';
import {
  checkFraming,
  clientAddressOf,
  compileHeaderRules,
  downstreamResponseHeaders,
  egressRequestHeaders,
  upstreamRequestHeaders,
} from '../../../src/proxy/headers.js';

const upstream = {
  url: 'http://127.0.0.1:8080',
  connections: 8,
  host_header: 'preserve' as const,
  keep_alive: 4000,
  timeouts: { connect: 1000, headers: 1000, body: 1000 },
};
const rules = compileHeaderRules(
  { internal: ['x-warden-*', 'x-internal-token'], trusted_proxies: ['10.0.0.0/8'], trusted_proxy_headers: [], overrides: 'refuse' },
  upstream,
);

t.test('request: hop-by-hop, Connection-named, internal and proxy credentials are removed', async (t) => {
  const headers: IncomingHttpHeaders = {
    host: 'api.example',
    connection: 'keep-alive, x-drop-me',
    'keep-alive': 'timeout=5',
    'x-drop-me': '1',
    'proxy-authorization': 'Basic Zm9v',
    'proxy-connection': 'keep-alive',
    te: 'trailers',
    trailer: 'x-sum',
    upgrade: 'websocket',
    'transfer-encoding': 'chunked',
    expect: '100-continue',
    'x-warden-user': 'admin',
    'X-WARDEN-ROLE': 'root',
    'x-internal-token': 'forged',
    authorization: 'Bearer abc',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    'content-type': 'application/json',
  };
  // IncomingHttpHeaders are lower-case by the time they reach us; keep the test honest about that.
  delete headers['X-WARDEN-ROLE'];
  headers['x-warden-role'] = 'root';
  const out = upstreamRequestHeaders(headers, '192.0.2.7', 'api.example', rules);
  for (const gone of [
    'connection',
    'keep-alive',
    'x-drop-me',
    'proxy-authorization',
    'proxy-connection',
    'te',
    'trailer',
    'upgrade',
    'transfer-encoding',
    'expect',
    'x-warden-user',
    'x-warden-role',
    'x-internal-token',
  ]) {
    t.notOk(gone in out, `${gone} removed`);
  }
  t.equal(out.authorization, 'Bearer abc');
  t.equal(out.traceparent, headers.traceparent, 'W3C traceparent passed on');
  t.equal(out.host, 'api.example');
  t.equal(out['content-type'], 'application/json');
});

t.test('request: X-Forwarded-* set from the socket; believed only from trusted proxies', async (t) => {
  const spoofed = {
    host: 'h',
    'x-forwarded-for': '1.2.3.4',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'evil',
    forwarded: 'for=1.2.3.4',
    'x-real-ip': '1.2.3.4',
  };
  const fromUntrusted = upstreamRequestHeaders(spoofed, '192.0.2.7', 'h', rules);
  t.equal(fromUntrusted['x-forwarded-for'], '192.0.2.7');
  t.equal(fromUntrusted['x-forwarded-proto'], 'https');
  t.equal(fromUntrusted['x-forwarded-host'], 'h');
  t.notOk('forwarded' in fromUntrusted, 'an untrusted client’s Forwarded dropped, none written');
  t.equal(fromUntrusted['x-real-ip'], '192.0.2.7', 'X-Real-IP replaced with what Warden saw');

  // -Proto and -Host from a trusted proxy only when listed: Varnish, Squid, HAProxy and nginx's plain
  // proxy_pass pass the client's own (red team 29 F1).
  const fromTrusted = upstreamRequestHeaders(spoofed, '10.1.1.1', 'h', rules);
  t.equal(fromTrusted['x-forwarded-for'], '1.2.3.4, 10.1.1.1');
  t.equal(fromTrusted['x-forwarded-proto'], 'https', 'X-Forwarded-Proto not listed: replaced from a trusted proxy too');
  t.equal(fromTrusted['x-forwarded-host'], 'h', 'X-Forwarded-Host not listed: the authority Warden saw');

  const listing = compileHeaderRules(
    {
      internal: [],
      trusted_proxies: ['10.0.0.0/8'],
      trusted_proxy_headers: ['x-forwarded-host', 'x-forwarded-proto'],
      overrides: 'refuse',
    },
    upstream,
  );
  const listed = upstreamRequestHeaders(spoofed, '10.1.1.1', 'h', listing);
  t.equal(listed['x-forwarded-proto'], 'http', 'listed: believed from a trusted proxy');
  t.equal(listed['x-forwarded-host'], 'evil', 'listed: believed from a trusted proxy');
  const listedDirect = upstreamRequestHeaders(spoofed, '192.0.2.7', 'h', listing);
  t.equal(listedDirect['x-forwarded-proto'], 'https', 'listed, from an untrusted client: replaced');
  t.equal(listedDirect['x-forwarded-host'], 'h', 'listed, from an untrusted client: replaced');
  const family = compileHeaderRules(
    { internal: [], trusted_proxies: ['10.0.0.0/8'], trusted_proxy_headers: ['x-forwarded-*'], overrides: 'refuse' },
    upstream,
  );
  const byPrefix = upstreamRequestHeaders(spoofed, '10.1.1.1', 'h', family);
  t.equal(byPrefix['x-forwarded-host'], 'evil', '"x-forwarded-*" lists X-Forwarded-Host');
  t.equal(byPrefix['x-forwarded-proto'], 'http', '"x-forwarded-*" lists X-Forwarded-Proto');
  t.equal(byPrefix['x-forwarded-for'], '1.2.3.4, 10.1.1.1', 'X-Forwarded-For appended to as ever');
});

t.test(
  'from a trusted proxy only X-Forwarded-For is believed; Forwarded, X-Forwarded-Proto/-Host and the other proxy-asserted fields only when headers.trusted_proxy_headers names them (red team 28 F2, F6; red team 29 F1)',
  async (t) => {
    // What a client behind nginx, HAProxy, Caddy or Apache sends itself: none of them strips these.
    const sent: IncomingHttpHeaders = {
      host: 'h',
      'x-forwarded-for': '6.6.6.6, 198.51.100.7',
      'x-forwarded-proto': 'http',
      forwarded: 'for=6.6.6.6;host=evil.example',
      'x-real-ip': '6.6.6.6',
      'true-client-ip': '6.6.6.6',
      'cf-connecting-ip': '6.6.6.6',
      'remote-user': 'admin',
      'x-auth-request-user': 'admin',
      'x-forwarded-port': '1',
      'x-amzn-oidc-identity': 'admin',
      'x-amzn-oidc-data': 'e30.e30.',
      x_remote_user: 'admin',
      accept: 'text/plain',
    };
    const out = upstreamRequestHeaders(sent, '10.1.1.1', 'h', rules);
    for (const name of [
      'true-client-ip',
      'cf-connecting-ip',
      'remote-user',
      'x-auth-request-user',
      'x-forwarded-port',
      'x-amzn-oidc-identity',
      'x_remote_user',
    ])
      t.notOk(name in out, `${name} not listed: dropped from a trusted proxy too`);
    t.equal(out['x-forwarded-for'], '6.6.6.6, 198.51.100.7, 10.1.1.1', 'X-Forwarded-For still appended to');
    t.equal(out['x-forwarded-proto'], 'https', 'X-Forwarded-Proto not listed: replaced (red team 29 F1)');
    t.equal(out['x-real-ip'], '198.51.100.7', "X-Real-IP is the client Warden computed, as nginx's $remote_addr");
    t.notOk(
      'forwarded' in out,
      'Forwarded not listed: dropped, none written (one naming only the client contradicted X-Forwarded-For: Symfony answers 400, review rt28 F1)',
    );
    t.equal(out.accept, 'text/plain');

    const listing = compileHeaderRules(
      {
        internal: [],
        trusted_proxies: ['10.0.0.0/8'],
        trusted_proxy_headers: ['forwarded', 'cf-connecting-ip', 'remote-user', 'x-amzn-oidc-*'],
        overrides: 'refuse',
      },
      upstream,
    );
    const listed = upstreamRequestHeaders(sent, '10.1.1.1', 'h', listing);
    t.equal(listed.forwarded, 'for=6.6.6.6;host=evil.example', 'forwarded listed: passed as received');
    t.equal(listed['cf-connecting-ip'], '6.6.6.6', 'a listed name passes');
    t.equal(listed['remote-user'], 'admin');
    t.equal(listed['x-amzn-oidc-identity'], 'admin', 'a listed prefix passes');
    t.equal(listed['x-amzn-oidc-data'], 'e30.e30.');
    for (const name of ['true-client-ip', 'x-auth-request-user', 'x-forwarded-port', 'x_remote_user'])
      t.notOk(name in listed, `${name} (not listed, or an underscored spelling) still dropped`);
    const direct = upstreamRequestHeaders(sent, '192.0.2.7', 'h', listing);
    for (const name of ['cf-connecting-ip', 'remote-user', 'x-amzn-oidc-identity'])
      t.notOk(name in direct, `${name} listed, but from an untrusted client: dropped`);
    t.notOk('forwarded' in direct, 'an untrusted client’s Forwarded dropped, listed or not');
    t.equal(direct['x-real-ip'], '192.0.2.7');
  },
);

t.test(
  'X-Real-IP as Warden writes it: the client it computed, IPv6 as it is, none for an unknown client; no Forwarded of its own',
  async (t) => {
    const v6 = upstreamRequestHeaders({}, '2001:db8::1', 'api.example:8443', rules);
    t.equal(v6['x-real-ip'], '2001:db8::1');
    t.notOk('forwarded' in v6, 'no Forwarded written');
    const unknown = upstreamRequestHeaders({ 'x-forwarded-for': 'junk' }, '10.0.0.1', undefined, rules);
    t.notOk('x-real-ip' in unknown, 'no X-Real-IP for a client with no address');
    const behind = upstreamRequestHeaders({ 'x-forwarded-for': '10.1.2.3, 198.51.100.1' }, '10.0.0.1', 'h', rules);
    t.equal(behind['x-real-ip'], '198.51.100.1', 'the nearest untrusted hop');
    t.equal(behind['x-forwarded-for'], '10.1.2.3, 198.51.100.1, 10.0.0.1', 'the chain in X-Forwarded-For, nothing to contradict it');
    t.notOk('forwarded' in behind);
  },
);

t.test('client address walks X-Forwarded-For only through trusted proxies', async (t) => {
  t.equal(clientAddressOf('192.0.2.7', { 'x-forwarded-for': '1.2.3.4' }, rules), '192.0.2.7');
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '1.2.3.4' }, rules), '1.2.3.4');
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '6.6.6.6, 1.2.3.4, 10.0.0.9' }, rules), '1.2.3.4');
  t.equal(clientAddressOf('10.0.0.1', {}, rules), '10.0.0.1');
});

t.test('a trusted hop written with a port or in brackets is still trusted (defect 180)', async (t) => {
  // Azure Application Gateway writes `ip:port` hops: the proxy was taken for the client.
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '198.51.100.1:1111, 10.2.2.2:443' }, rules), '198.51.100.1');
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '198.51.100.2, [::ffff:10.3.3.3]:80' }, rules), '198.51.100.2');
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '198.51.100.3, [10.0.0.8]' }, rules), '198.51.100.3');
  t.equal(
    clientAddressOf('10.0.0.1', { 'x-forwarded-for': '10.0.0.9:80, 6.6.6.6:1' }, rules),
    '6.6.6.6',
    'an untrusted hop is the client, without its port: access.clients.deny matches it, one bucket for all its ports',
  );
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': '[2001:db8::7]:443' }, rules), '2001:db8::7');
});

t.test('a hop that is no IP address is not believed: the client is "unknown" (docs/adversarial.md 275)', async (t) => {
  for (const hop of ['"'.repeat(6000), '203.0.113.9 x1', 'unknown', '{"a":1}', '1.2.3.4.5', '[1.2.3]', '_hidden'])
    t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': `198.51.100.1, ${hop}` }, rules), 'unknown', `${hop.slice(0, 20)}…`);
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': 'junk, 10.0.0.9' }, rules), 'unknown', 'behind trusted hops too');
  // Not the proxy's own address: that passed an allow list naming the proxies' range.
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': 'unix:' }, rules), 'unknown', "nginx's unix: is no client address");
  const zoned = clientAddressOf('10.0.0.1', { 'x-forwarded-for': `fe80::1%${'A'.repeat(6000)}` }, rules);
  t.equal(zoned, 'fe80::1', 'an IPv6 zone is dropped (6 KB of it passed isIP)');
  t.equal(clientAddressOf('10.0.0.1', { 'x-forwarded-for': ' , 203.0.113.9 ,' }, rules), '203.0.113.9', 'empty hops skipped');
});

t.test('host header can be rewritten to the upstream authority', async (t) => {
  const r = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    { ...upstream, host_header: 'upstream' },
  );
  t.equal(upstreamRequestHeaders({ host: 'public.example' }, '1.1.1.1', 'public.example', r).host, '127.0.0.1:8080');
});

t.test('response: hop-by-hop, Connection-named and internal headers are removed', async (t) => {
  const out = downstreamResponseHeaders(
    {
      connection: 'x-named-hop',
      'x-named-hop': 'secret',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authenticate': 'Basic',
      trailer: 'x-sum',
      upgrade: 'h2c',
      'x-warden-debug': 'internal',
      x_warden_debug: 'internal, underscored',
      x_other_thing: 'kept',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'text/plain',
    },
    rules,
  );
  t.same(out, { x_other_thing: 'kept', 'set-cookie': ['a=1', 'b=2'], 'content-type': 'text/plain' });
  // One field named, in any case and with spaces; and the common Keep-Alive, which names nothing left.
  t.same(downstreamResponseHeaders({ connection: ' X-Named-Hop ', 'x-named-hop': 'secret', etag: '"1"' }, rules), { etag: '"1"' });
  t.same(downstreamResponseHeaders({ connection: 'Keep-Alive', etag: '"1"' }, rules), { etag: '"1"' });
});

t.test('framing: smuggling shapes are refused with a rule each', async (t) => {
  const cases: [IncomingHttpHeaders, string[], string | undefined][] = [
    [{ 'transfer-encoding': 'chunked', 'content-length': '3' }, ['Transfer-Encoding', 'chunked', 'Content-Length', '3'], 'framing.cl_te'],
    [{ 'transfer-encoding': 'gzip, chunked' }, ['Transfer-Encoding', 'gzip, chunked'], 'framing.te_coding'],
    [{ 'transfer-encoding': 'identity' }, ['Transfer-Encoding', 'identity'], 'framing.te_coding'],
    [{ 'content-length': '1, 2' }, ['Content-Length', '1, 2'], 'framing.cl_value'],
    [{ 'content-length': '+5' }, ['Content-Length', '+5'], 'framing.cl_value'],
    [{ host: 'a' }, ['Host', 'a', 'host', 'b'], 'framing.duplicate_host'],
    [{ authorization: 'Bearer a' }, ['Authorization', 'Bearer a', 'Authorization', 'Bearer b'], 'framing.duplicate_authorization'],
    [{ 'transfer-encoding': 'chunked' }, ['Transfer-Encoding', 'chunked'], undefined],
    [{ 'content-length': '10' }, ['Content-Length', '10'], undefined],
    [{ accept: 'a, b' }, ['Accept', 'a', 'Accept', 'b'], undefined],
  ];
  for (const [headers, raw, rule] of cases) {
    const r = checkFraming(headers, raw);
    if (rule === undefined) t.equal(r, undefined, `${raw.join(' ')} accepted`);
    else {
      t.ok(r instanceof WardenError, `${raw.join(' ')} refused`);
      t.equal(r?.code, 'ERR_REQUEST_AMBIGUOUS');
      t.equal(r?.rule, rule);
    }
  }
});

t.test('egress: the minted token in a header of its own (tokens.mint.header) never leaves; Authorization does', async (t) => {
  const minting = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    upstream,
    new Set(['x-minted']),
    new Set(),
    'X-Minted',
  );
  const out = egressRequestHeaders(
    { 'x-minted': 'eyJ…', x_minted: 'eyJ…', authorization: 'Bearer for-the-destination', 'x-app': '1' },
    minting,
  );
  t.same(out, { authorization: 'Bearer for-the-destination', 'x-app': '1' }, 'x-minted and its underscored spelling dropped');
  const inAuthorization = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    upstream,
    new Set(['authorization']),
    new Set(),
    'authorization',
  );
  t.equal(inAuthorization.mintHeader, undefined, 'minted into Authorization: the destination sidecar takes it as the caller token');
});

t.test('a response never carries the minted token back, in its own header or its underscored spelling', async (t) => {
  const minting = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    upstream,
    new Set(['x-internal-token']),
    new Set(),
    'X-Internal-Token',
  );
  const out = downstreamResponseHeaders({ 'x-internal-token': 'eyJ…', x_internal_token: 'eyJ…', 'x-app': '1' }, minting);
  t.same(out, { 'x-app': '1' }, 'x-internal-token and its underscored spelling dropped');
});

t.test('a read header declared with "_": its dashed or mixed spelling is removed, the declared one kept (row 21b F6)', async (t) => {
  // PHP (CGI, WSGI) reads X_Report_Scope and X-Report-Scope both as HTTP_X_REPORT_SCOPE, the last one winning.
  const r = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    upstream,
    new Set(),
    new Set(['x_report_scope', 'x-tenant']),
  );
  const out = upstreamRequestHeaders(
    {
      x_report_scope: 'own',
      'x-report-scope': 'all',
      'x_report-scope': 'all',
      'x-tenant': 'a',
      x_tenant: 'b',
      'x-other': '1',
      x_other: '2',
    },
    '192.0.2.1',
    'api.example',
    r,
  );
  t.equal(out.x_report_scope, 'own', 'the declared spelling, validated');
  t.notOk('x-report-scope' in out, 'its dashed spelling');
  t.notOk('x_report-scope' in out, 'a mixed spelling');
  t.equal(out['x-tenant'], 'a');
  t.notOk('x_tenant' in out, 'the underscored spelling of a dashed one, as before');
  t.equal(out['x-other'], '1');
  t.equal(out.x_other, '2', 'headers not read pass in either spelling');
  // Both declared (two operations): both are validated where declared, both pass.
  const both = compileHeaderRules(
    { internal: [], trusted_proxies: [], trusted_proxy_headers: [], overrides: 'refuse' },
    upstream,
    new Set(),
    new Set(['x_a', 'x-a']),
  );
  const kept = upstreamRequestHeaders({ x_a: '1', 'x-a': '2' }, '192.0.2.1', 'api.example', both);
  t.same([kept.x_a, kept['x-a']], ['1', '2']);
});
