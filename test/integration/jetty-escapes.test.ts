/**
 * A "%" that starts no escape, which Jetty 9.4 reads as one: its `TypeUtil.convertHexDigit` takes
 * any character of `0`–`` ` `` as a hex digit (`:` is 10 … `?` 15, `@` 9), so to a servlet's
 * getParameter `l%6@mit` is `limit`, `r%6?le` is `role` and `%4?R` is `OR`, while URLSearchParams
 * and querystring keep the escape as text. Run by hand against Jetty 9.4.57 (Debian's
 * libjetty9-java; not a test prerequisite): each shape below reached its servlet past the maximum,
 * the enum or the waf (docs/adversarial.md 411). Replayed here against the test backend.
 */
import t from 'tap';
import type { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /items:
    get:
      operationId: listItems
      parameters:
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
        - { name: q, in: query, schema: { type: string } }
      responses: { '200': { description: ok } }
  /profiles:
    post:
      operationId: createProfile
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/Profile' } }
      responses: { '200': { description: ok } }
    put:
      operationId: replaceProfile
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/Profile' } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Profile:
      type: object
      properties:
        name: { type: string, maxLength: 40 }
        role: { type: string, enum: [user] }
`;

t.test('a "%" Jetty reads as an escape is refused in the query and in form bodies', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // Validation and the _method check on one sidecar; the waf alone on another (routes, no document).
  const validating = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  const inspecting = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'notes', path: '/notes', methods: ['GET', 'PUT'] }],
  });
  const agents = [validating, inspecting].flatMap((s) => [testAgent(s.ca), testAgent(s.ca, { h2: true })]);
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const [v1, v2, w1, w2] = agents as [Agent, Agent, Agent, Agent];
  const sidecarOf = (path: string) => (path.startsWith('/notes') ? inspecting : validating);
  const rule = (path: string) => sidecarOf(path).events.at(-1)?.['warden.rule'];
  const send = (method: string, path: string, h2 = false, body?: string) => {
    const waf = path.startsWith('/notes');
    return fetchText(`${sidecarOf(path).url}${path}`, waf ? (h2 ? w2 : w1) : h2 ? v2 : v1, {
      method,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    });
  };

  await t.test('in the query, on every route, before routing (h1 and h2)', async (t) => {
    const before = backend.requests.length;
    for (const [path, jetty] of [
      ['/items?l%6@mit=1000', 'limit=1000, past maximum: 100'],
      ['/items?q=100%', 'a trailing "%" (Jetty: 400)'],
      ['/notes?q=%27%20%4?R%201%3=1%20%2=%2=', "q=' OR 1=1 --"],
      ['/notes?q=%3Cscr%6@pt%3Ealert(1)%3C/scr%6@pt%3E', 'q=<script>alert(1)</script>'],
      ['/notes?q=..%2?..%2?etc%2?passwd', 'q=../../etc/passwd'],
    ] as const) {
      for (const h2 of [false, true]) {
        const r = await send('GET', path, h2);
        t.equal(r.status, 400, `${path} (${jetty}, ${h2 ? 'h2' : 'h1'}): 400`);
        t.equal(r.json().code, 'ERR_PATH_INVALID');
        t.equal(rule(path), 'path.query_bad_escape', `${path}: rule path.query_bad_escape`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    // Controls: escapes of two hex digits, and System.Web's %uXXXX, pass as sent.
    for (const path of ['/items?limit=10&q=caf%C3%A9%20%25', '/items?q=caf%u00e9', '/notes?q=100%25']) {
      t.equal((await send('GET', path)).status, 200, `${path}: 200`);
      t.equal(backend.requests.at(-1)?.url, path, `${path}: forwarded as sent`);
    }
  });

  await t.test('in a form body, by every stage that reads its fields', async (t) => {
    const before = backend.requests.length;
    for (const [method, path, body, reader] of [
      ['POST', '/profiles', 'name=eve&r%6?le=admin', 'validation, and the _method check of every POST'],
      ['PUT', '/profiles', 'name=eve&r%6?le=admin', 'validation'],
      ['POST', '/profiles', 'name=eve&%5?method=DELETE', 'the _method check (Spring reads _method)'],
      ['PUT', '/notes', 'q=%3Cscr%6@pt%3Ealert(1)%3C/scr%6@pt%3E', 'the waf'],
      ['PUT', '/notes', 'q=%27%20%4?R%201%3=1%20%2=%2=', 'the waf'],
    ] as const) {
      const r = await send(method, path, false, body);
      t.equal(r.status, 400, `${method} ${path} ${body} (${reader}): 400`);
      t.equal(r.json().code, 'ERR_REQUEST_INVALID');
      t.equal(rule(path), 'form.bad_escape', `${body}: rule form.bad_escape`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    for (const [method, path, body] of [
      ['PUT', '/profiles', 'name=caf%C3%A9%20%25&role=user'],
      ['PUT', '/notes', 'q=100%25%20sure'],
      ['POST', '/profiles', 'name=eve'],
    ] as const) {
      t.equal((await send(method, path, false, body)).status, 200, `${method} ${path} ${body}: 200`);
    }
  });
});
