/**
 * The compose topology as plain processes: a Warden CA, two `warden proxy` processes (orders and
 * inventory) that enroll at it, their backends, and an OTLP/HTTP receiver standing in for the
 * shared collector. A caller with a workload certificate calls orders; orders' backend calls
 * inventory through orders' egress (mTLS, destination identity checked), passing the trace context
 * on as a traced backend does. A third sidecar, billing (JWTs from a test issuer, reference tokens
 * introspected, a waf, a real clamd that is then stopped, a Redis rate-limit store that is down, a
 * backend that is gone), is sent one request of each kind its stages refuse; a fourth, pets, finds
 * its backend's response outside its OpenAPI document. Asserted on what reaches the receiver: one
 * trace across orders and inventory, and the security events of every sidecar and of the CA as
 * log records under their service's name.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startCaServer } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { startTestBackend } from '../support/backend.js';
import { makeCsr, testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { startForgedIssuer } from '../support/token-forge.js';
import { testCertificate } from '../support/certs.js';
import { EICAR, startTestClamd } from '../support/clamd.js';
import { exchange } from '../adversarial/harness.js';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { enrollWorkload, type Workload } from '../support/workload.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const ORDERS = id('ns/demo/sa/orders');
const INVENTORY = id('ns/demo/sa/inventory');
const WEB = id('ns/demo/sa/web');
const STRANGER = id('ns/other/sa/stranger');
const SERVER = 2;
const CLIENT = 3;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

t.test('two services, one CA, one collector', async (t) => {
  const { dir } = await testCaMaterial();
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  // The CA reports to the same collector (JSON, to cover both encodings in one topology).
  const ca = await startCaServer({
    config: resolveCaConfig({
      trust_domain: TRUST_DOMAIN,
      dir,
      listen: { host: '127.0.0.1', port: 0 },
      database: { path: join(mkdtempSync(join(tmpdir(), 'warden-topology-ca-')), 'ca.db') },
      log: { level: 'silent' },
      // Minute-long certificates, renewed from 10 % of their life: the sidecars rotate during the test.
      certificates: { lifetime: '60s', backdate: '1s' },
      telemetry: { otlp: { endpoint: receiver.url, protocol: 'http/json', export_interval: '200ms', timeout: '1s' } },
    }),
    env: {},
    createDatabase: true,
  });
  t.teardown(() => ca.close());
  const bundle = join(mkdtempSync(join(tmpdir(), 'warden-topology-')), 'bundle.pem');
  writeFileSync(bundle, ca.rootPem);

  const sidecar = async (name: string, spiffeId: string, backendUrl: string, extra: Record<string, unknown>) =>
    spawnWarden(
      t,
      await testConfigYaml(backendUrl, {
        service: { name },
        mesh: {
          spiffe_id: spiffeId,
          dns_names: ['localhost'],
          ca: { url: ca.url, bundle, timeout: '2s' },
          bootstrap_token: ca.createToken({ spiffe_id: spiffeId, dns_names: ['localhost'] }).token,
          state_dir: mkdtempSync(join(tmpdir(), `warden-${name}-state-`)),
          // A revocation reaches the sidecars within a second (see the stranger below).
          refresh: { crl: '1s' },
          renew_at: 0.1,
        },
        telemetry: { otlp: { endpoint: receiver.url, export_interval: '200ms', timeout: '1s' } },
        threats: { waf: { paranoia: 1 } },
        ...extra,
      }),
    );

  // inventory: its backend, and its sidecar admitting orders only.
  const inventoryBackend = await startTestBackend();
  t.teardown(() => inventoryBackend.close());
  const inventory = await sidecar('inventory', INVENTORY, inventoryBackend.url, {
    peers: { allow: [ORDERS] },
    routes: [{ id: 'stock', path: '/api/stock', methods: ['GET'] }],
  });

  // orders: a backend that calls inventory through its sidecar's egress, passing the trace on.
  const egressPort = await freePort();
  const ordersBackend = createHttpServer((req, res) => {
    const call = httpRequest(
      `http://127.0.0.1:${egressPort}/inventory/api/stock`,
      { headers: req.headers.traceparent ? { traceparent: req.headers.traceparent } : {} },
      (answer) => {
        answer.resume();
        answer.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ order: 'ok', inventory: answer.statusCode }));
        });
      },
    );
    call.on('error', (err) => {
      res.writeHead(502);
      res.end(err.message);
    });
    call.end();
  });
  await new Promise<void>((r) => ordersBackend.listen(0, '127.0.0.1', r));
  t.teardown(() => ordersBackend.close());
  const orders = await sidecar('orders', ORDERS, `http://127.0.0.1:${(ordersBackend.address() as { port: number }).port}`, {
    peers: { allow: [WEB] },
    egress: { port: egressPort, services: { inventory: { url: `https://localhost:${inventory.port}`, spiffe_id: INVENTORY } } },
    routes: [
      { id: 'checkout', path: '/api/checkout', methods: ['GET'] },
      { id: 'search', path: '/api/search', methods: ['GET'] },
      { id: 'quote', path: '/api/quote', methods: ['GET'], rate_limit: { rate: 1, per: '10s', burst: 1 } },
      { id: 'notes', path: '/api/notes', methods: ['POST'], limits: { max_body_bytes: '1KiB' } },
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
    ],
  });

  const agentFor = (w: Workload) => new Agent({ connect: { ca: w.bundlePem, cert: w.certPem, key: w.keyPem, servername: 'localhost' } });
  const web = await enrollWorkload(ca, WEB);
  const stranger = await enrollWorkload(ca, STRANGER);
  const webAgent = agentFor(web);
  const strangerAgent = agentFor(stranger);
  const noCertAgent = new Agent({ connect: { ca: web.bundlePem, servername: 'localhost' } });
  t.teardown(() => Promise.all([webAgent.close(), strangerAgent.close(), noCertAgent.close()]));
  const get = async (path: string, dispatcher: Agent, headers: Record<string, string> = {}) => {
    const res = await request(`https://localhost:${orders.port}${path}`, { dispatcher, headers });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const post = async (path: string, dispatcher: Agent, body: Buffer) => {
    const res = await request(`https://localhost:${orders.port}${path}`, { dispatcher, method: 'POST', body });
    await res.body.dump();
    return res.statusCode;
  };

  // The call across both services, in a trace the caller started.
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  const checkout = await get('/api/checkout', webAgent, { traceparent: `00-${traceId}-${callerSpan}-01` });
  t.equal(checkout.status, 200);
  t.same(JSON.parse(checkout.body), { order: 'ok', inventory: 200 }, 'orders reached inventory through egress');

  // Refusals, on both sidecars.
  t.equal((await get('/api/checkout', strangerAgent)).status, 403, 'a workload outside peers.allow');
  await t.rejects(get('/api/checkout', noCertAgent), 'no client certificate: the handshake fails (mesh.mtls: require)');
  t.equal((await get(`/api/search?q=${encodeURIComponent('<script>alert(1)</script>')}`, webAgent)).status, 403, 'an XSS attempt');
  t.equal((await get('/admin/users', webAgent)).status, 403, 'a denied route');
  t.equal((await get('/nowhere', webAgent)).status, 404, 'an unknown route');
  t.equal((await get('/api/quote', webAgent)).status, 200);
  t.equal((await get('/api/quote', webAgent)).status, 429, 'over the route’s rate limit');
  t.equal(await post('/api/notes', webAgent, Buffer.alloc(4096, 0x61)), 413, 'over the route’s body limit');
  // (A URL object would resolve the dot segments before sending: the path goes as is.)
  const above = await webAgent.request({
    origin: `https://localhost:${orders.port}`,
    path: '/api/%2e%2e/%2e%2e/etc/passwd',
    method: 'GET',
  });
  await above.body.dump();
  t.equal(above.statusCode, 400, 'a path above the root');
  // A reload of inventory's (unchanged) file, as SIGHUP does.
  inventory.child.kill('SIGHUP');
  await inventory.waitFor((l) => l.event === 'warden.config.reloaded');
  const direct = await request(`https://localhost:${inventory.port}/api/stock`, { dispatcher: webAgent });
  await direct.body.dump();
  t.equal(direct.statusCode, 403, 'inventory refuses a caller other than orders');
  // The stranger's certificate revoked at the CA: orders learns it from the CRL and refuses it.
  const linesBefore = orders.lines.length;
  await ca.revoke({ spiffe_id: STRANGER });
  await orders.waitFor((l) => l.event === 'warden.mesh.trust_updated' && orders.lines.indexOf(l) >= linesBefore, 10_000);
  const revokedCall = await get('/api/checkout', strangerAgent).then(
    (r) => r.status,
    () => 'refused in the handshake',
  );
  t.equal(revokedCall, 401, 'a revoked caller is refused, on a connection opened before the revocation too');

  // One trace across both services.
  const spans = await receiver.until(() => {
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const has = (service: string, kind: number) => inTrace.some((s) => s.resource['service.name'] === service && s.kind === kind);
    // Each process exports on its own schedule: wait for all three spans.
    return has('orders', SERVER) && has('orders', CLIENT) && has('inventory', SERVER) ? inTrace : undefined;
  });
  const ordersServer = spans.find((s) => s.resource['service.name'] === 'orders' && s.kind === SERVER);
  const ordersUpstream = spans.find((s) => s.resource['service.name'] === 'orders' && s.kind === CLIENT);
  const inventoryServer = spans.find((s) => s.resource['service.name'] === 'inventory' && s.kind === SERVER);
  t.equal(ordersServer?.parentSpanId, callerSpan, 'orders continues the caller’s trace');
  t.equal(ordersUpstream?.parentSpanId, ordersServer?.spanId);
  t.equal(inventoryServer?.parentSpanId, ordersUpstream?.spanId, 'inventory’s span is a child of orders’ upstream call: one trace');
  t.match(ordersServer?.attributes, { 'http.route': 'checkout', 'warden.peer.id': WEB });
  t.match(inventoryServer?.attributes, { 'http.route': 'stock', 'warden.peer.id': ORDERS, 'http.response.status_code': 200 });
  t.match(ordersServer?.resource, { 'warden.spiffe_id': ORDERS, 'warden.trust_domain': TRUST_DOMAIN });

  // The security events of both services, as log records under each service's name.
  const expected: [string, string][] = [
    ['orders', 'warden.mesh.enrolled'],
    ['inventory', 'warden.mesh.enrolled'],
    ['orders', 'warden.tls.peer_denied'],
    ['orders', 'warden.tls.handshake_failed'],
    ['orders', 'warden.input.xss'],
    ['orders', 'warden.access.denied'],
    ['orders', 'warden.route.unknown'],
    ['orders', 'warden.traffic.rate_limited'],
    ['orders', 'warden.http.limit_exceeded'],
    ['orders', 'warden.http.path_invalid'],
    ['inventory', 'warden.config.reloaded'],
    ['inventory', 'warden.tls.peer_denied'],
    ['orders', 'warden.mesh.trust_updated'],
    ['orders', 'warden.tls.peer_revoked'],
  ];
  for (const [service, event] of expected) {
    const log = await receiver.until(() => receiver.logs.find((l) => l.eventName === event && l.resource['service.name'] === service));
    t.ok(log, `${service}: ${event}`);
  }
  const denied = receiver.logs.find(
    (l) =>
      l.eventName === 'warden.tls.peer_denied' && l.resource['service.name'] === 'orders' && l.attributes['warden.peer.id'] === STRANGER,
  );
  t.ok(denied?.traceId, 'a refusal carries the trace of its request');
  const metricsSeen = await receiver.until(() => {
    const names = new Set(
      receiver.metrics.filter((m) => m.name === 'warden.security.events').flatMap((m) => m.points.map((p) => p.attributes['event.name'])),
    );
    return names.has('warden.input.xss') ? names : undefined;
  });
  t.ok(metricsSeen.has('warden.access.denied'), 'and the event counters');
  for (const service of ['orders', 'inventory']) {
    const enroll = await receiver.until(() =>
      receiver.spans.find((s) => s.resource['service.name'] === service && s.name === 'ca POST /v1/enroll'),
    );
    t.equal(enroll.kind, CLIENT, `${service}: its enrollment at the CA is a client span`);
    // …whose child is the CA's server span, in the same trace, under the CA's own service name.
    const served = await receiver.until(() =>
      receiver.spans.find((s) => s.resource['service.name'] === 'warden-ca' && s.parentSpanId === enroll.spanId),
    );
    t.equal(served.traceId, enroll.traceId, `${service}: the CA's span continues the sidecar's trace`);
    t.equal(served.kind, SERVER, `${service}: the CA's span is a server span (${served.name})`);
  }
  const enrolled = await receiver.until(() => {
    const logs = receiver.logs.filter((l) => l.resource['service.name'] === 'warden-ca' && l.eventName === 'warden.ca.enrolled');
    return logs.length >= 2 ? logs : undefined;
  });
  t.ok(enrolled.length >= 2, `the CA's enrollments arrive as log records (${enrolled.length})`);
  const spanIds = new Set(receiver.spans.filter((s) => s.resource['service.name'] === 'warden-ca').map((s) => s.spanId));
  t.ok(
    enrolled.every((l) => spanIds.has(l.spanId)),
    "each is correlated with the CA request's span",
  );
  const expiry = await receiver.until(() => receiver.metrics.find((m) => m.name === 'warden.certificate.expiry' && m.points.length > 0));
  t.ok(
    expiry.points.every((p) => p.value > 0 && p.value <= 61),
    `the certificate's seconds to expiry, from the same instrument as /metrics (${expiry.points.map((p) => p.value).join(', ')})`,
  );
  const decisions = await receiver.until(() => {
    const points = receiver.metrics.filter((m) => m.name === 'warden.ratelimit.decisions').flatMap((m) => m.points);
    const of = (d: string) => points.some((p) => p.attributes['http.route'] === 'quote' && p.attributes.decision === d && p.value > 0);
    return of('allowed') && of('limited') ? points : undefined;
  });
  t.ok(decisions.length >= 2, 'rate-limit decisions (allowed and limited) per route, from the same instrument as /metrics');

  // billing: one request of each kind its stages refuse (or pass with an event), each event
  // delivered to the collector by the sidecar's own OTLP export.
  const idp = await startForgedIssuer(t);
  const introspection = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (new URLSearchParams(body).get('token') === 'opaque-inactive-token') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ active: false }));
      } else {
        res.writeHead(503);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => introspection.listen(0, '127.0.0.1', r));
  t.teardown(() => introspection.close());
  const introspectionUrl = `http://127.0.0.1:${(introspection.address() as { port: number }).port}/introspect`;
  const [goneBackend, goneRedis] = [await freePort(), await freePort()];
  const clamd = await startTestClamd(t);
  const billing = await spawnWarden(
    t,
    await testConfigYaml(`http://127.0.0.1:${goneBackend}`, {
      service: { name: 'billing' },
      telemetry: { otlp: { endpoint: receiver.url, export_interval: '200ms', timeout: '1s' } },
      tokens: {
        issuers: [
          { id: 'forge', issuer: idp.issuer, audience: ['billing-api'], jwt: { algorithms: ['ES256'] } },
          {
            id: 'partner',
            issuer: 'https://partner-idp.example',
            discovery: false,
            audience: ['billing-api'],
            introspection: { endpoint: introspectionUrl, client_id: 'billing', client_secret: 's3cret' },
          },
        ],
        idp: { timeouts: { connect: '300ms', response: '300ms' } },
        mint: { audience: 'billing-backend' },
      },
      threats: {
        waf: { paranoia: 1, max_entries: 40 },
        malware: { clamd: clamd.address, content_types: ['application/octet-stream'] },
      },
      rate_limits: { store: 'redis', redis: `redis://127.0.0.1:${goneRedis}`, on_store_failure: 'fail-open' },
      limits: { max_in_flight: 3 },
      routes: [
        { id: 'upload', path: '/api/upload', methods: ['POST'], authn: { mode: 'off' }, malware_scan: true },
        {
          id: 'invoices',
          path: '/api/invoices',
          methods: ['GET'],
          scopes: { all_of: ['billing:read'] },
          rate_limit: { rate: 100, per: '1s' },
        },
        { id: 'lookup', path: '/api/lookup', methods: ['GET'], authn: { mode: 'off' } },
      ],
    }),
  );
  const billingCa = (await testCertificate()).certPem;
  const billingAgent = new Agent({ connect: { ca: billingCa, servername: 'localhost' } });
  const H = 'Host: localhost\r\n';
  t.teardown(() => billingAgent.close());
  const billed = async (path: string, authorization?: string) => {
    const res = await request(`https://localhost:${billing.port}${path}`, {
      dispatcher: billingAgent,
      headers: authorization ? { authorization } : {},
    });
    await res.body.dump();
    return res.statusCode;
  };
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: idp.issuer, aud: 'billing-api', sub: 'client-7', iat: now, exp: now + 300 };
  // Reference tokens, introspected (RFC 7662) at an endpoint that knows one token as inactive and
  // is failing for everything else.
  t.equal(await billed('/api/invoices', 'Bearer opaque-inactive-token'), 401, 'billing: an inactive reference token');
  t.equal(await billed('/api/invoices', 'Bearer opaque-other-token'), 503, 'billing: the IdP cannot answer');
  t.equal(await billed('/api/invoices'), 401, 'billing: no token');
  t.equal(await billed('/api/invoices', 'Basic dXNlcjpwYXNz'), 401, 'billing: not a bearer token');
  t.equal(
    await billed('/api/invoices', 'Bearer ' + (await idp.sign({ ...claims, scope: 'billing:read' }, {}, idp.foreignKey()))),
    401,
    'billing: a forged signature',
  );
  t.equal(
    await billed('/api/invoices', 'Bearer ' + (await idp.sign({ ...claims, iat: now - 600, exp: now - 300, scope: 'billing:read' }))),
    401,
    'billing: expired',
  );
  t.equal(
    await billed('/api/invoices', 'Bearer ' + (await idp.sign({ ...claims, scope: 'billing:write' }))),
    403,
    'billing: the scope is missing',
  );
  // Admitted: Redis is down (fail-open), a token is minted, and the backend is gone.
  const admitted = await idp.sign({ ...claims, scope: 'billing:read' });
  t.equal(await billed('/api/invoices', `Bearer ${admitted}`), 502, 'billing: the backend is gone');
  const revoke = await request(`${billing.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: admitted }),
  });
  await revoke.body.dump();
  t.equal(revoke.statusCode, 200, 'billing: the token revoked through the admin API');
  t.equal(await billed('/api/invoices', `Bearer ${admitted}`), 401, 'billing: and refused from then on');
  const lookups = await receiver.until(() => {
    const points = receiver.metrics.filter((m) => m.name === 'warden.token.cache.lookups').flatMap((m) => m.points);
    return points.some((p) => p.attributes.cache === 'jwt' && typeof p.attributes.result === 'string' && p.value > 0) ? points : undefined;
  });
  t.ok(lookups.length > 0, 'token cache lookups by cache and result, from the same instrument as /metrics');
  const attacks: [string, string][] = [
    ["?q=1' OR '1'='1", 'sqli'],
    ['?file=../../../etc/passwd', 'traversal'],
    [`?host=${encodeURIComponent('example.com; cat /etc/passwd')}`, 'cmdi'],
    [`?url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`, 'ssrf'],
    [`?${encodeURIComponent('user[$ne]')}=x`, 'nosqli'],
    [`?${encodeURIComponent('a[__proto__][admin]')}=1`, 'prototype_pollution'],
  ];
  for (const [query, kind] of attacks) {
    const status = await billed(`/api/lookup${query.replaceAll("'", '%27').replaceAll(' ', '%20')}`);
    t.equal(status, 403, `billing: ${kind} (${status})`);
  }
  // An XML body declaring an external entity (the waf reads XML bodies too; not scanned: not octet-stream).
  const xxe = await request(`https://localhost:${billing.port}/api/upload`, {
    dispatcher: billingAgent,
    method: 'POST',
    headers: { 'content-type': 'application/xml' },
    body: '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
  });
  await xxe.body.dump();
  t.equal(xxe.statusCode, 403, 'billing: xxe');
  const wide = Array.from({ length: 30 }, (_, i) => `p${i}=v${i}%20x`).join('&');
  const wideStatus = await billed(`/api/lookup?${wide}`);
  t.equal(wideStatus, 403, `billing: more parameters than the waf inspects (${wideStatus})`);
  t.equal(
    (await exchange(billing.port, billingCa, [`GET /api/lookup HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`])).status,
    400,
    'billing: a malformed request',
  );
  t.equal(
    (
      await exchange(billing.port, billingCa, [
        `POST /api/lookup HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      ])
    ).status,
    400,
    'billing: ambiguous framing (smuggling)',
  );
  const upload = async (body: Buffer) => {
    const res = await request(`https://localhost:${billing.port}/api/upload`, {
      dispatcher: billingAgent,
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    await res.body.dump();
    return res.statusCode;
  };
  t.equal(await upload(EICAR), 422, 'billing: malware in an upload (a real clamd)');
  await clamd.stop();
  t.equal(await upload(Buffer.alloc(1024, 0x61)), 503, 'billing: the scanner is down (fail-closed)');
  // Three requests held open (their bodies never end) fill limits.max_in_flight: the next one is shed.
  const hold = () =>
    exchange(billing.port, billingCa, [`GET /api/lookup HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{`], {
      timeoutMs: 1500,
    });
  const held = [hold(), hold(), hold()];
  await new Promise((r) => setTimeout(r, 300));
  t.equal(await billed('/api/lookup'), 503, 'billing: over limits.max_in_flight');
  await Promise.all(held);
  // The calls made on a request's behalf are children of its server span (the context is passed
  // explicitly: there is no AsyncLocalStorage context manager).
  for (const name of ['idp POST /introspect', 'redis EVALSHA gcra', 'clamd INSTREAM']) {
    const found = await receiver.until(() => {
      const call = receiver.spans.find((s) => s.resource['service.name'] === 'billing' && s.name === name);
      const server = call && receiver.spans.find((s) => s.spanId === call.parentSpanId && s.traceId === call.traceId);
      return server ? { call, server } : undefined;
    });
    t.equal(found.call.kind, CLIENT, `billing: ${name} is a client span`);
    t.equal(found.server.kind, SERVER, `billing: ${name} is a child of the request’s server span`);
  }
  // Fail-open's store_unavailable is raised by the request that found Redis gone, on its server span.
  const storeGone = await receiver.until(() => {
    const log = receiver.logs.find((l) => l.eventName === 'warden.ratelimit.store_unavailable' && l.resource['service.name'] === 'billing');
    return log && receiver.spans.find((s) => s.spanId === log.spanId && s.traceId === log.traceId);
  });
  t.equal(storeGone?.kind, SERVER, 'billing: warden.ratelimit.store_unavailable is correlated with the server span of its request');
  // Events carry their request's trace context (EventBus.emit), not only its id.
  const minted = await receiver.until(() => {
    const log = receiver.logs.find((l) => l.eventName === 'warden.token.minted' && l.resource['service.name'] === 'billing');
    return log && receiver.spans.find((s) => s.spanId === log.spanId && s.traceId === log.traceId);
  });
  t.equal(minted?.kind, SERVER, 'billing: warden.token.minted is correlated with the server span of the request it was minted for');
  writeFileSync(billing.configFile, 'listeners: [not, a, map\n');
  billing.child.kill('SIGHUP');
  await billing.waitFor((l) => l.event === 'warden.config.reload_failed');

  // pets: its OpenAPI document declares the response of getPet; the backend answers something else.
  const petsBackend = await startTestBackend();
  t.teardown(() => petsBackend.close());
  const pets = await spawnWarden(
    t,
    await testConfigYaml(petsBackend.url, {
      service: { name: 'pets' },
      telemetry: { otlp: { endpoint: receiver.url, export_interval: '200ms', timeout: '1s' } },
      tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['pets'] }] },
      openapi: { document: join(repoRoot, 'test/fixtures/openapi/petstore-3.1.yaml'), validation: { responses: 'report' } },
    }),
  );
  const pet = await request(`https://localhost:${pets.port}/v1/pets/7`, {
    dispatcher: billingAgent,
    headers: { authorization: `Bearer ${await idp.sign({ ...claims, aud: 'pets', scope: 'pets:read' })}` },
  });
  await pet.body.dump();
  t.equal(pet.statusCode, 200, 'pets: the backend’s answer is passed on (report mode)');
  const invalid = await receiver.until(() =>
    receiver.logs.find((l) => l.eventName === 'warden.response.invalid' && l.resource['service.name'] === 'pets'),
  );
  const petSpan = await receiver.until(() =>
    receiver.spans.find((s) => s.resource['service.name'] === 'pets' && s.kind === SERVER && s.traceId === invalid.traceId),
  );
  t.equal(petSpan?.spanId, invalid.spanId, 'pets: warden.response.invalid, correlated with the server span of its request');

  const billingEvents = [
    'warden.authn.token_missing',
    'warden.authn.token_malformed',
    'warden.authn.token_invalid',
    'warden.authn.token_expired',
    'warden.authz.scope_missing',
    'warden.ratelimit.store_unavailable',
    'warden.token.minted',
    'warden.upstream.failed',
    'warden.input.sqli',
    'warden.input.traversal',
    'warden.input.cmdi',
    'warden.input.ssrf',
    'warden.input.nosqli',
    'warden.input.prototype_pollution',
    'warden.input.xxe',
    'warden.input.invalid',
    'warden.http.malformed',
    'warden.http.smuggling',
    'warden.config.reload_failed',
    'warden.input.malware',
    'warden.scanner.unavailable',
    'warden.authn.idp_unavailable',
    'warden.authn.token_inactive',
    'warden.token.revoked',
    'warden.traffic.shed',
  ];
  for (const event of billingEvents) {
    const log = await receiver.until(() => receiver.logs.find((l) => l.eventName === event && l.resource['service.name'] === 'billing'));
    t.ok(log, `billing: ${event}`);
  }

  // The CA's own refusals and actions, from its export (JSON), under its service name.
  const caAgent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => caAgent.close());
  const caPost = async (path: string, body: unknown) => {
    const res = await request(`${ca.url}${path}`, {
      dispatcher: caAgent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    await res.body.dump();
    return res.statusCode;
  };
  const { csrPem } = await makeCsr({ spiffeId: id('ns/demo/sa/late'), dnsNames: [] });
  t.equal(await caPost('/v1/enroll', { token: 'not-a-bootstrap-token', csr: csrPem }), 401, 'CA: an unknown bootstrap token');
  const lateToken = ca.createToken({ spiffe_id: id('ns/demo/sa/late') }).token;
  t.equal(await caPost('/v1/enroll', { token: lateToken, csr: 'not a CSR' }), 400, 'CA: a CSR it cannot read');
  t.equal(await caPost('/v1/renew', { csr: csrPem }), 401, 'CA: a renewal without a client certificate');
  // A target the CA routes after normalising it: its span names the action served, its path is as sent.
  const oddBundle = await request(`${ca.url}//elsewhere/v1/bundle`, { dispatcher: caAgent });
  await oddBundle.body.dump();
  t.equal(oddBundle.statusCode, 200, 'CA: //elsewhere/v1/bundle is served as /v1/bundle');
  const oddSpan = await receiver.until(() =>
    receiver.spans.find((s) => s.resource['service.name'] === 'warden-ca' && s.attributes['url.path'] === '//elsewhere/v1/bundle'),
  );
  t.equal(oddSpan.name, 'GET bundle', "the CA's span names the action it served");
  for (const event of [
    'warden.ca.token_created',
    'warden.ca.revoked',
    'warden.ca.token_rejected',
    'warden.ca.csr_rejected',
    'warden.ca.auth_failed',
  ]) {
    const log = await receiver.until(() => receiver.logs.find((l) => l.eventName === event && l.resource['service.name'] === 'warden-ca'));
    t.ok(log, `warden-ca: ${event}`);
  }

  // Rotation: both sidecars renewed their minute-long certificates at the CA during the test…
  for (const service of ['orders', 'inventory']) {
    const rotated = await receiver.until(
      () => receiver.logs.find((l) => l.eventName === 'warden.mesh.rotated' && l.resource['service.name'] === service),
      20_000,
    );
    t.ok(rotated, `${service}: warden.mesh.rotated`);
  }
  t.ok(
    await receiver.until(() =>
      receiver.logs.find((l) => l.eventName === 'warden.ca.renewed' && l.resource['service.name'] === 'warden-ca'),
    ),
    'warden-ca: warden.ca.renewed',
  );
  // …and, with the CA gone, a renewal fails and says so; the sidecar keeps serving.
  await ca.close();
  const failed = await receiver.until(
    () => receiver.logs.find((l) => l.eventName === 'warden.mesh.renewal_failed' && l.resource['service.name'] === 'orders'),
    20_000,
  );
  t.ok(failed, 'orders: warden.mesh.renewal_failed');
  t.equal((await get('/nowhere', webAgent)).status, 404, 'orders still answers with the CA down');
});
