/**
 * Content-Types Python frameworks read otherwise than the stages here (red team round 27a, run
 * against real aiohttp 3.8.4 and Falcon 3.1.1 behind the sidecar; Python is no prerequisite here,
 * the shapes are replayed against the test backend):
 *
 * - aiohttp parses the request Content-Type with `email.parser`, which joins RFC 2231 continued and
 *   extended parameters: `charset*0=utf-; charset*1=7` (or `charset*=utf-7''`) is UTF-7 to
 *   `request.text()`, `.json()` and `.post()`, while the stages found no `charset` and read UTF-8:
 *   `role=admin` past its enum, `<script>` and SQL injection past the waf;
 * - Falcon picks its media handler with `mimeparse.best_match(handlers, content_type)`, reading the
 *   request's Content-Type as an Accept range: `application/*`, `*\/x-www-form-urlencoded` and
 *   `*\/*; q=1` are forms to it, `*\/form-data; boundary=BB` multipart, where the waf read text;
 *   and a body typed literally `*\/*` skipped validation under a `*\/*` key with an object schema;
 * - Falcon's `part.text` decodes a file part (one with a file name) in the charset its Content-Type
 *   names (`utf-7`, Python's `unicode_escape`), where validation read the part on a text property
 *   as UTF-8: `<script>` past a `pattern`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { curl, fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";
/** `","role":"admin` in UTF-7 (aiohttp's `request.json()` then reads a `role` member). */
const UTF7_ROLE = '+ACIALAAiAHIAbwBsAGUAIgA6ACIAYQBkAG0AaQBu-';
const UTF7_SCRIPT = '+ADw-script+AD4-alert(1)+ADw-/script+AD4-';

