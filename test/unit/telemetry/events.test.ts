import t from 'tap';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { PassThrough } from 'node:stream';
import { ERRORS } from '../../../src/errors.js';
import { metricsEventSink, pinoEventSink } from '../../../src/telemetry/event-sinks.js';
import { EVENTS, createEventBus } from '../../../src/telemetry/events.js';
import { createLogger, flushLogger, redactHeaders } from '../../../src/telemetry/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';

t.test('every error code maps to a catalogued event (or none) and a 4xx/5xx status', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    t.ok(spec.status >= 400 && spec.status < 600, `${code} status`);
    if (spec.event !== undefined) t.ok(spec.event in EVENTS, `${code} → ${spec.event} is catalogued`);
  }
  for (const name of Object.keys(EVENTS)) t.match(name, /^warden\.[a-z0-9_]+\.[a-z0-9_]+$/, `${name} follows warden.<area>.<what>`);
});

t.test('an event reaches every sink: a pino line and a counter; a failing sink breaks nothing', async (t) => {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const logger = createLogger({ level: 'info', destination: out });
  const metrics = createMetrics({ serviceName: 'svc', processMetrics: false });
  const bus = createEventBus([
    () => {
      throw new Error('broken sink');
    },
    pinoEventSink(logger),
    metricsEventSink(metrics),
  ]);
  bus.emit('warden.access.denied', { 'client.address': '192.0.2.1', 'warden.rule': 'access.clients.allow' });
  bus.emit('warden.access.denied', { 'client.address': '192.0.2.2' });
  flushLogger(logger);
  await new Promise((r) => setImmediate(r));
  const first = JSON.parse(lines[0] ?? '{}');
  t.equal(first.event, 'warden.access.denied');
  t.equal(first.level, 'warn');
  t.equal(first['client.address'], '192.0.2.1');
  const text = await metrics.registry.metrics();
  t.match(
    text,
    /warden_security_events_total\{(event="warden\.access\.denied",service="svc"|service="svc",event="warden\.access\.denied")\} 2/,
  );
});

t.test('request metrics: labels bounded, unknown methods folded', async (t) => {
  const metrics = createMetrics({ serviceName: 'svc', processMetrics: false });
  metrics.observeRequest('api', 'GET', 200, 0.002);
  metrics.observeRequest('api', 'GET', 200, 0.004);
  metrics.observeRequest('api', 'BREW', 405, 0.001);
  const text = await metrics.registry.metrics();
  t.match(text, /warden_http_request_duration_seconds_count\{[^}]*route="api",method="GET",status="200"[^}]*\} 2/);
  t.match(text, /method="OTHER",status="405"/);
});

t.test('credentials never reach a log line', async (t) => {
  const redacted = redactHeaders(
    { authorization: 'Bearer x', cookie: 'a=b', 'proxy-authorization': 'p', 'x-api-key': 'k', 'x-warden-token': 't', accept: '*/*' },
    (n) => n.startsWith('x-warden-'),
  );
  t.same(redacted, {
    authorization: '[redacted]',
    cookie: '[redacted]',
    'proxy-authorization': '[redacted]',
    'x-api-key': '[redacted]',
    'x-warden-token': '[redacted]',
    accept: '*/*',
  });
  // A path's `;name=value` parameters are a query by another name: their values hidden as url.path hides them.
  t.same(
    redactHeaders({ ':path': '/x;jsessionid=S3SSION?access_token=T', referer: 'https://a.example/p;access_token=T2' }),
    { ':path': '/x;jsessionid=*?[redacted]', referer: 'https://a.example/p;access_token=*' },
    'the values of ;name=value path parameters in logged :path and Referer',
  );
  // Underscored spellings: a CGI/WSGI/PHP backend reads x_api_key as X-Api-Key.
  t.same(
    redactHeaders({ x_api_key: 'k', proxy_authorization: 'p', x_warden_token: 't', x_trace: 'v' }, (n) => n.startsWith('x-warden-')),
    {
      x_api_key: '[redacted]',
      proxy_authorization: '[redacted]',
      x_warden_token: '[redacted]',
      x_trace: 'v',
    },
  );
  // Credentials by convention (red team 27g): logged whole under log.access_headers before.
  const conventional = [
    'x-auth-token',
    'x-amz-security-token',
    'private-token',
    'x-vault-token',
    'x-csrf-token',
    'x-goog-iap-jwt-assertion',
    'x-access-token',
    'x-session-token',
    'x-forwarded-authorization',
    'x-amzn-oidc-data',
    'x-ms-token-aad-access-token',
    'cf-access-jwt-assertion',
    'sec-websocket-protocol',
    'x-client-secret',
    'x-password',
    'x-pwd',
    'x-otp',
    'x-2fa-code',
    'x-ticket',
    'stripe-signature',
    // Words run together (third review rt27, F3): Django's default CSRF header among them.
    'x-csrftoken',
    'x-clientsecret',
    'sessionid',
    'x-authentication',
    'x-passcode',
  ];
  const seen = redactHeaders(Object.fromEntries(conventional.map((n) => [n, 'SECRET'])));
  for (const name of conventional) t.equal(seen[name], '[redacted]', `${name} redacted`);
  const kept = redactHeaders({
    ':authority': 'api.example',
    accept: '*/*',
    'user-agent': 'curl/8',
    'content-type': 'application/json',
    referer: 'https://app.example/cb?code=SECRET&state=s',
    origin: 'https://app.example',
    'idempotency-key': 'k1',
    'x-authenticated-userid': 'alice',
    'x-oauth-scopes': 'repo',
    'sec-websocket-key': 'dGhl',
    'x-author': 'bob',
  });
  t.same(
    kept,
    {
      ':authority': 'api.example',
      accept: '*/*',
      'user-agent': 'curl/8',
      'content-type': 'application/json',
      referer: 'https://app.example/cb?[redacted]',
      origin: 'https://app.example',
      'idempotency-key': 'k1',
      'x-authenticated-userid': 'alice',
      'x-oauth-scopes': 'repo',
      'sec-websocket-key': 'dGhl',
      'x-author': 'bob',
    },
    'ordinary headers kept (words, not substrings: second review rt27, F8); a Referer without its query',
  );
});

