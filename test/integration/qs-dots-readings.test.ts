/**
 * Names qs reads with `allowDots` (red team round 26B, run against real Koa 3 behind a sidecar:
 * koa-bodyparser and koa-body, whose co-body parses forms with qs `allowDots: true` by default,
 * koa-override after them, and restify 11's `queryParser({allowDots: true})`), replayed here
 * against the test backend. qs rewrites each `.name` of a decoded key to `[name]`:
 *
 * - `.role=admin`, `%2Erole=admin`, `role.0=admin` (an array) reached Koa as `role`, past the
 *   schema's enum (additionalProperties left open, the OpenAPI default), `profile.role` as
 *   `profile[role]`; in the query, `?.limit=1000` past `maximum: 100` and `?filter.color=green` past
 *   a deepObject's enum and its `additionalProperties: false`;
 * - `._method=DELETE` in a form body (and `?._method=` under such a query parser) ran koa-override's
 *   DELETE, which the sidecar denied.
 *
 * Each is refused before the backend; dotted names that name nothing declared still pass.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.0.3
info: { title: t, version: '1' }
security: []
paths:
  /v1/users:
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/User' } }
          multipart/form-data: { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /v1/profile:
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                name: { type: string }
                profile: { type: object, properties: { role: { type: string, enum: [user] } } }
            encoding: { profile: { style: deepObject, explode: true } }
      responses: { '200': { description: ok } }
  /v1/items:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
        - name: filter
          in: query
          style: deepObject
          explode: true
          schema: { type: object, additionalProperties: false, properties: { color: { type: string, enum: [red, black] } } }
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      required: [name]
      properties:
        name: { type: string, pattern: '^[a-z]+$' }
        role: { type: string, enum: [user] }
`;

/** Every spelling of `role` (as sent, escapes and all) qs 6.17 reads as `role` with allowDots only (the red team's fuzz-keys.mjs). */
const ROLE_SPELLINGS = [
  'role.]',
  '.role',
  '.role.',
  '.role]',
  '.role[]',
  '.role%2E',
  '.role%5D',
  '.role..',
  '.role.]',
  '%2Erole',
  '%2Erole.',
  '%2Erole]',
  '%2Erole[]',
  '%2Erole%2E',
  '%2Erole%5D',
  '%2Erole..',
  '%2Erole.]',
  'role.0',
];

t.test('names qs reads with allowDots are refused before the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, {
    openapi: { document: openApiFile(DOCUMENT), allow_public: true, validation: { mode: 'enforce', unknown_query: 'allow' } },
  });
  // No OpenAPI: only the _method check reads the body; DELETE is denied, as koa-override's target was.
  const routed = await startTestSidecar(t, backend.url, {
    routes: [
      { id: 'create', path: '/v1/users', methods: ['POST'] },
      { id: 'wipe', path: '/v1/users', methods: ['DELETE'], access: { action: 'deny' } },
    ],
  });
  const agents = new Map([validated, routed].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const agent = (s: typeof validated) => agents.get(s) as ReturnType<typeof testAgent>;
  const form = (s: typeof validated, path: string, body: string) =>
    fetchText(`${s.url}${path}`, agent(s), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  const get = (path: string) => fetchText(`${validated.url}${path}`, agent(validated));

  await t.test('form fields read as a declared property (koa-bodyparser, koa-body)', async (t) => {
    const before = backend.requests.length;
    for (const key of ROLE_SPELLINGS) {
      const r = await form(validated, '/v1/users', `name=eve&${key}=admin`);
      t.equal(r.status, 400, `${key}: 400`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /"role" by qs with allowDots/ }, key);
    }
    const profile = await form(validated, '/v1/profile', 'name=eve&profile.role=admin');
    t.equal(profile.status, 400, 'profile.role (profile[role] to qs): 400');
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await form(validated, '/v1/users', 'name=eve&role=user')).status, 200, 'the declared spelling passes');
    const dotted = await form(validated, '/v1/users', 'name=eve&user.email=eve%40example.com&fields.articles=title&.x=1');
    t.equal(dotted.status, 200, 'dotted names that name nothing declared pass');
    t.equal(backend.requests.length, before + 2, 'and reach the backend');
  });

  await t.test('a multipart field read the same way', async (t) => {
    const body =
      '--b\r\nContent-Disposition: form-data; name="name"\r\n\r\neve\r\n--b\r\nContent-Disposition: form-data; name=".role"\r\n\r\nadmin\r\n--b--\r\n';
    const r = await fetchText(`${validated.url}/v1/users`, agent(validated), {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
      body,
    });
    t.equal(r.status, 400, '.role: 400');
  });

  await t.test('query keys read as a declared parameter (restify queryParser({allowDots: true}), koa-qs)', async (t) => {
    const before = backend.requests.length;
    for (const search of [
      '?.limit=1000',
      '?%2Elimit=1000',
      '?limit.0=1000',
      '?filter.color=green',
      '?filter.isAdmin=true',
      '?.filter.color=green',
    ]) {
      const r = await get(`/v1/items${search}`);
      t.equal(r.status, 400, `${search}: 400`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /by qs with allowDots/ }, search);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    for (const search of ['?limit=5&filter[color]=red', '?user.email=x&fields.articles=title', '?limits.x=1'])
      t.equal((await get(`/v1/items${search}`)).status, 200, `${search}: passes`);
  });

  await t.test('a _method qs reads with allowDots is an override (koa-override)', async (t) => {
    const before = backend.requests.length;
    for (const s of [routed, validated]) {
      for (const key of ['._method', '%2E_method', '._method]', '._method[]', '%2E_method.'])
        t.match((await form(s, '/v1/users', `name=eve&${key}=DELETE`)).json(), { code: 'ERR_REQUEST_OVERRIDE' }, `form ${key}`);
      t.match((await form(s, '/v1/users?._method=DELETE', 'name=eve')).json(), { code: 'ERR_REQUEST_OVERRIDE' }, 'query ._method');
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await form(routed, '/v1/users', 'name=eve&_method.=DELETE')).status, 200, '_method. is another name to qs: passes');
    t.equal((await form(routed, '/v1/users', 'name=eve&x._method=DELETE')).status, 200, 'x._method is x[_method] to qs: passes');
  });
});
