/**
 * Path templates become router patterns (operations.ts toRoutePattern): a literal `:` in a template
 * is a literal, not the router's parameter syntax (docs/adversarial.md 196), through the plan that
 * routes requests.
 */
import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { OpenApiError, type OpenApiDocument } from '../../../src/openapi/document.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import { compilePlan } from '../../../src/pipeline/plan.js';
import { WardenError } from '../../../src/errors.js';
import { testConfigYaml } from '../../support/sidecar.js';

const ok = { responses: { '200': { description: 'ok' } } };

async function planFor(paths: Record<string, Record<string, unknown>>) {
  const yaml = await testConfigYaml('http://127.0.0.1:1', { openapi: { document: './openapi.yaml', allow_public: true } });
  const { config } = parseSidecarConfig('s.yaml', yaml);
  const doc = { openapi: '3.1.0', servers: [{ url: '/v1' }], paths } as unknown as OpenApiDocument;
  return compilePlan(config, { operations: operationsOf(doc) });
}

const routed = (plan: Awaited<ReturnType<typeof planFor>>, method: string, path: string) => {
  const m = plan.resolve(method, path);
  return m instanceof WardenError ? m.code : `${m.route.id} ${JSON.stringify(m.params)}`;
};

t.test('a custom method (AIP-136) takes no other path: /items:search was /items + a parameter', async (t) => {
  const plan = await planFor({ '/items:search': { post: { operationId: 'search', ...ok } } });
  t.equal(routed(plan, 'POST', '/v1/items:search'), 'search {}');
  for (const path of ['/v1/items:purge', '/v1/itemsexport', '/v1/items'])
    t.equal(routed(plan, 'POST', path), 'ERR_ROUTE_NOT_FOUND', `POST ${path}: no operation (it was the search operation's)`);
});

t.test('custom methods (AIP-136): a literal colon routes as itself, and no other path takes its operation', async (t) => {
  const plan = await planFor({
    '/items': { get: { operationId: 'list', ...ok } },
    '/items:search': { post: { operationId: 'search', ...ok } },
    '/items:batchGet': { post: { operationId: 'batchGet', ...ok } },
    '/jobs/{id}': { get: { operationId: 'job', ...ok } },
    '/jobs/{id}:cancel': { post: { operationId: 'cancel', ...ok } },
  });
  t.equal(routed(plan, 'POST', '/v1/items:search'), 'search {}');
  t.equal(routed(plan, 'POST', '/v1/items:batchGet'), 'batchGet {}', 'two custom methods of one resource both load and route');
  t.equal(routed(plan, 'POST', '/v1/jobs/5:cancel'), 'cancel {"id":"5"}', 'a parameter before a literal colon');
  for (const path of ['/v1/items:purge', '/v1/itemsexport'])
    t.equal(routed(plan, 'POST', path), 'ERR_ROUTE_NOT_FOUND', `POST ${path}: no operation (it was the search operation)`);
  // Paths of a GET operation (`/items`, `/jobs/{id}` with id "5:purge"): not POST's.
  for (const path of ['/v1/items', '/v1/jobs/5', '/v1/jobs/5:purge'])
    t.equal(routed(plan, 'POST', path), 'ERR_METHOD_NOT_ALLOWED', `POST ${path}: no POST operation`);
  t.equal(routed(plan, 'GET', '/v1/items'), 'list {}');
  t.equal(routed(plan, 'GET', '/v1/jobs/5'), 'job {"id":"5"}');
});

t.test('a literal "*" in a path template is refused at load', async (t) => {
  t.throws(() => operationsOf({ openapi: '3.1.0', paths: { '/files/*': { get: ok } } }), OpenApiError);
});