t.test('an event about a request carries its id as warden.request.id and its trace context to the sinks', async (t) => {
  const seen: { attributes: Record<string, unknown>; context: unknown }[] = [];
  const bus = createEventBus([(_name, _severity, attributes, context) => seen.push({ attributes: { ...attributes }, context })]);
  const traceContext = ROOT_CONTEXT.setValue(Symbol('request'), 1);
  bus.emit('warden.authn.token_missing', { 'client.address': '127.0.0.1' }, { requestId: 'req-1', traceContext });
  bus.emit('warden.config.reloaded', { 'warden.config.file': 'sidecar.yaml' });
  t.same(seen[0]?.attributes, { 'client.address': '127.0.0.1', 'warden.request.id': 'req-1' });
  t.equal(seen[0]?.context, traceContext, "the request's context, as given");
  t.same(seen[1]?.attributes, { 'warden.config.file': 'sidecar.yaml' }, 'no request: no id');
  t.equal(seen[1]?.context, undefined);
});

t.test('logged header values are cut: 256 characters each, 8 KiB for all (docs/adversarial.md 274)', async (t) => {
  const quote = '"'.repeat(3000);
  const five = redactHeaders({ 'x-a': quote, 'x-b': quote, 'x-c': quote, 'x-d': quote, 'x-e': quote, accept: '*/*' });
  t.equal(five['x-a'], `${'"'.repeat(256)}…(3000 chars)`, 'one value: its first 256 characters and its length');
  t.equal(five.accept, '*/*', 'short values whole');
  t.ok(JSON.stringify(five).length < 3000, `five 3 000-character values log ${JSON.stringify(five).length} characters`);
  const many: Record<string, string> = {};
  for (let i = 0; i < 200; i++) many[`x-h${i}`] = 'v'.repeat(200);
  const all = redactHeaders(many);
  t.ok(JSON.stringify(all).length < 8192 + 200 * 30, `200 values of 200 characters: ${JSON.stringify(all).length} characters in all`);
  t.equal(all['x-h199'], undefined, 'past the budget a field is not written…');
  t.match(all['…'], /^\d+ more headers$/, '…but counted');
  // Names are the client's too (review of 274).
  const named: Record<string, string> = { ['x'.repeat(4000)]: 'v' };
  for (let i = 0; i < 40; i++) named[`x-${i}-${'n'.repeat(150)}`] = 'v';
  const longNames = JSON.stringify(redactHeaders(named)).length;
  t.ok(longNames < 8192 + 400, `a 4 000-character name and 40 of 150 log ${longNames} characters`);
  const repeated = redactHeaders({ 'x-list': Array.from({ length: 100 }, () => 'c'.repeat(100)) });
  const cookies = repeated['x-list'] as string[];
  t.ok(cookies.length < 10 && String(cookies.at(-1)).endsWith('more)'), `a repeated field: ${cookies.length} entries, then how many more`);
  t.same(redactHeaders({ authorization: 'Bearer ' + 'x'.repeat(5000) }), { authorization: '[redacted]' }, 'secrets still redacted');
});

t.test('emit cuts every string attribute to its bound, whatever the source: 256, the path 1024, a refused reload 2000', async (t) => {
  const seen: Record<string, unknown>[] = [];
  const bus = createEventBus([(_name, _severity, attributes) => seen.push({ ...attributes })]);
  const long = 'x'.repeat(1_000_000);
  bus.emit('warden.input.xss', {
    'warden.detail': long,
    'url.path': `/${long}`,
    'user_agent.original': long,
    'warden.rule': long,
    'warden.count': 7,
  });
  bus.emit('warden.config.reload_failed', { 'warden.detail': long, 'warden.config.file': `/${long}` });
  bus.emit('warden.access.denied', { 'warden.detail': 'short', 'warden.peer.presented_id': long }, { requestId: long });
  const [waf, reload, denied] = seen;
  t.equal((waf?.['warden.detail'] as string).length, 256, 'a detail: 256 characters (1 MB before)');
  t.equal((waf?.['url.path'] as string).length, 1024, 'the path: 1024');
  t.equal((waf?.['user_agent.original'] as string).length, 256, 'the user agent: 256');
  t.equal((waf?.['warden.rule'] as string).length, 256, 'any other string: 256');
  t.equal(waf?.['warden.count'], 7, 'numbers as they are');
  t.equal((reload?.['warden.detail'] as string).length, 2000, "a refused reload's errors: 2000 (the operator's file)");
  t.equal((reload?.['warden.config.file'] as string).length, 1024, 'its file: 1024');
  t.equal((denied?.['warden.request.id'] as string).length, 256, 'the request id too');
  t.equal(denied?.['warden.detail'], 'short', 'short strings as they are');
  t.equal((denied?.['warden.peer.presented_id'] as string).length, 2048, 'a SPIFFE ID: 2048, its longest');
});
