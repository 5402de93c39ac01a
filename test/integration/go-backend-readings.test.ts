/**
 * Bodies a Go net/http backend reads otherwise than the checks here, each run by hand against a real
 * Go 1.19 handler behind a sidecar and replayed here against a Node backend that reads as Go does
 * (test/support/go-reading-backend.ts):
 *
 * - a JSON document sent as a form: validated as one undeclared field here, decoded as JSON by a
 *   handler that calls `json.NewDecoder(r.Body).Decode` whatever the Content-Type (400, `body.json_as_form`).
 */
import t from 'tap';
import { fetchText, testAgent } from '../support/clients.js';
import { goJsonReading, startGoReadingBackend } from '../support/go-reading-backend.js';
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
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      properties:
        role: { type: string, enum: [user] }
        name: { type: string, pattern: '^[a-z]+$' }
        q: { type: string }
        limit: { type: integer, maximum: 100 }
`;

const FORM = 'application/x-www-form-urlencoded';

t.test('a JSON document sent as a form is refused before a backend that decodes JSON whatever the type', async (t) => {
  const backend = await startGoReadingBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (type: string, body: string | Buffer) =>
    fetchText(`${s.url}/users`, agent, { method: 'POST', headers: { 'content-type': type }, body });

  // Controls: the same members as JSON or as a form are refused by the schema; allowed ones pass.
  t.equal((await post('application/json', '{"role":"admin"}')).status, 400, 'JSON role=admin: the schema refuses it');
  t.equal((await post(FORM, 'role=admin')).status, 400, 'form role=admin: the schema refuses it');
  const hits = backend.hits;
  for (const [label, body] of [
    ['{"role":"admin"}', '{"role":"admin"}'],
    ['white space first', ' \r\n\t{"role":"admin"}'],
    ['{"limit":1000}', '{"limit":1000}'],
    ['a name twice (Go keeps the last)', '{"role":"user","role":"admin"}'],
    ['another letter case (Go matches any)', '{"ROLE":"admin"}'],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff]), Buffer.from('","role":"admin"}')])],
    ['data after the document (Go reads the first)', '{"role":"admin"}&name=abc'],
  ] as const) {
    // What Go reads of it: a member the schema refuses.
    const go = goJsonReading(Buffer.from(body)) as { role: unknown; limit: unknown };
    t.ok(go.role === 'admin' || go.limit === 1000, `${label}: Go reads role=admin or limit=1000`);
    const r = await post(FORM, body);
    t.equal(r.status, 400, `form-typed ${label}: refused`);
    t.equal(r.json<{ code: string }>().code, 'ERR_REQUEST_MALFORMED', label);
    t.match(r.json<{ detail: string }>().detail, /JSON document sent as application\/x-www-form-urlencoded/, label);
  }
  // An array too: a handler decoding into a slice or an interface{} reads its members.
  t.equal((await post(FORM, '[{"role":"admin"}]')).status, 400, 'form-typed array: refused');
  t.equal(backend.hits, hits, 'none of them reached the backend');

  // What a browser sends still passes, a value that opens with "{" included; Go reads its fields.
  const ok = await post(FORM, 'name=abc&role=user&q=%7B%22role%22%3A%22admin%22%7D');
  t.equal(ok.status, 200, 'a form whose value holds JSON passes');
  t.same(ok.json<{ form: unknown }>().form, { role: 'user', q: '{"role":"admin"}', name: 'abc', limit: null });
  const json = await post('application/json', ' {"role":"user","limit":5}');
  t.equal(json.status, 200, 'JSON as JSON passes');
  t.same(json.json<{ json: unknown }>().json, { role: 'user', q: null, name: null, limit: 5 });
});
