/**
 * Content-Types Mojolicious 9.31 reads otherwise than the stages here (red team round 26, run
 * against a real Mojolicious::Lite behind the sidecar; Perl is no prerequisite here, the shapes are
 * replayed against the test backend). Mojolicious reads the whole header, not its parameters:
 *
 * - the charset is `/charset\s*=\s*"?([^"\s;]+)"?/i` anywhere, so under
 *   `application/x-www-form-urlencoded; xcharset=cp37` or `…; x="charset=utf-16le"` (and in
 *   multipart/form-data) it decoded the fields as EBCDIC or UTF-16 while validation, the waf and
 *   the scan read UTF-8: `role=admin` past its enum, SQL injection past the waf;
 * - a form whenever `application/x-www-form-urlencoded` appears anywhere in the header, multipart
 *   parts whenever `multipart/form-data` does, and a multipart body under any type matching
 *   `/multipart.*boundary\s*=/i`: under `text/plain; x="application/x-www-form-urlencoded"` the waf
 *   read raw text and Mojolicious decoded `note=1%27%20UNION…`;
 * - the boundary as `boundary\s*=\s*(?:"([^"]+)"|([\w'(),.:?\-+/]+))`: `boundary=AA!BB` is `AA` to
 *   it, so what busboy took for the preamble, never inspected, was the form.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FormData } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { curl, fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";

/** IBM037 (EBCDIC) for the characters used here: letters in runs of 9, 9 and 8 (a-i, j-r, s-z). */
function ebcdic(text: string): Buffer {
  const OTHER: Record<string, number> = { ' ': 0x40, "'": 0x7d, '-': 0x60, '<': 0x4c, '>': 0x6e, '(': 0x4d, ')': 0x5d, '/': 0x61 };
  const letter = (i: number, base: number) => (i < 9 ? base + i : i < 18 ? base + 0x10 + i - 9 : base + 0x21 + i - 18);
  const code = (c: string): number => {
    if (c >= 'a' && c <= 'z') return letter(c.charCodeAt(0) - 0x61, 0x81);
    if (c >= 'A' && c <= 'Z') return letter(c.charCodeAt(0) - 0x41, 0xc1);
    if (c >= '0' && c <= '9') return 0xf0 + Number(c);
    const byte = OTHER[c];
    if (byte === undefined) throw new Error(`no IBM037 byte for ${c}`);
    return byte;
  };
  return Buffer.from([...text].map(code));
}
/** Percent-encodes every byte, as a form in that charset is sent. */
const percent = (bytes: Buffer) => [...bytes].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
const utf16 = (text: string) => Buffer.from(text, 'utf16le');