t.test(
  'every path parameter is one the router captures: adjacent parameters, or a name the router reads on, are refused at load',
  async (t) => {
    // `/b/{x}{y}` passed config check, then every request was 400 "/path/x is required".
    t.throws(() => operationsOf({ openapi: '3.1.0', paths: { '/b/{x}{y}': { get: ok } } }), {
      pointer: '#/paths/~1b~1{x}{y}/get',
      message:
        'path parameters "{x}" and "{y}" have nothing between them, so no request can tell where one ends: put a literal between them (e.g. "{x}-{y}")',
    });
    t.throws(() => operationsOf({ openapi: '3.1.0', paths: { '/b/{x}{y}{z}/c': { get: ok } } }), { message: /"\{x\}" and "\{y\}"/ });
    t.throws(() => operationsOf({ openapi: '3.1.0', paths: { '/a/{id}_v2': { get: ok } } }), {
      pointer: '#/paths/~1a~1{id}_v2/get',
      message:
        'path parameter "{id}" is followed by "_", which the router reads as part of its name ("id_v2"): follow a parameter with "/", "-", "." or ":"',
    });
    const plan = await planFor({
      '/a/{id}.json': { get: { operationId: 'json', ...ok } },
      '/b/{x}-{y}': { get: { operationId: 'dash', ...ok } },
      '/c/{x}.{y}/d': { get: { operationId: 'dot', ...ok } },
      '/jobs/{id}:cancel': { post: { operationId: 'cancel', ...ok } },
    });
    t.equal(routed(plan, 'GET', '/v1/a/7.json'), 'json {"id":"7"}');
    t.equal(routed(plan, 'GET', '/v1/b/p-q'), 'dash {"x":"p","y":"q"}');
    t.equal(routed(plan, 'GET', '/v1/c/p.q/d'), 'dot {"x":"p","y":"q"}');
    t.equal(routed(plan, 'POST', '/v1/jobs/5:cancel'), 'cancel {"id":"5"}');
  },
);

async function planForDoc(doc: Record<string, unknown>) {
  const yaml = await testConfigYaml('http://127.0.0.1:1', { openapi: { document: './openapi.yaml', allow_public: true } });
  const { config } = parseSidecarConfig('s.yaml', yaml);
  return compilePlan(config, { operations: operationsOf({ openapi: '3.1.0', ...doc }) });
}

t.test("a server variable's every enum value is a base path (docs/adversarial.md 197)", async (t) => {
  const plan = await planForDoc({
    servers: [
      {
        url: 'https://api.example.com/{version}/{region}',
        variables: { version: { default: 'v1', enum: ['v1', 'v2'] }, region: { default: 'eu', enum: ['eu', 'us'] } },
      },
    ],
    paths: { '/items': { get: { operationId: 'list', ...ok } } },
  });
  for (const base of ['/v1/eu', '/v1/us', '/v2/eu', '/v2/us']) t.equal(routed(plan, 'GET', `${base}/items`), 'list {}', `${base}/items`);
  t.equal(routed(plan, 'GET', '/v3/eu/items'), 'ERR_ROUTE_NOT_FOUND', 'a value the enum does not list');
  const many = Object.fromEntries(['a', 'b', 'c'].map((v) => [v, { default: '0', enum: Array.from({ length: 5 }, (_, i) => String(i)) }]));
  t.throws(
    () => operationsOf({ openapi: '3.1.0', servers: [{ url: '/{a}/{b}/{c}', variables: many }], paths: {} }),
    { message: /more than 64 base paths/ },
    '125 base paths are refused',
  );
});

t.test("a path item's or an operation's own servers replace the document's", async (t) => {
  const plan = await planForDoc({
    servers: [{ url: '/v1' }],
    paths: {
      '/items': { get: { operationId: 'list', ...ok }, post: { operationId: 'create', servers: [{ url: '/v2' }], ...ok } },
      '/admin': { servers: [{ url: '/internal' }], get: { operationId: 'admin', ...ok } },
    },
  });
  t.equal(routed(plan, 'GET', '/v1/items'), 'list {}');
  t.equal(routed(plan, 'POST', '/v2/items'), 'create {}', "the operation's server");
  t.equal(routed(plan, 'POST', '/v1/items'), 'ERR_METHOD_NOT_ALLOWED', 'not under the document’s');
  t.equal(routed(plan, 'GET', '/internal/admin'), 'admin {}', "the path item's server");
  t.equal(routed(plan, 'GET', '/v1/admin'), 'ERR_ROUTE_NOT_FOUND');
});

