/**
 * Path parameters named with characters find-my-way ends a `:name` at (`{user-id}`, Microsoft
 * Graph's and many generated documents; `{api.version}`; `{item$id}`) were refused at load ("must be
 * letters, digits or _"): OpenAPI allows any name. They are routed under a router-safe name and
 * handed to the stages under the declared one (operations.ts, plan.ts). Names no path segment's
 * parameter can have are still refused.
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

const load = (template: string) => () => operationsOf({ openapi: '3.1.0', paths: { [template]: { get: ok } } });

t.test('a name with "-", ".", "$" or other characters routes, and its value is given under the declared name', async (t) => {
  const plan = await planFor({
    '/users/{user-id}': { get: { operationId: 'user', ...ok }, delete: { operationId: 'deleteUser', ...ok } },
    '/v/{api.version}/x': { get: { operationId: 'versioned', ...ok } },
    '/a/{item$id}': { get: { operationId: 'item', ...ok } },
    '/t/{a-b}/{a_b}': { get: { operationId: 'both', ...ok } },
    '/u/{a-b}/{a_b}/{a.b}/{a_b_2}': { get: { operationId: 'many', ...ok } },
    '/f/{file-name}.json': { get: { operationId: 'file', ...ok } },
    '/jobs/{job-id}:cancel': { post: { operationId: 'cancel', ...ok } },
    '/g/{x-y}-{z}': { get: { operationId: 'dashed', ...ok } },
    '/h/{ü}/{名前}/{a:b}/{(c)}': { get: { operationId: 'unicode', ...ok } },
    '/plain/{id}': { get: { operationId: 'plain', ...ok } },
  });
  t.equal(routed(plan, 'GET', '/v1/users/42'), 'user {"user-id":"42"}');
  t.equal(routed(plan, 'DELETE', '/v1/users/42'), 'deleteUser {"user-id":"42"}');
  t.equal(routed(plan, 'HEAD', '/v1/users/42'), 'user {"user-id":"42"}', 'HEAD, routed to the GET operation');
  t.equal(routed(plan, 'GET', '/v1/v/2.0/x'), 'versioned {"api.version":"2.0"}');
  t.equal(routed(plan, 'GET', '/v1/a/9'), 'item {"item$id":"9"}');
  t.equal(routed(plan, 'GET', '/v1/t/p/q'), 'both {"a-b":"p","a_b":"q"}', '{a-b} and {a_b} in one template: two parameters');
  t.equal(
    routed(plan, 'GET', '/v1/u/p/q/r/s'),
    'many {"a-b":"p","a_b":"q","a.b":"r","a_b_2":"s"}',
    'router names made unique among the declared ones too',
  );
  t.equal(routed(plan, 'GET', '/v1/f/report.json'), 'file {"file-name":"report"}');
  t.equal(routed(plan, 'POST', '/v1/jobs/5:cancel'), 'cancel {"job-id":"5"}', 'before a literal colon');
  t.equal(routed(plan, 'GET', '/v1/g/p-q'), 'dashed {"x-y":"p","z":"q"}');
  t.equal(routed(plan, 'GET', '/v1/h/1/2/3/4'), 'unicode {"ü":"1","名前":"2","a:b":"3","(c)":"4"}');
  t.equal(routed(plan, 'GET', '/v1/plain/7'), 'plain {"id":"7"}', 'a plain name as before');
  t.equal(routed(plan, 'GET', '/v1/users'), 'ERR_ROUTE_NOT_FOUND');
  const m = plan.resolve('GET', '/v1/users/42');
  if (!(m instanceof WardenError)) {
    t.equal(Object.getPrototypeOf(m.params), null, 'the declared names are held in an object with no prototype');
    t.same(Object.keys(m.params), ['user-id'], 'the router-safe name is not among them');
  }
});

t.test('two templates whose parameters differ only in name are one route, as before', async (t) => {
  await t.rejects(planFor({ '/u/{user-id}': { get: { operationId: 'a', ...ok } }, '/u/{user_id}': { get: { operationId: 'b', ...ok } } }), {
    message: /already takes GET/,
  });
  const plan = await planFor({
    '/u/{user-id}': { get: { operationId: 'a', ...ok } },
    '/u/{user_id}': { post: { operationId: 'b', ...ok } },
  });
  t.equal(routed(plan, 'GET', '/v1/u/1'), 'a {"user-id":"1"}');
  t.equal(routed(plan, 'POST', '/v1/u/1'), 'b {"user_id":"1"}');
});

t.test('names no path segment can carry are refused, each with a message naming it', async (t) => {
  for (const [template, message] of [
    ['/a/{}', /^path parameter "\{\}" has no name: name it/],
    ['/a/{a b}', /^path parameter "\{a b\}": a name cannot hold white space or a control character/],
    ['/a/{ id}', /white space or a control character/],
    ['/a/{id\t}', /white space or a control character/],
    ['/a/{id\u0001}', /white space or a control character/],
    ['/a/{id\u2003}', /white space or a control character/],
    ['/a/{a/b}', /^path parameter "\{a\/b\}": a name cannot hold "\/"/],
    ['/a/{a{b}', /a "\{" that opens no parameter/],
    ['/a/{a}b}', /a "\}" that closes no parameter/],
    ['/a/{a', /a "\{" that opens no parameter/],
  ] as const)
    t.throws(load(template), { name: 'OpenApiError', message }, JSON.stringify(template));
});

t.test("the existing checks hold for such names: a name the router reads on, adjacent parameters, '*', twice", async (t) => {
  t.throws(load('/a/{user-id}_v2'), {
    message:
      'path parameter "{user-id}" is followed by "_", which the router reads as part of its name ("user-id_v2"): follow a parameter with "/", "-", "." or ":"',
  });
  t.throws(load('/a/{user-id}x'), { message: /^path parameter "\{user-id\}" is followed by "x"/ });
  t.throws(load('/b/{a-b}{c}'), { message: /^path parameters "\{a-b\}" and "\{c\}" have nothing between them/ });
  t.throws(load('/b/{a-b}/*'), OpenApiError);
  t.throws(load('/b/{a-b}/{a-b}'), { message: 'path parameter "{a-b}" appears twice' });
});