const multipart = (fields: [name: string | Buffer, value: string | Buffer][], boundary: string): Buffer =>
  Buffer.concat([
    ...fields.flatMap(([name, value]) => [
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="`),
      Buffer.from(name),
      Buffer.from('"\r\n\r\n'),
      Buffer.from(value),
      Buffer.from('\r\n'),
    ]),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
/** `fields` as parts framed by `--AA`, in what busboy reads as the preamble of a `--AA!BB` body. */
const preambleForm = (fields: [string, string][]) => Buffer.concat([multipart(fields, 'AA'), multipart([['name', 'eve']], 'AA!BB')]);

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users:
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded: { schema: { $ref: '#/components/schemas/User' } }
          multipart/form-data: { schema: { $ref: '#/components/schemas/User' } }
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
      required: [name]
      properties:
        name: { type: string, pattern: '^[a-z]+$' }
        role: { type: string, enum: [user] }
        note: { type: string, maxLength: 40 }
`;

t.test('Content-Types Mojolicious reads otherwise: refused by validation and the waf', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const waf = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block', budget: '2s' } } });
  const agents = new Map([validated, waf].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const send = (s: typeof waf, path: string, contentType: string, body: string | Buffer, method = 'POST') =>
    fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>, {
      method,
      headers: { 'content-type': contentType },
      body,
    });
  const rule = (s: typeof waf) => s.events.at(-1)?.['warden.rule'];

  await t.test('a charset named anywhere in the Content-Type (xcharset=, x="charset=…")', async (t) => {
    const before = backend.requests.length;
    const role = `name=eve&${percent(ebcdic('role'))}=${percent(ebcdic('admin'))}`;
    const role16 = `name=eve&${percent(utf16('role'))}=${percent(utf16('admin'))}`;
    for (const [type, body, status, expected] of [
      ['application/x-www-form-urlencoded; xcharset=cp37', role, 415, 'content_type.charset'],
      ['application/x-www-form-urlencoded; x="charset=utf-16le"', role16, 415, 'content_type.charset'],
      [
        'multipart/form-data; x="charset=cp37"; boundary=BB',
        multipart(
          [
            ['name', 'eve'],
            [ebcdic('role'), ebcdic('admin')],
          ],
          'BB',
        ),
        400,
        undefined,
      ],
      [
        'multipart/form-data; boundary=BB; xcharset=cp37',
        multipart(
          [
            ['name', 'eve'],
            [ebcdic('role'), ebcdic('admin')],
          ],
          'BB',
        ),
        400,
        undefined,
      ],
    ] as const) {
      const r = await send(validated, '/users', type, body);
      t.equal(r.status, status, `${type}: role=admin to Mojolicious, refused by validation`);
      if (expected !== undefined) t.equal(rule(validated), expected, `${type}: rule`);
      else t.match(r.json(), { errors: [{ pointer: '/body', message: /charset cp37/ }] }, `${type}: a body in cp37`);
    }
    for (const [type, body, expected] of [
      ['application/x-www-form-urlencoded; xcharset=cp37', `q=${percent(ebcdic(SQLI))}`, 'content_type.charset'],
      [
        'application/x-www-form-urlencoded; x="charset=ibm037"',
        `q=${percent(ebcdic('<script>alert(1)</script>'))}`,
        'content_type.charset',
      ],
      ['text/plain; x="charset=utf-16le"', utf16('<script>alert(1)</script>'), 'waf.charset'],
      // The `_method` check reads a multipart body first, of any method where the waf holds bodies (row 483).
      ['multipart/form-data; boundary=BB; xcharset=cp37', multipart([['q', ebcdic(SQLI)]], 'BB'), 'overrides.multipart'],
    ] as const) {
      // A PUT: the waf reads a form or text body first.
      const r = await send(waf, '/echo', type, body, 'PUT');
      t.ok(r.status === 415 || r.status === 400, `${type}: an attack to Mojolicious, refused by the waf (${r.status})`);
      t.equal(rule(waf), expected, `${type}: rule`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    // Controls: a charset every reader reads as UTF-8, wherever it is named.
    for (const type of ['application/x-www-form-urlencoded; charset=utf-8', 'application/x-www-form-urlencoded; xcharset=UTF-8'])
      t.equal((await send(validated, '/users', type, 'name=eve&role=user')).status, 200, `${type}: passes`);
  });

  await t.test('a form or multipart type inside another Content-Type', async (t) => {
    const before = backend.requests.length;
    const form = `note=${encodeURIComponent(SQLI)}&role=admin`;
    const parts = multipart(
      [
        ['note', SQLI],
        ['role', 'admin'],
      ],
      'BB',
    );
    for (const [type, body] of [
      ['text/plain; x="application/x-www-form-urlencoded"', form],
      ['text/plain; x="Application/X-WWW-Form-Urlencoded"', form],
      ['application/octet-stream; x="multipart/form-data; boundary=BB"', parts],
      ['image/png; a=multipart; boundary=BB', parts],
      ['application/x-multipart; boundary=BB', parts],
    ] as const) {
      for (const [s, path] of [
        [waf, '/echo'],
        [validated, '/notes'],
      ] as const) {
        const r = await send(s, path, type, body);
        t.equal(r.status, 400, `${type} to ${path}: a form to Mojolicious`);
        t.equal(r.json().code, 'ERR_REQUEST_MALFORMED');
        t.equal(rule(s), 'content_type.embedded_type', `${type}: rule`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    t.equal((await send(validated, '/notes', 'text/plain; charset=utf-8', form)).status, 200, 'text/plain: passes as text');
    t.equal((await send(waf, '/echo', 'application/octet-stream', parts)).status, 200, 'octet-stream: passes');
  });

  await t.test('an unquoted boundary Mojolicious ends early (boundary=AA!BB)', async (t) => {
    const before = backend.requests.length;
    for (const c of ['!', '#', '$', '%', '&', '*', '^', '|', '~', '`']) {
      const type = `multipart/form-data; boundary=AA${c}BB`;
      const role = Buffer.concat([
        multipart(
          [
            ['name', 'eve'],
            ['role', 'admin'],
          ],
          'AA',
        ),
        multipart([['name', 'eve']], `AA${c}BB`),
      ]);
      const r = await send(validated, '/users', type, role);
      t.equal(r.status, 400, `${type}: role=admin to Mojolicious, in busboy's preamble`);
      t.equal(rule(validated), 'content_type.boundary', `${type}: rule`);
    }
    const r = await send(waf, '/echo', 'multipart/form-data; boundary=AA!BB', preambleForm([['q', SQLI]]), 'PUT');
    t.equal(r.status, 400, 'an SQL injection in the preamble, to the waf');
    // The `_method` check's multipart reader refuses the Content-Type itself, before the waf's (row 483).
    t.equal(rule(waf), 'content_type.boundary');
    t.match(r.json(), { detail: /RFC 2046/ }, 'for its boundary');
    t.equal(backend.requests.length, before, 'the backend saw none');
    // Quoted, Mojolicious reads the boundary whole.
    const quoted = multipart([['name', 'eve']], 'AA!BB');
    t.equal((await send(validated, '/users', 'multipart/form-data; boundary="AA!BB"', quoted)).status, 200, 'quoted: passes');
  });

  await t.test('the boundaries clients send pass: undici, curl, and others as they send them', async (t) => {
    const form = new FormData();
    form.append('name', 'eve');
    form.append('role', 'user');
    const undici = await fetchText(`${validated.url}/users`, agents.get(validated) as ReturnType<typeof testAgent>, {
      method: 'POST',
      body: form,
    });
    t.equal(undici.status, 200, "undici's FormData (----formdata-undici-0…)");
    const caFile = join(mkdtempSync(join(tmpdir(), 'warden-mojo-')), 'ca.pem');
    writeFileSync(caFile, validated.ca);
    const curled = await curl(['--cacert', caFile, '-F', 'name=eve', '-F', 'role=user', `${validated.url}/users`]);
    t.equal(curled.status, 200, `curl -F (------------------------<hex>) ${curled.stderr}`);
    for (const boundary of [
      '----WebKitFormBoundary7MA4YWxkTrZu0gW',
      '----geckoformboundary5d3e4a9c2b1f0e8d7c6b5a49',
      '3fe4a5448505a9fe294af101573d817f',
      '4c2f5a1ea0e2b4a8a3e7cc1c3c2bde0f4d5b1f9a0e0c7d6b5a4f3e2d1c0b',
    ]) {
      const r = await send(validated, '/users', `multipart/form-data; boundary=${boundary}`, multipart([['name', 'eve']], boundary));
      t.equal(r.status, 200, boundary);
    }
  });
});
