/**
 * A folded line in a multipart part's header block (a line starting with a space or tab). busboy,
 * behind every multipart reader of the sidecar, joins it to the header before; Django 3.2's
 * parse_boundary_stream splits the block at CRLF and strips each line, so to Django it is a header
 * of its own, the last of a name winning (red team round 22e, checked against a real Django 3.2
 * behind Warden: Django is no prerequisite here). A `Content-Transfer-Encoding: base64` folded into
 * an `X-Pad` header stored EICAR past the scan and SQL injection past the waf; a second
 * Content-Disposition renamed a field past the schema's enum and past the `_method` check.
 * Each is refused, by each stage's own reader.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { EICAR, startTestClamd } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const TYPE = 'multipart/form-data; boundary=b';
const SQLI = "1' UNION SELECT password FROM users--";
const part = (headers: string, content: string) => `--b\r\n${headers}\r\n\r\n${content}\r\n`;
const close = '--b--\r\n';
/** A header that only Django reads, folded into an X-Pad header as busboy reads it. */
const folded = (header: string) => `X-Pad: a\r\n ${header}`;
const base64 = (content: string | Buffer) => Buffer.from(content).toString('base64');

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /users:
    post:
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              additionalProperties: false
              properties:
                name: { type: string, pattern: '^[a-z]+$' }
                note: { type: string, maxLength: 200 }
                role: { type: string, enum: [user] }
      responses: { '200': { description: ok } }
`;

t.test('a folded part header line: refused by the scan, the waf, validation and the _method check', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);

  await t.test('on a malware_scan route and a waf route: 400, not scanned, not forwarded', async (t) => {
    const s = await startTestSidecar(t, backend.url, {
      threats: { malware: { clamd: clamd.address, timeout: '10s', on_failure: 'fail-closed' }, waf: { mode: 'block' } },
      // Not the `_method` check: each stage's own reader is what refuses.
      headers: { overrides: 'forward' },
      routes: [
        { id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true, waf: false },
        { id: 'form', path: '/form', methods: ['POST'] },
      ],
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const send = (path: string, body: string) =>
      fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': TYPE }, body: Buffer.from(body, 'latin1') });
    const file = 'Content-Disposition: form-data; name="avatar"; filename="a.com"\r\nContent-Type: application/octet-stream';
    const before = backend.requests.length;

    const upload = await send('/upload', part(`${file}\r\n${folded('Content-Transfer-Encoding: base64')}`, base64(EICAR)) + close);
    t.equal(upload.status, 400, 'EICAR in base64, its encoding folded: 400');
    t.match(upload.json(), { code: 'ERR_REQUEST_INVALID', detail: /folded part header line/ }, 'named');
    t.equal(s.events.at(-1)?.['warden.rule'], 'malware.multipart', "refused by the scan's reader");

    const note = 'Content-Disposition: form-data; name="note"';
    const form = await send('/form', part(`${note}\r\n${folded('Content-Transfer-Encoding: base64')}`, base64(SQLI)) + close);
    t.equal(form.status, 400, 'SQL injection in base64, its encoding folded: 400');
    t.match(form.json(), { code: 'ERR_REQUEST_INVALID', detail: /folded part header line/ }, 'named');
    t.equal(s.events.at(-1)?.['warden.rule'], 'waf.multipart', "refused by the waf's reader");
    t.equal(backend.requests.length, before, 'the backend saw neither');

    t.equal((await send('/upload', part(file, EICAR.toString('latin1')) + close)).json().code, 'ERR_MALWARE_FOUND', 'EICAR plainly: 422');
    t.equal((await send('/form', part(note, SQLI) + close)).status, 403, 'the SQL injection plainly: 403');
    t.equal((await send('/upload', part(file, 'hello') + close)).status, 200, 'a clean upload passes');
  });

  await t.test('on a validated operation: 400, by validation and by the _method check', async (t) => {
    const validated = await startTestSidecar(t, backend.url, {
      openapi: { document: openApiFile(DOC), allow_public: true },
      headers: { overrides: 'forward' },
    });
    const checked = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
    const agents = [testAgent(validated.ca), testAgent(checked.ca)];
    t.teardown(() => Promise.all(agents.map((a) => a.close())));
    const send = (s: typeof validated, body: string) =>
      fetchText(`${s.url}/users`, agents[s === validated ? 0 : 1] as (typeof agents)[0], {
        method: 'POST',
        headers: { 'content-type': TYPE },
        body: Buffer.from(body, 'latin1'),
      });
    const name = part('Content-Disposition: form-data; name="name"', 'eve');
    const renamed = (to: string, value: string) =>
      name +
      part(`Content-Disposition: form-data; name="note"\r\n${folded(`Content-Disposition: form-data; name="${to}"`)}`, value) +
      close;
    const before = backend.requests.length;

    const role = await send(validated, renamed('role', 'admin'));
    t.equal(role.status, 400, 'note renamed role (Django: role=admin): 400');
    t.match(role.json(), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /not valid multipart/ }] }, 'by validation');
    t.equal(validated.events.at(-1)?.['warden.rule'], 'openapi.body', 'refused by validation');
    const method = await send(checked, renamed('_method', 'DELETE'));
    t.equal(method.status, 400, 'note renamed _method (Django: _method=DELETE): 400');
    t.match(method.json(), { code: 'ERR_REQUEST_INVALID', detail: /folded part header line/ }, 'named');
    t.equal(checked.events.at(-1)?.['warden.rule'], 'overrides.multipart', "refused by the _method check's reader");
    t.equal(backend.requests.length, before, 'the backend saw neither');

    t.equal(
      (await send(validated, name + part('Content-Disposition: form-data; name="role"', 'admin') + close)).status,
      400,
      'role=admin plainly: 400',
    );
    t.equal(
      (await send(checked, name + part('Content-Disposition: form-data; name="note"', 'hi') + close)).status,
      200,
      'a clean form passes',
    );
  });
});
