/**
 * Requests Node backends read otherwise than the checks here, each run by hand against the real
 * frameworks behind a sidecar (Express 4.21 and 5 with body-parser and method-override, Fastify
 * 4.29 with @fastify/formbody) and replayed here against the test backend: refused before it.
 *
 * - Fastify 4 ends the path at the first ";" and reads the rest as the query;
 * - Fastify 4 picks a body parser by substring of the media type;
 * - Express's body-parser decodes the charset a JSON Content-Type names (UTF-7 included);
 * - Express 4 leaves a body unread whose Content-Type parameters it cannot parse.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, rawTls, statusOf, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users:
    post:
      operationId: createUser
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: '#/components/schemas/User' } }
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/User' } }
          application/vnd.api+json: { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /any:
    post:
      operationId: createAny
      requestBody:
        required: true
        content:
          '*/*': { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /files/{name}:
    get:
      operationId: getFile
      parameters:
        - { name: name, in: path, required: true, schema: { type: string } }
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
      responses: { '200': { description: ok } }
  /docs/{id}:
    get:
      operationId: getDoc
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses: { '200': { description: ok } }
  /docs/{id}/summary:
    get:
      operationId: getDocSummary
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      responses: { '200': { description: ok } }
  /admin/stats:
    get:
      operationId: adminStats
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      additionalProperties: false
      required: [name]
      properties:
        name: { type: string, maxLength: 40 }
        bio: { type: string, maxLength: 200 }
        role: { type: string, enum: [user] }
`;

t.test('Fastify, Express readings of paths and Content-Types are refused before the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    // Paths no operation names go on (a catch-all): `/admin/stats;x/y` is one of them.
    routing: { unmatched: 'passthrough' },
    openapi: {
      document: openApiFile(DOCUMENT),
      allow_public: true,
      operations: { getDoc: { access: { action: 'deny' } }, adminStats: { access: { action: 'deny' } } },
    },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const get = async (path: string) =>
    statusOf(await rawTls(s.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, { ca: s.ca }));
  const post = (path: string, type: string, body: string) =>
    fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': type }, body });
  const rule = () => s.events.at(-1)?.['warden.rule'];

  await t.test('text after a ";" in the path (Fastify 4 reads it as the query)', async (t) => {
    // Fastify 4: `/docs/1;/summary` ran getDoc (denied here) with the query {"/summary": ""};
    // `/admin/stats;x/y` ran the denied adminStats; `/files/a;limit=1000` read limit=1000.
    const before = backend.requests.length;
    for (const path of [
      '/docs/1;/summary',
      '/docs/1;x/summary',
      '/admin/stats;x/y',
      '/files/a;limit=1000',
      '/files/a;limit=1000?limit=5',
    ]) {
      t.equal(await get(path), 400, `${path}: 400`);
      t.equal(rule(), 'path.semicolon_query', `${path}: rule path.semicolon_query`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal(await get('/docs/1/summary'), 200, 'the public operation as such passes');
    t.equal(await get('/files/a%3Blimit=1000'), 200, 'an encoded ";" is no delimiter to Fastify, and passes');
    t.equal(backend.requests.at(-1)?.url, '/files/a%3Blimit=1000', 'forwarded as sent');
  });

  await t.test('a form type inside a longer media type (Fastify 4 reads a form)', async (t) => {
    // Fastify 4 with @fastify/formbody read `role=admin` from this JSON string, past the enum.
    const before = backend.requests.length;
    for (const type of [
      'application/x-www-form-urlencoded+json',
      'application/x-www-form-urlencodedx',
      'xapplication/x-www-form-urlencoded',
    ]) {
      const r = await post('/any', type, '{"name":"eve","bio":"&role=admin&z="}');
      t.equal(r.status, 400, `${type}: 400`);
      t.equal(r.json().code, 'ERR_REQUEST_MALFORMED', type);
      t.equal(rule(), 'content_type.embedded_type', `${type}: rule content_type.embedded_type`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await post('/users', 'application/vnd.api+json', '{"name":"eve"}')).status, 200, 'a +json type passes');
  });

  await t.test('JSON in a charset that is not ASCII-compatible (Express decodes it)', async (t) => {
    // Express 4 and 5 read this UTF-7 body as {"name":"eve","bio":"x","role":"admin"}.
    const utf7 = '{"name":"eve","bio":"x+ACIALAAiAHIAbwBsAGUAIgA6ACIAYQBkAG0AaQBu-"}';
    const before = backend.requests.length;
    for (const type of [
      'application/json; charset=utf-7',
      'application/vnd.api+json;charset="UTF-7"',
      'application/json; charset=utf-16le',
    ]) {
      const r = await post('/users', type, utf7);
      t.equal(r.status, 415, `${type}: 415`);
      t.equal(r.json().code, 'ERR_MEDIA_TYPE_UNSUPPORTED', type);
      t.equal(rule(), 'content_type.charset', `${type}: rule content_type.charset`);
    }
    const form = await post('/users', 'application/x-www-form-urlencoded; charset=utf-7', 'name=eve&bio=x+ACY-role+AD0-admin');
    t.equal(form.status, 415, 'a UTF-7 form: 415');
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await post('/users', 'application/json; charset=UTF-8', '{"name":"eve"}')).status, 200, 'UTF-8 JSON passes');
    const latin1 = await post('/users', 'application/x-www-form-urlencoded; charset=iso-8859-1', 'name=eve');
    t.equal(latin1.status, 200, 'an ISO-8859-1 form passes');
  });

  await t.test('Content-Type parameters that are not RFC 9110 syntax (Express 4 leaves the body unread)', async (t) => {
    const before = backend.requests.length;
    for (const type of ['application/json;charset="utf-8', 'application/json; charset', 'application/json; charset = utf-8']) {
      const r = await post('/users', type, '{"name":"eve"}');
      t.equal(r.status, 400, `${type}: 400`);
      t.equal(rule(), 'content_type.parameters', `${type}: rule content_type.parameters`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    for (const type of ['application/json;charset="utf-8"', 'application/json ; charset=utf-8;', 'application/json; x="a\\"b"'])
      t.equal((await post('/users', type, '{"name":"eve"}')).status, 200, `${type}: passes`);
  });
});