t.test('a colon in a base path is a literal too', async (t) => {
  const plan = await planForDoc({ servers: [{ url: '/api:v1' }], paths: { '/items': { get: { operationId: 'list', ...ok } } } });
  t.equal(routed(plan, 'GET', '/api:v1/items'), 'list {}');
  t.equal(routed(plan, 'GET', '/apiX/items'), 'ERR_ROUTE_NOT_FOUND');
});

async function planWith(doc: Record<string, unknown>, documentUrl?: string) {
  const yaml = await testConfigYaml('http://127.0.0.1:1', { openapi: { document: './openapi.yaml', allow_public: true } });
  const { config } = parseSidecarConfig('s.yaml', yaml);
  return compilePlan(config, { operations: operationsOf({ openapi: '3.1.0', ...doc }, { documentUrl }) });
}

t.test('a server URL is a URI reference: relative to the document, protocol-relative, normalised as requests are', async (t) => {
  const paths = { '/items': { get: { operationId: 'list', ...ok } } };
  for (const [url, documentUrl, base] of [
    ['//api.example.com/v1', undefined, '/v1'],
    ['v1', undefined, '/v1'],
    ['./v1/', undefined, '/v1'],
    ['../api/v1', undefined, '/api/v1'],
    ['v1', 'https://svc.example.com/docs/openapi.yaml', '/docs/v1'],
    ['../v1', 'http://127.0.0.1:8080/docs/openapi.yaml', '/v1'],
    ['/v1', 'https://svc.example.com/docs/openapi.yaml', '/v1'],
    ['v1', './openapi.yaml', '/v1'],
    ['https://api.example.com/%76%31', undefined, '/v1'],
    ['/api v1', undefined, '/api%20v1'],
    ['https://api.example.com/api%20v1', undefined, '/api%20v1'],
    ['/{p}', undefined, '/admin'],
  ] as const) {
    const plan = await planWith({ servers: [{ url, variables: { p: { default: 'v1/../admin' } } }], paths }, documentUrl);
    t.equal(routed(plan, 'GET', `${base}/items`), 'list {}', `${url} (document ${documentUrl ?? 'a file'}): ${base}/items`);
  }
  const plan = await planWith({ servers: [{ url: '//api.example.com/v1' }], paths });
  t.equal(routed(plan, 'GET', '//api.example.com/v1/items'), 'ERR_ROUTE_NOT_FOUND', 'the host is no part of the base path');
});

t.test('a server URL with a query or fragment, another scheme or a path no request has is refused, naming it', async (t) => {
  const paths = { '/items': { get: { operationId: 'list', servers: [{ url: '/v1' }, { url: '/v2?x=1' }], ...ok } } };
  t.throws(() => operationsOf({ openapi: '3.1.0', paths }), {
    pointer: '#/paths/~1items/get/servers/1/url',
    message: /^server URL "\/v2\?x=1" has a query, which cannot be part of a base path: remove it/,
  });
  for (const [url, message] of [
    ['/v1?tenant=a', /has a query/],
    ['https://api.example.com/v1?x=1', /has a query/],
    ['/v1#x', /has a fragment/],
    ['urn:x:y', /has the scheme urn/],
    ['https://api.example.com/api%2Fv1', /has a path no request can have \(An encoded "\/"/],
    ['https://api.example.com/%C3', /has a path no request can have/],
    ['http://[::1', /cannot be read as a URL/],
  ] as const)
    t.throws(() => operationsOf({ openapi: '3.1.0', servers: [{ url }], paths }), { pointer: '#/servers/0/url', message }, url);
  const itemLevel = { '/items': { servers: [{ url: '//h/v1?x' }], get: { operationId: 'list', ...ok } } };
  t.throws(() => operationsOf({ openapi: '3.1.0', paths: itemLevel }), {
    pointer: '#/paths/~1items/servers/0/url',
    message: /has a query/,
  });
});
