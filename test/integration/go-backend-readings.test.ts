/**
 * Bodies a Go net/http backend reads otherwise than the checks here, each run by hand against a real
 * Go 1.19 handler behind a sidecar and replayed here against a Node backend that reads as Go does
 * (test/support/go-reading-backend.ts):
 *
 * - a JSON document sent as a form: validated as one undeclared field here, decoded as JSON by a
 *   handler that calls `json.NewDecoder(r.Body).Decode` whatever the Content-Type (400, `body.json_as_form`);
 * - a form value or a JSON string that holds malware once `%XX`, `+` or `\uXXXX` are decoded, as
 *   `r.FormValue` and encoding/json decode them: each value is scanned as a file of its own.
 */
import t from 'tap';
import { EICAR, startTestClamd, TEST_PATTERN } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { goFormReading, goJsonReading, startGoReadingBackend } from '../support/go-reading-backend.js';
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

t.test('form values and JSON strings are scanned as the backend decodes them', async (t) => {
  const backend = await startGoReadingBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const s = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '10s', max_files: 60 } },
    routes: [{ id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true }],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (type: string, body: string) =>
    fetchText(`${s.url}/upload`, agent, { method: 'POST', headers: { 'content-type': type }, body });
  const p = TEST_PATTERN;

  // Controls: the pattern as sent is found in the raw stream.
  t.equal((await post(FORM, `q=${p}`)).status, 422, 'control: form q=<pattern>');
  t.equal((await post('application/json', `{"q":"${p}"}`)).status, 422, 'control: JSON {"q":"<pattern>"}');

  const hits = backend.hits;
  // What the backend reads of each: Go's r.FormValue (a form), encoding/json (any type), Rack (an untyped POST as a form).
  const formQ = (body: string) => goFormReading(FORM, Buffer.from(body)).q;
  const jsonQ = (body: string) => (goJsonReading(Buffer.from(body)) as { q: unknown }).q;
  const nestedQ = (body: string) => (JSON.parse(body) as { a: { q: unknown }[] }).a[0]?.q;
  for (const [label, type, body, signature, reads] of [
    ['form %57', FORM, `q=%57${p.slice(1)}`, 'Warden.Test.Pattern', formQ],
    ['form %2D', FORM, `q=${p.replaceAll('-', '%2D')}`, 'Warden.Test.Pattern', formQ],
    [
      'form, every byte %XX',
      FORM,
      `name=x&q=${[...Buffer.from(p)].map((b) => `%${b.toString(16)}`).join('')}`,
      'Warden.Test.Pattern',
      formQ,
    ],
    // EICAR by its hash: found only as a file of its own, which is what a backend storing the value writes.
    ['form EICAR (its + as %2B, a + would be a space)', FORM, `q=${encodeURIComponent(EICAR.toString())}`, 'Warden.Test.EICAR', formQ],
    ['untyped %57 (Rack reads it as a form)', '', `q=%57${p.slice(1)}`, 'Warden.Test.Pattern', formQ],
    ['JSON \\u0057', 'application/json', `{"q":"\\u0057${p.slice(1)}"}`, 'Warden.Test.Pattern', jsonQ],
    ['JSON \\u002d, nested', 'application/json', `{"a":[{"q":"${p.replaceAll('-', '\\u002d')}"}]}`, 'Warden.Test.Pattern', nestedQ],
    ['JSON EICAR', 'application/json', `{"q":${JSON.stringify(EICAR.toString())}}`, 'Warden.Test.EICAR', jsonQ],
    ['JSON with a name twice', 'application/json', `{"q":"x","q":"\\u0057${p.slice(1)}"}`, 'Warden.Test.Pattern', jsonQ],
    ['JSON sent as a form', FORM, `{"q":"\\u0057${p.slice(1)}"}`, 'Warden.Test.Pattern', jsonQ],
    ['JSON sent as text', 'text/plain', ` {"q":"\\u0057${p.slice(1)}"}`, 'Warden.Test.Pattern', jsonQ],
  ] as const) {
    const q = reads(body);
    t.ok(q === p || q === EICAR.toString(), `${label}: the backend reads the malware whole`);
    const r = await post(type, body);
    t.equal(r.status, 422, `${label}: refused`);
    t.equal(r.json<{ code: string }>().code, 'ERR_MALWARE_FOUND', label);
    t.equal(s.events.at(-1)?.['warden.rule'], `clamd:${signature}.UNOFFICIAL`, `${label}: ${signature}, in a value`);
    // Found in a value (`part value q`), not in the body as sent (`part body`): t.not passed with no detail at all.
    t.match(s.events.at(-1)?.['warden.detail'], /^part value /, `${label}: in a value, not in the body as sent`);
  }
  t.equal(backend.hits, hits, 'none of them reached the backend');

  // Clean forms and JSON go on: 50 fields (below max_files), each value scanned.
  const fields = Array.from({ length: 50 }, (_, i) => `f${i}=value+number+${i}`).join('&');
  const clean = await post(FORM, `q=hello%20world&role=user&${fields}`);
  t.equal(clean.status, 200, 'a clean form of 52 fields passes');
  t.same(clean.json<{ form: unknown }>().form, { role: 'user', q: 'hello world', name: null, limit: null });
  const cleanJson = await post('application/json', '{"q":"h\\u00e9llo","role":"user"}');
  t.equal(cleanJson.status, 200, 'clean JSON passes');
  t.same(cleanJson.json<{ json: unknown }>().json, { role: 'user', q: 'héllo', name: null, limit: null });

  // More distinct values than ten per file max_files allows (a JSON API's strings are many and
  // small): not scanned whole, as a multipart upload with more fields than max_files is not.
  const many = await post(FORM, Array.from({ length: 601 }, (_, i) => `f${i}=${i}`).join('&'));
  t.equal(many.status, 422, 'more values than 10 × max_files');
  t.equal(many.json<{ code: string }>().code, 'ERR_UPLOAD_UNSCANNABLE');
  // The same value many times is one file to scan.
  t.equal((await post(FORM, Array.from({ length: 200 }, (_, i) => `f${i}=same`).join('&'))).status, 200, 'repeated values count once');
});