const part = (headers: string, content: string) => `--BB\r\nContent-Disposition: form-data; ${headers}\r\n\r\n${content}\r\n`;
const multipart = (...parts: string[]) => `${parts.join('')}--BB--\r\n`;
const NAME = part('name="name"', 'eve');

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users:
    post:
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: '#/components/schemas/User' } }
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/User' } }
          multipart/form-data: { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /any:
    post:
      requestBody:
        required: true
        content:
          '*/*': { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /raw:
    post:
      requestBody:
        required: true
        content:
          '*/*': { schema: { type: string } }
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      required: [name]
      properties:
        name: { type: string, pattern: '^[a-z]+$' }
        role: { type: string, enum: [user] }
        note: { type: string, maxLength: 40 }
        bio: { type: string, pattern: '^[^<>]*$' }
`;

t.test('Content-Types Python frameworks read otherwise: refused by validation and the waf', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const waf = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block', budget: '2s' } } });
  const agents = new Map([validated, waf].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const send = (s: typeof waf, path: string, contentType: string, body: string, method = 'POST') =>
    fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>, {
      method,
      headers: { 'content-type': contentType },
      body,
    });
  const rule = (s: typeof waf) => s.events.at(-1)?.['warden.rule'];

  await t.test('RFC 2231 continued or extended parameters in the Content-Type (aiohttp: charset utf-7)', async (t) => {
    const before = backend.requests.length;
    const json = `{"name":"eve","x":"${UTF7_ROLE}"}`;
    const form = 'name=eve&note=x+ACYAcgBvAGwAZQA9AGEAZABtAGkAbg-';
    for (const [type, body] of [
      ['application/json; charset*0=utf-; charset*1=7', json],
      ["application/json; charset*=utf-7''", json],
      ["application/json; charset*0*=utf-7''", json],
      ['application/x-www-form-urlencoded; charset*0=utf-; charset*1=7', form],
      ['multipart/form-data; boundary=BB; charset*0=utf-; charset*1=7', multipart(NAME, part('name="note"', UTF7_ROLE))],
    ] as const) {
      const r = await send(validated, '/users', type, body);
      t.equal(r.status, 400, `${type}: role=admin to aiohttp, refused by validation`);
      t.equal(r.json().code, 'ERR_REQUEST_MALFORMED', `${type}: code`);
      t.equal(rule(validated), 'content_type.extended_parameter', `${type}: rule`);
    }
    for (const [type, body] of [
      ['application/json; charset*0=utf-; charset*1=7', `{"x":"${UTF7_SCRIPT}"}`],
      ["application/x-www-form-urlencoded; charset*=utf-7''", `x=${encodeURIComponent(SQLI)}`],
      ['text/plain; charset*0=utf-; charset*1=7', UTF7_SCRIPT],
    ] as const) {
      // A PUT: the waf reads the body first (a POST's is read by the _method check before it).
      const r = await send(waf, '/echo', type, body, 'PUT');
      t.equal(r.status, 400, `${type}: an attack to aiohttp, refused by the waf`);
      t.equal(rule(waf), 'content_type.extended_parameter', `${type}: rule`);
    }
    // A part's own Content-Type: aiohttp and Falcon read a part's charset from it.
    for (const type of ["text/plain; charset*=utf-7''", 'text/plain; charset*0=utf-; charset*1=7']) {
      for (const disposition of ['name="bio"', 'name="bio"; filename="b.txt"']) {
        const body = multipart(NAME, part(`${disposition}\r\nContent-Type: ${type}`, UTF7_SCRIPT));
        const r = await send(validated, '/users', 'multipart/form-data; boundary=BB', body);
        t.equal(r.status, 400, `part ${disposition} typed ${type}: refused by validation`);
        t.match(r.json(), { errors: [{ pointer: '/body', message: /extended/ }] }, `${type}: for its extended parameter`);
        const w = await send(waf, '/echo', 'multipart/form-data; boundary=BB', body, 'PUT');
        t.equal(w.status, 400, `part ${disposition} typed ${type}: refused by the waf`);
        // The _method check's multipart reader reads a PUT's body first where the waf holds it (row 483).
        t.match(rule(waf), /^(?:waf|overrides)\.multipart$/, `${type}: rule`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/json; charset="UTF-8"'])
      t.equal((await send(validated, '/users', type, '{"name":"eve","role":"user"}')).status, 200, `${type}: passes`);
  });

  await t.test('a media range as the Content-Type (Falcon reads it as an Accept range)', async (t) => {
    const before = backend.requests.length;
    const form = `q=${encodeURIComponent(SQLI)}`;
    const parts = multipart(part('name="q"', SQLI));
    for (const [type, body] of [
      ['application/*', form],
      ['application/*; q=1', form],
      ['*/x-www-form-urlencoded', form],
      ['*/*; q=1', form],
      ['*/*', `{"q":"${SQLI}"}`],
      ['*/form-data; boundary=BB', parts],
      ['Text/*', form],
    ] as const) {
      for (const [s, path] of [
        [waf, '/echo'],
        [validated, '/raw'],
        [validated, '/any'],
      ] as const) {
        const r = await send(s, path, type, body, s === waf ? 'PUT' : 'POST');
        t.equal(r.status, 400, `${type} to ${path}: a form or multipart to Falcon`);
        t.equal(r.json().code, 'ERR_REQUEST_MALFORMED', `${type} to ${path}: code`);
        t.equal(rule(s), 'content_type.media_range', `${type} to ${path}: rule`);
      }
    }
    // The _method check (a POST on a plain route) refuses it too.
    const post = await send(waf, '/echo', '*/x-www-form-urlencoded', '_method=DELETE');
    t.equal(post.status, 400, 'a POST with a _method field typed */x-www-form-urlencoded');
    t.equal(rule(waf), 'content_type.media_range', 'rule');
    t.equal(backend.requests.length, before, 'the backend saw none');
    // Under a */* key with an object schema, JSON is still validated, and a concrete type passes.
    const role = await send(validated, '/any', 'application/json', '{"name":"eve","role":"admin"}');
    t.equal(role.status, 400, 'role=admin as application/json under */*: validated');
    t.equal((await send(validated, '/any', 'application/json', '{"name":"eve","role":"user"}')).status, 200, 'application/json passes');
    t.equal((await send(validated, '/raw', 'text/plain', 'hello')).status, 200, 'text/plain under */*: passes');
    t.equal((await send(validated, '/raw', 'application/x-star*', 'hello')).status, 200, 'a "*" inside a subtype is no range');
  });

  await t.test('a file part in a charset Falcon decodes its text in', async (t) => {
    const before = backend.requests.length;
    for (const [charset, content] of [
      ['utf-7', UTF7_SCRIPT],
      ['unicode_escape', '\\x3cscript\\x3ealert(1)\\x3c/script\\x3e'],
      ['UTF-16', '<script>'],
      ['ibm037', 'x'],
    ] as const) {
      const body = multipart(NAME, part(`name="bio"; filename="b.txt"\r\nContent-Type: text/plain; charset=${charset}`, content));
      const r = await send(validated, '/users', 'multipart/form-data; boundary=BB', body);
      t.equal(r.status, 400, `a bio file part in ${charset}: refused by validation`);
      t.match(r.json(), { errors: [{ pointer: '/body', message: /charset/ }] }, `${charset}: for its charset`);
      const w = await send(waf, '/echo', 'multipart/form-data; boundary=BB', body, 'PUT');
      t.equal(w.status, 400, `a file part in ${charset}: refused by the waf`);
      t.match(rule(waf), /^(?:waf|overrides)\.multipart$/, `${charset}: rule`);
    }
    // Hidden in another parameter (Mojolicious's reading of every charset=): refused as for fields.
    const hidden = multipart(NAME, part('name="bio"; filename="b.txt"\r\nContent-Type: text/plain; x="charset=utf-7"', UTF7_SCRIPT));
    t.equal((await send(validated, '/users', 'multipart/form-data; boundary=BB', hidden)).status, 400, 'x="charset=utf-7" on a file part');
    t.equal(backend.requests.length, before, 'the backend saw none');
    // What clients put on file parts: none (browsers, requests), an ASCII-compatible charset (curl
    // -F with ;type=…;charset=…, .NET's StringContent), libmagic's `binary`.
    for (const type of [
      undefined,
      'text/plain',
      'text/plain; charset=utf-8',
      'text/plain; charset=UTF-8',
      'text/csv; charset=iso-8859-1',
      'text/plain; charset=us-ascii',
      'application/octet-stream; charset=binary',
      'image/png; charset=binary',
    ]) {
      const headers = `name="bio"; filename="b.txt"${type === undefined ? '' : `\r\nContent-Type: ${type}`}`;
      const body = multipart(NAME, part(headers, 'plain text'));
      t.equal((await send(validated, '/users', 'multipart/form-data; boundary=BB', body)).status, 200, `a file part typed ${type}: passes`);
      t.equal((await send(waf, '/echo', 'multipart/form-data; boundary=BB', body, 'PUT')).status, 200, `${type}: passes the waf`);
    }
    const caFile = join(mkdtempSync(join(tmpdir(), 'warden-py-')), 'ca.pem');
    writeFileSync(caFile, validated.ca);
    const file = join(mkdtempSync(join(tmpdir(), 'warden-py-')), 'b.txt');
    writeFileSync(file, 'plain text\n');
    const curled = await curl([
      '--cacert',
      caFile,
      '-F',
      'name=eve',
      '-F',
      `bio=@${file};type=text/plain;charset=utf-8`,
      `${validated.url}/users`,
    ]);
    t.equal(curled.status, 200, `curl -F 'bio=@b.txt;type=text/plain;charset=utf-8' ${curled.stderr}`);
  });
});
