/**
 * Cookies as PHP 8.2 reads them, behind an enforcing sidecar (red team round 21b: F1, F3, F4).
 * - Without a php.ini (the official Docker images), `$_REQUEST` is GET, then POST, then COOKIE: a
 *   cookie named as a query parameter or body property overrides the validated value. Refused
 *   unless the operation declares that cookie.
 * - PHP percent-decodes a cookie's value (`+` kept) and keeps a quoted value's DQUOTEs: a declared
 *   cookie's value must pass as sent, unquoted and percent-decoded.
 */
import t from 'tap';
import { Agent } from 'undici';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startPhp, type PhpRead } from '../support/php.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOC = `openapi: 3.1.0
info: { title: php-cookies, version: '1' }
paths:
  /users:
    post:
      operationId: createUser
      security: []
      parameters:
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
        - { name: theme, in: cookie, schema: { type: string, pattern: '^[^<>"'' ]*$', maxLength: 16 } }
        - { name: csrf_token, in: cookie, schema: { type: string, pattern: '^[a-f0-9]{8}$' } }
        - { name: lang, in: cookie, schema: { type: string, enum: [en, de] } }
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              additionalProperties: false
              required: [name]
              properties:
                name: { type: string, maxLength: 20 }
                role: { type: string, enum: [user] }
                is_admin: { type: boolean, readOnly: true }
      responses: { '200': { description: ok } }
  /users/{id}:
    get:
      operationId: getUser
      security: []
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer, minimum: 1, maximum: 1000 } }
      responses: { '200': { description: ok } }
  /notes:
    post:
      operationId: note
      security: []
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, properties: { text: { type: string, maxLength: 5 } } }
      responses: { '200': { description: ok } }
`;

const FORM = 'application/x-www-form-urlencoded';

t.test('cookies PHP reads as parameters, or percent-decoded, or quoted, reach no PHP unchecked', async (t) => {
  const php = await startPhp(t);
  const direct = new Agent();
  t.teardown(() => direct.close());
  const post = (base: string, agent: Agent, cookie: string, path = '/users?limit=5', body = 'name=eve&role=user') =>
    fetchText(`${base}${path}`, agent, { method: 'POST', headers: { 'content-type': FORM, cookie }, body });

  await t.test("PHP's $_REQUEST takes the cookie over the query and the body; it decodes and keeps quotes", async (t) => {
    const r = (await post(php.url, direct, 'role=admin; limit=1000; is_admin=1')).json<PhpRead>();
    t.same(r.request, { limit: '1000', name: 'eve', role: 'admin', is_admin: '1' });
    t.same((await post(php.url, direct, 'theme=%3Cscript%3E')).json<PhpRead>().cookie, { theme: '<script>' });
    t.same((await post(php.url, direct, 'csrf_token="deadbeef"')).json<PhpRead>().cookie, { csrf_token: '"deadbeef"' });
    // php_raw_url_decode: a "+" is kept (Rack reads it as a space).
    t.same((await post(php.url, direct, 'theme=a+b')).json<PhpRead>().cookie, { theme: 'a+b' });
  });

  const s = await startTestSidecar(t, php.url, {
    openapi: { document: openApiFile(DOC), allow_public: true, validation: { mode: 'enforce', unknown_query: 'refuse' } },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());

  await t.test('a cookie named as a query or path parameter or a body property, or read as one, is refused', async (t) => {
    const refused: [string, string, string?, string?][] = [
      ['role=admin; limit=1000; is_admin=1', '/cookie/role'],
      ['limit=1000', '/cookie/limit'],
      ['is_admin=1', '/cookie/is_admin'],
      ['name=mallory', '/cookie/name'],
      ['_ga=GA1.2.3; limit[]=1000', '/cookie/limit[]'],
      ['role[x]=admin', '/cookie/role[x]'],
      ['is.admin=1', '/cookie/is.admin'],
      ['is admin=1', '/cookie/is admin'],
      ['is[admin=1', '/cookie/is[admin'],
      ['role%00x=admin', '/cookie/role%00x'],
      ['%72ole=admin', '/cookie/%72ole'],
      ['id=9999', '/cookie/id', '/users/5', ''],
      ['text=toolong', '/cookie/text', '/notes', 'text=ok'],
    ];
    for (const [cookie, pointer, path, body] of refused) {
      const before = php.requests();
      const r =
        path === '/users/5'
          ? await fetchText(`${s.url}${path}`, agent, { headers: { cookie } })
          : await post(s.url, agent, cookie, path, body);
      t.equal(r.status, 400, `${cookie}: refused`);
      const problem = r.json<{ errors: { pointer: string; message: string }[] }>();
      t.match(problem.errors?.[0], { pointer, message: /\$_REQUEST/ }, `${cookie}: at ${pointer}`);
      t.equal(php.requests(), before, `${cookie}: PHP never receives it`);
    }
  });

  await t.test('a declared cookie is checked as sent, unquoted and percent-decoded', async (t) => {
    const refused: [string, string][] = [
      ['theme=%3Cscript%3E', '/cookie/theme'],
      ['theme=x%27%20OR%201=1', '/cookie/theme'],
      ['theme="%3Cb%3E"', '/cookie/theme'],
      ['csrf_token="deadbeef"', '/cookie/csrf_token'],
      ['lang="en"', '/cookie/lang'],
      ['csrf_token=%64eadbeef', '/cookie/csrf_token'],
    ];
    for (const [cookie, pointer] of refused) {
      const before = php.requests();
      const r = await post(s.url, agent, cookie);
      t.equal(r.status, 400, `${cookie}: refused`);
      t.match(r.json<{ errors: { pointer: string }[] }>().errors?.[0], { pointer }, `${cookie}: at ${pointer}`);
      t.equal(php.requests(), before, `${cookie}: PHP never receives it`);
    }
  });

  await t.test('declared valid cookies and unrelated ones pass', async (t) => {
    for (const cookie of [
      'theme=dark; csrf_token=deadbeef; lang=en',
      '_ga=GA1.2.345.678; session=abc%2Fdef; _gid=x',
      // PHP keeps a "+" (Rack reads a space: not checked, or base64 cookies were refused).
      'theme=a+b; lang=de',
      'theme=a%2Bb; lang=de',
      'theme=50%25',
      'theme=100%',
    ]) {
      const r = await post(s.url, agent, cookie);
      t.equal(r.status, 200, `${cookie}: passes`);
      if (r.status === 200) t.same(r.json<PhpRead>().request, { limit: '5', name: 'eve', role: 'user', ...phpCookies(cookie) }, cookie);
    }
    t.equal((await fetchText(`${s.url}/users/5`, agent, { headers: { cookie: 'session=x' } })).status, 200);
  });
});

/** The cookies as PHP's $_REQUEST holds them: percent-decoded, `+` kept. */
function phpCookies(header: string): Record<string, string> {
  return Object.fromEntries(
    header.split('; ').map((pair) => {
      const [name, value] = pair.split('=') as [string, string];
      return [name, value.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))];
    }),
  );
}
