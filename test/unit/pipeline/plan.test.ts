import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { WardenError } from '../../../src/errors.js';
import { compilePlan, PlanError, type RouteMatch } from '../../../src/pipeline/plan.js';
import type { Operation } from '../../../src/openapi/operations.js';
import { testConfigYaml } from '../../support/sidecar.js';

async function plan(extra: Record<string, unknown>) {
  return compilePlan(parseSidecarConfig('s.yaml', await testConfigYaml('http://127.0.0.1:1', extra)).config);
}

t.test('without routes every request takes the default route', async (t) => {
  const p = await plan({});
  const m = p.resolve('DELETE', '/anything/at/all') as RouteMatch;
  t.equal(m.route.id, '_default');
  t.same(m.route.stages, [], 'empty pipeline');
});

t.test('routes by method and path pattern, with params; HEAD follows GET', async (t) => {
  const p = await plan({
    routes: [
      { id: 'orders.get', path: '/orders/:id', methods: ['GET'] },
      { id: 'orders.create', path: '/orders', methods: ['POST'], limits: { max_body_bytes: '1KiB' } },
      { id: 'files', path: '/files/*' },
    ],
  });
  const get = p.resolve('GET', '/orders/42') as RouteMatch;
  t.equal(get.route.id, 'orders.get');
  t.same({ ...get.params }, { id: '42' });
  t.equal((p.resolve('HEAD', '/orders/42') as RouteMatch).route.id, 'orders.get');
  t.equal((p.resolve('POST', '/orders') as RouteMatch).route.maxBodyBytes, 1024);
  t.equal((p.resolve('PATCH', '/files/a/b/c') as RouteMatch).route.id, 'files', '"*" methods take any method');
});

