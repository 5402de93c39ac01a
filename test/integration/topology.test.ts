/**
 * The compose topology as plain processes: a Warden CA, two `warden proxy` processes (orders and
 * inventory) that enroll at it, their backends, and an OTLP/HTTP receiver standing in for the
 * shared collector. A caller with a workload certificate calls orders; orders' backend calls
 * inventory through orders' egress (mTLS, destination identity checked), passing the trace context
 * on as a traced backend does. Asserted on what reaches the receiver: one trace across both
 * services, and the security events of both sidecars as log records under their service's name.
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
import { testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
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
      telemetry: { otlp: { endpoint: receiver.url, protocol: 'http/json', export_interval: '200ms', timeout: '1s' } },
    }),
    env: {},
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
    expiry.points.every((p) => p.value > 60 && p.value <= 24 * 3600),
    `the certificate's seconds to expiry, from the same instrument as /metrics (${expiry.points.map((p) => p.value).join(', ')})`,
  );
  const decisions = await receiver.until(() => {
    const points = receiver.metrics.filter((m) => m.name === 'warden.ratelimit.decisions').flatMap((m) => m.points);
    const of = (d: string) => points.some((p) => p.attributes['http.route'] === 'quote' && p.attributes.decision === d && p.value > 0);
    return of('allowed') && of('limited') ? points : undefined;
  });
  t.ok(decisions.length >= 2, 'rate-limit decisions (allowed and limited) per route, from the same instrument as /metrics');
});
