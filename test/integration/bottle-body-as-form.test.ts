/**
 * Bottle 0.12 reads every body whose Content-Type does not start with `multipart/` as a form
 * (`BaseRequest.POST`, behind `request.forms`, `request.params` and `request.POST`: "We default to
 * application/x-www-form-urlencoded for everything that is not multipart"): JSON, `text/plain`,
 * `application/octet-stream` are split at `&`, `+` read as a space, percent-decoded as Latin-1.
 * Red team round 27 (F1), against a real Bottle 0.12.23 behind a sidecar: with the usual `_method`
 * recipe (a before_request hook reading `request.forms.get('_method')`) a JSON body
 * `{"note":"&_method=DELETE&"}` on `POST /v1/users/abc` ran the denied DELETE; an SQL injection
 * percent-encoded (or `+`-spaced) in a JSON string or a text body reached `request.forms` past the
 * waf in block mode. Python is no prerequisite here: the shapes are replayed against the test
 * backend, and `bottleForms` below reads each body as Bottle does, to show what the app would get.
 */
import t from 'tap';
import { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

/**
 * Bottle 0.12's `_parse_qsl(tonat(body, 'latin1'))`: what `request.forms` holds for a body that is
 * not multipart. From 0.12.19 (0.12.23 here) split at `&`; before (`semicolon`), at `;` too
 * (`qs.replace(';','&')`, removed for CVE-2020-28473), as distributions still ship it.
 */
function bottleForms(body: string, semicolon = false): Map<string, string> {
  const unquote = (s: string) =>
    s.replaceAll('+', ' ').replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  const forms = new Map<string, string>();
  const latin1 = Buffer.from(body).toString('latin1');
  for (const pair of (semicolon ? latin1.replaceAll(';', '&') : latin1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    forms.set(unquote(eq === -1 ? pair : pair.slice(0, eq)), unquote(eq === -1 ? '' : pair.slice(eq + 1)));
  }
  return forms;
}

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users/{id}:
    parameters:
      - { name: id, in: path, required: true, schema: { type: string } }
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/User' } }
          application/json: { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /notes:
    post:
      requestBody:
        required: true
        content:
          text/plain: { schema: { type: string } }
          application/octet-stream: { schema: { type: string, format: binary } }
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      properties:
        name: { type: string, pattern: '^[a-z]+$' }
        role: { type: string, enum: [user] }
        note: { type: string, maxLength: 200 }
        x: { type: string }
`;

const SQLI = "1' UNION SELECT password FROM users--";
const SQLI_ESCAPED = '1%27%20UNION%20SELECT%20password%20FROM%20users--';
const SQLI_PLUS = "1'+UNION+SELECT+password+FROM+users--";
const JSON_TYPE = 'application/json';
const TEXT = 'text/plain';
const BINARY = 'application/octet-stream';

t.test('a body of any type but multipart, read as Bottle reads a form: no _method, no injection', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  // The red team's sidecar: OpenAPI validation and the waf in block mode.
  const openapi = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      threats: { waf: { mode: 'block' } },
      openapi: { document: openApiFile(DOC), allow_public: true },
    }),
  );
  // A plain route with the waf, and one with neither (the `_method` check holds its JSON and forms).
  const wafOnly = await spawnWarden(
    t,
    await testConfigYaml(backend.url, { threats: { waf: { mode: 'block' } }, routes: [{ id: 'all', path: '/*' }] }),
  );
  const plain = await spawnWarden(t, await testConfigYaml(backend.url, { routes: [{ id: 'all', path: '/*' }] }));
  const sidecars = { openapi, wafOnly, plain } as const;
  const agents = [false, true].map((h2) => new Agent({ allowH2: h2, connect: { ca: cert.certPem, servername: 'localhost' } }));
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const send = (where: keyof typeof sidecars, path: string, contentType: string, body: string, h2: boolean) =>
    fetchText(`${sidecars[where].url}${path}`, agents[h2 ? 1 : 0] as Agent, {
      method: 'POST',
      headers: contentType === '' ? {} : { 'content-type': contentType },
      body,
    });

  const refused: [where: keyof typeof sidecars, path: string, type: string, body: string, status: number, code: string, what: string][] = [
    [
      'openapi',
      '/users/abc',
      JSON_TYPE,
      '{"name":"eve","note":"&_method=DELETE&"}',
      400,
      'ERR_REQUEST_OVERRIDE',
      '_method in a JSON string',
    ],
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"&%5Fmethod=DELETE&"}', 400, 'ERR_REQUEST_OVERRIDE', '%5Fmethod'],
    [
      'openapi',
      '/users/abc',
      JSON_TYPE,
      '{"name":"eve","note":"&X-HTTP-Method-Override=DELETE&"}',
      400,
      'ERR_REQUEST_OVERRIDE',
      'x-http-method-override',
    ],
    ['openapi', '/notes', TEXT, '_method=DELETE', 400, 'ERR_REQUEST_OVERRIDE', 'a text body'],
    ['openapi', '/notes', BINARY, 'a=1&_method=DELETE', 400, 'ERR_REQUEST_OVERRIDE', 'an octet-stream body the stages hold'],
    ['plain', '/users/abc', JSON_TYPE, '{"note":"x&_method=DELETE&"}', 400, 'ERR_REQUEST_OVERRIDE', 'JSON on a plain route'],
    [
      'openapi',
      '/users/abc',
      JSON_TYPE,
      `{"name":"eve","x":"&q=${SQLI_ESCAPED}&"}`,
      403,
      'ERR_WAF_BLOCKED',
      'SQLi percent-encoded in a JSON string',
    ],
    ['openapi', '/users/abc', JSON_TYPE, `{"name":"eve","x":"&q=${SQLI_PLUS}&"}`, 403, 'ERR_WAF_BLOCKED', 'SQLi +-spaced in a JSON string'],
    ['openapi', '/notes', TEXT, `q=${SQLI_ESCAPED}`, 403, 'ERR_WAF_BLOCKED', 'SQLi in a text body'],
    ['openapi', '/notes', TEXT, `q=${SQLI_PLUS}`, 403, 'ERR_WAF_BLOCKED', 'SQLi +-spaced in a text body'],
    ['wafOnly', '/notes', TEXT, 'q=%3Cscript%3Ealert(1)%3C/script%3E', 403, 'ERR_WAF_BLOCKED', 'XSS in a text body, plain route'],
    ['wafOnly', '/notes', 'application/x-ndjson', `{"a":1}\n{"b":"&q=${SQLI_ESCAPED}&"}`, 403, 'ERR_WAF_BLOCKED', 'SQLi in NDJSON'],
    // Bottle before 0.12.19 splits at `;` too (review rt27, F6).
    [
      'openapi',
      '/users/abc',
      JSON_TYPE,
      '{"name":"eve","note":";_method=DELETE;"}',
      400,
      'ERR_REQUEST_OVERRIDE',
      '_method after ; in JSON',
    ],
    ['plain', '/users/abc', JSON_TYPE, '{"note":"x=1;X-HTTP-Method-Override=DELETE;"}', 400, 'ERR_REQUEST_OVERRIDE', 'after a value and ;'],
    ['plain', '/users/abc', '', 'a=1;_method=DELETE', 400, 'ERR_REQUEST_OVERRIDE', 'an untyped body, _method after ;'],
    ['wafOnly', '/notes', TEXT, `x=%41;q=${SQLI_ESCAPED}`, 403, 'ERR_WAF_BLOCKED', 'SQLi after ; in a text body'],
  ];
  const before = backend.requests.length;
  for (const [where, path, type, body, status, code, what] of refused) {
    // What the Bottle app would read: each of these holds the override or the injection.
    const holds = (forms: Map<string, string>) =>
      forms.get('_method') === 'DELETE' ||
      forms.get('X-HTTP-Method-Override') === 'DELETE' ||
      forms.get('q') === SQLI ||
      forms.get('q')?.startsWith('<script>') === true;
    t.ok(holds(bottleForms(body)) || holds(bottleForms(body, true)), `${what}: a Bottle reads it so`);
    for (const h2 of [false, true]) {
      const r = await send(where, path, type, body, h2);
      t.equal(r.status, status, `${what} (${where} ${type}, ${h2 ? 'h2' : 'h1'}): ${status}`);
      t.match(r.text, code, `${what}: ${code}`);
    }
  }
  t.equal(backend.requests.length, before, 'the backend saw none of them');

  // Ordinary traffic still passes: `&` and `=` in URLs and text, escapes in JSON strings.
  const passed: [where: keyof typeof sidecars, path: string, type: string, body: string, what: string][] = [
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"https://a/b?x=1&y=2"}', 'a URL with a query string'],
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"https://x/?id=1&name=y&role=admin"}', 'declared names in a URL'],
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"q=caf%C3%A9&lang=fr+FR&x=50%25"}', 'escapes and + in a JSON string'],
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"method=post&_methods=1&my_method=x"}', 'names like _method'],
    ['openapi', '/notes', TEXT, 'Tom+Jerry=friends & 50%25 off, a=1&b=2, c = d', 'text with & and ='],
    ['openapi', '/notes', TEXT, 'SELECT+is+a+word=yes&caf%C3%A9=ok', 'a text body read as a form, harmless'],
    ['openapi', '/notes', BINARY, 'x=1%27%20or&y=%00%FF', 'octet-stream (not read by the waf)'],
    ['wafOnly', '/notes', TEXT, 'redirect=https%3A%2F%2Fa%2Fb%3Fx%3D1%26y%3D2&n=1', 'an encoded URL in a text body'],
    ['plain', '/users/abc', JSON_TYPE, '{"note":"a=1&b=2&method=x"}', 'JSON on a plain route'],
    // `;` in ordinary text, read as a separator too (Bottle before 0.12.19).
    ['openapi', '/users/abc', JSON_TYPE, '{"name":"eve","note":"I\'m here; price=5+3; total=8"}', '; and + in a JSON string'],
    ['openapi', '/notes', TEXT, "I'm here; price=5+3; it's 50%25 off; a=b+c;", '; and + in a text body'],
    ['wafOnly', '/notes', TEXT, 'https://a.example/p;jsessionid=1?x=%2Fhome;y=a+b&z=1', 'a URL with ; parameters'],
    ['wafOnly', '/notes', 'text/css', 'a{color:red;width:calc(100%25 + 2px)}b{x=1;y:2+3}', 'CSS-ish text'],
    ['plain', '/users/abc', JSON_TYPE, '{"note":"payment_method=card;shipping_method=ups"}', 'method-like names after ;'],
  ];
  const reached = backend.requests.length;
  for (const [where, path, type, body, what] of passed) {
    for (const h2 of [false, true]) {
      const r = await send(where, path, type, body, h2);
      t.equal(r.status, 200, `${what} (${where} ${type}, ${h2 ? 'h2' : 'h1'}): 200 ${r.status === 200 ? '' : r.text.slice(0, 200)}`);
    }
  }
  t.equal(backend.requests.length, reached + passed.length * 2, 'the backend got them all');
});