t.test('"*" is every method but TRACE, which a route must list (an echoing backend would hand back the minted token)', async (t) => {
  const p = await plan({
    routes: [
      { id: 'files', path: '/files/*' },
      { id: 'debug', path: '/debug', methods: ['TRACE', 'GET'] },
    ],
  });
  const trace = p.resolve('TRACE', '/files/a') as WardenError;
  t.type(trace, WardenError);
  t.equal(trace.code, 'ERR_METHOD_NOT_ALLOWED');
  t.equal(trace.rule, 'routing.trace');
  t.same(trace.headers, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' });
  t.equal((p.resolve('PROPFIND', '/files/a') as RouteMatch).route.id, 'files', 'other methods still match "*"');
  t.equal((p.resolve('TRACE', '/debug') as RouteMatch).route.id, 'debug', 'listed, it is routed');
  const none = await plan({});
  t.match(none.resolve('TRACE', '/anything'), { code: 'ERR_METHOD_NOT_ALLOWED', rule: 'routing.trace' }, 'the default route too');
});

t.test('unmatched requests: 404, or 405 with Allow; passthrough when configured', async (t) => {
  const routes = [
    { id: 'a', path: '/a', methods: ['GET', 'POST'] },
    { id: 'b', path: '/b', methods: ['PUT'] },
  ];
  const p = await plan({ routes });
  const notFound = p.resolve('GET', '/zzz') as WardenError;
  t.equal(notFound.code, 'ERR_ROUTE_NOT_FOUND');
  t.equal(notFound.status, 404);
  const wrongMethod = p.resolve('DELETE', '/a') as WardenError;
  t.equal(wrongMethod.code, 'ERR_METHOD_NOT_ALLOWED');
  t.equal(wrongMethod.status, 405);
  t.same(wrongMethod.headers, { allow: 'GET, POST, HEAD' });

  const open = await plan({ routes, routing: { unmatched: 'passthrough' } });
  t.equal((open.resolve('DELETE', '/zzz') as RouteMatch).route.id, '_default');
});

t.test('a route has the access stage only when its policy can refuse', async (t) => {
  const p = await plan({
    access: { clients: { allow: ['10.0.0.0/8'] } },
    routes: [
      { id: 'inherits', path: '/in' },
      { id: 'open', path: '/open', access: {} },
      { id: 'closed', path: '/closed', access: { action: 'deny' } },
    ],
  });
  const stagesOf = (path: string) => (p.resolve('GET', path) as RouteMatch).route.stages.map((s) => s.id);
  t.same(stagesOf('/in'), ['access'], 'top-level access applies to routes without their own');
  t.same(stagesOf('/open'), [], "a route's own access replaces the top-level one");
  t.same(stagesOf('/closed'), ['access']);
});

t.test('routes that cannot be registered are reported at their field', async (t) => {
  const text = await testConfigYaml('http://127.0.0.1:1', {
    routes: [
      { id: 'a', path: '/x/:id', methods: ['GET'] },
      { id: 'b', path: '/x/:id', methods: ['GET'] },
    ],
  });
  const config = parseSidecarConfig('s.yaml', text).config;
  let caught: unknown;
  try {
    compilePlan(config);
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof PlanError);
  t.same((caught as PlanError).field, ['routes', 1, 'path']);
  t.equal(
    (caught as PlanError).message,
    'cannot route "/x/:id": routes[0] (id a) already takes GET on the same path',
    'naming the other route',
  );

  // Patterns that differ only in parameter names; ANY against a method; literal colons (`::`) are not parameters.
  const refusal = (routes: Record<string, unknown>[]) => {
    try {
      compilePlan(parseSidecarConfig('s.yaml', routesYaml(routes)).config);
      return undefined;
    } catch (err) {
      return (err as PlanError).message;
    }
  };
  const routesYaml = (routes: Record<string, unknown>[]) => text.replace(/routes:[\s\S]*$/, `routes: ${JSON.stringify(routes)}\n`);
  t.equal(
    refusal([
      { id: 'a', path: '/x/:id', methods: ['GET'] },
      { id: 'b', path: '/x/:name', methods: ['GET', 'POST'] },
    ]),
    'cannot route "/x/:name": routes[0] (id a) already takes GET on "/x/:id" (patterns that differ only in parameter names are the same route)',
  );
  t.match(
    refusal([
      { id: 'a', path: '/x/:id', methods: ['GET'] },
      { id: 'b', path: '/x/:name' },
    ]),
    /routes\[0\] \(id a\) already takes its methods on "\/x\/:id"/,
  );
  t.equal(
    refusal([
      { id: 'a', path: '/x/:id', methods: ['GET'] },
      { id: 'b', path: '/x/:name', methods: ['POST'] },
    ]),
    undefined,
    'other methods: no conflict',
  );
  t.equal(
    refusal([
      { id: 'a', path: '/items::search', methods: ['POST'] },
      { id: 'b', path: '/items::purge', methods: ['POST'] },
    ]),
    undefined,
    'literal colons',
  );
});

t.test('stage order: rate-limit before authn, unless it is keyed by token identity', async (t) => {
  const { createTokenRuntime } = await import('../../../src/identity/token-runtime.js');
  const { createEventBus } = await import('../../../src/telemetry/events.js');
  const { createLogger } = await import('../../../src/telemetry/logger.js');
  const { createMetrics } = await import('../../../src/telemetry/metrics.js');
  const { createMemoryRateLimitRuntime } = await import('../../../src/traffic/rate-limit-runtime.js');
  const stagesWith = async (key: string[]) => {
    const { config } = parseSidecarConfig(
      's.yaml',
      await testConfigYaml('http://127.0.0.1:1', {
        tokens: {
          issuers: [{ id: 'a', issuer: 'https://idp.example', discovery: false, jwks_uri: 'https://idp.example/jwks', audience: ['x'] }],
        },
        rate_limits: { key, default: { rate: 5 } },
        routes: [{ id: 'r', path: '/r', scopes: { all_of: ['s'] } }],
      }),
    );
    const tokens = await createTokenRuntime(config.tokens!, {
      serviceName: 'svc',
      selfId: undefined,
      events: createEventBus(),
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics({ serviceName: 'svc', processMetrics: false }).tokens,
      offline: true,
    });
    t.teardown(() => tokens.close());
    const p = compilePlan(config, { tokens, rateLimits: createMemoryRateLimitRuntime(10) });
    const { route } = p.resolve('GET', '/r') as RouteMatch;
    // The route takes POSTs, so its body stages start with the _method check, and minting follows it.
    return [...route.stages, ...route.bodyStages].map((s) => s.id);
  };
  t.same(
    await stagesWith(['ip']),
    ['rate-limit', 'authn', 'authz-scopes', 'method-field', 'mint-token'],
    'by address: before authn (floods never reach the IdP)',
  );
  t.same(
    await stagesWith(['client_id', 'ip']),
    ['rate-limit', 'authn', 'rate-limit', 'authz-scopes', 'method-field', 'mint-token'],
    "by client_id: after authn, with the check of the address's failed authentications before it",
  );
});

t.test('a path that declares HEAD itself takes HEAD to that route; GET brings HEAD only where none is declared', async (t) => {
  // The GET route's automatic HEAD used to collide with the declared one: the plan was refused at startup.
  for (const order of ['GET first', 'HEAD first']) {
    const routes = [
      { id: 'items.get', path: '/items/:id', methods: ['GET'] },
      // Another parameter name is the same route to find-my-way.
      { id: 'items.head', path: '/items/:itemId', methods: ['HEAD'] },
      { id: 'other.get', path: '/other', methods: ['GET'] },
    ];
    const p = await plan({ routes: order === 'GET first' ? routes : [routes[1], routes[0], routes[2]] });
    t.equal((p.resolve('GET', '/items/7') as RouteMatch).route.id, 'items.get', order);
    t.equal((p.resolve('HEAD', '/items/7') as RouteMatch).route.id, 'items.head', order);
    t.equal((p.resolve('HEAD', '/other') as RouteMatch).route.id, 'other.get', `${order}: HEAD still follows GET elsewhere`);
    const allow = (p.resolve('PUT', '/items/7') as WardenError).headers?.allow;
    t.same(String(allow).split(', ').sort(), ['GET', 'HEAD'], order);
  }

  const op = (id: string, method: string): Operation => ({
    id,
    method,
    paths: ['/api/echo'],
    pointer: `#/paths/~1echo/${method.toLowerCase()}`,
    security: undefined,
    rateLimit: undefined,
    parameters: [],
    requestBody: undefined,
    responses: {},
    dialect: '3.0',
  });
  const config = parseSidecarConfig('s.yaml', await testConfigYaml('http://127.0.0.1:1', {})).config;
  const p = compilePlan(config, { operations: [op('echo', 'GET'), op('echoHead', 'HEAD'), op('echoOpt', 'OPTIONS')] });
  t.equal((p.resolve('GET', '/api/echo') as RouteMatch).route.id, 'echo', 'OpenAPI get');
  t.equal((p.resolve('HEAD', '/api/echo') as RouteMatch).route.id, 'echoHead', "OpenAPI head: the document's own operation");
  t.equal((p.resolve('OPTIONS', '/api/echo') as RouteMatch).route.id, 'echoOpt');
  t.equal((p.declaredCaseless('HEAD', '/API/echo') as { id: string } | undefined)?.id, 'echoHead', 'the case-insensitive router too');
});

t.test("a path parameter of any length names its route: over find-my-way's default bound it fell to the catch-all", async (t) => {
  const p = await plan({
    routes: [
      { id: 'orders', path: '/orders/:id', methods: ['GET'], access: { action: 'deny' } },
      { id: 'all', path: '/*' },
    ],
  });
  for (const n of [10, 1024, 1025, 16_000]) {
    t.equal((p.resolve('GET', `/orders/${'a'.repeat(n)}`) as RouteMatch).route.id, 'orders', `an id of ${n} characters`);
  }
});

t.test('readsQuery: only routes where a stage reads the query (review1 F3)', async (t) => {
  const { createTokenRuntime } = await import('../../../src/identity/token-runtime.js');
  const { createEventBus } = await import('../../../src/telemetry/events.js');
  const { createLogger } = await import('../../../src/telemetry/logger.js');
  const { createMetrics } = await import('../../../src/telemetry/metrics.js');
  const routeOf = async (extra: Record<string, unknown>, path = '/r') => {
    const { config } = parseSidecarConfig('s.yaml', await testConfigYaml('http://127.0.0.1:1', extra));
    const tokens =
      config.tokens &&
      (await createTokenRuntime(config.tokens, {
        serviceName: 'svc',
        selfId: undefined,
        events: createEventBus(),
        logger: createLogger({ level: 'silent' }),
        metrics: createMetrics({ serviceName: 'svc', processMetrics: false }).tokens,
        offline: true,
      }));
    if (tokens) t.teardown(() => tokens.close());
    // The waf and OpenAPI validation: test/integration/django-werkzeug-readings.test.ts.
    const p = compilePlan(config, { tokens });
    return (p.resolve('GET', path) as RouteMatch).route;
  };
  const issuers = [{ id: 'a', issuer: 'https://idp.example', discovery: false, jwks_uri: 'https://idp.example/jwks', audience: ['x'] }];
  const routes = [
    { id: 'r', path: '/r', methods: ['GET'] },
    { id: 'open', path: '/open', methods: ['GET'], authn: { mode: 'off' } },
  ];
  t.equal((await routeOf({})).readsQuery, false, 'no stage: no');
  t.equal((await routeOf({ routes: routes.slice(0, 1) })).readsQuery, false, 'a route without stages: no');
  t.equal((await routeOf({ tokens: { issuers }, routes })).readsQuery, false, 'a token from the Authorization header: no');
  const query = { issuers, sources: [{ from: 'authorization' }, { from: 'query', name: 'access_token' }] };
  t.equal((await routeOf({ tokens: query, routes })).readsQuery, true, 'a query token source: yes');
  t.equal(
    (await routeOf({ tokens: query, routes }, '/open')).readsQuery,
    true,
    'where authn is off too: its stage still strips the source from the query (review rt29-3)',
  );
});
