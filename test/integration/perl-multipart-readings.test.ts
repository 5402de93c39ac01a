/**
 * Multipart bodies the Perl form readers read otherwise than busboy, behind every multipart reader
 * here (red team round 26, checked against a real Mojolicious 9.31, HTTP::Body 1.22 (Catalyst's body
 * reader) and CGI.pm 4.55 behind Warden; Perl is no prerequisite here, the readings are their
 * regexes, src/threats/perl-readings.ts):
 *
 * - F3: Mojolicious reads a part whose Content-Type says `multipart` and then `boundary=`
 *   (`image/png; a=multipart; boundary=AA`) as multipart and hands over the form-data parts inside
 *   as top-level fields, a file part's too: `role=admin` passed validation, an SQL injection the waf;
 * - F5: Mojolicious reads a file name only quoted after `;` or a space, HTTP::Body and CGI.pm only
 *   after a space: `filename=a.txt`, `;\tfilename="a.txt"`, `;filename="a.txt"` were text fields to
 *   them and files to busboy, whose content the waf does not read: an SQL injection reached them;
 * - HTTP::Body takes a part's name after the first ` name=` anywhere, up to a `;`.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";
const multipart = (parts: [headers: string[], content: string][], boundary = 'BB') =>
  parts.map(([headers, content]) => `--${boundary}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${content}\r\n`).join('') +
  `--${boundary}--\r\n`;
const named = (name: string): string[] => [`Content-Disposition: form-data; name="${name}"`];
/** The red team's nfv3/nfw3: a file part whose type Mojolicious reads as multipart, holding form-data parts. */
const nested = (type: string, inner: [string, string][]) =>
  multipart([
    [named('name'), 'eve'],
    [
      ['Content-Disposition: form-data; name="filler"; filename="a.png"', `Content-Type: ${type}`],
      multipart(
        inner.map(([n, v]) => [named(n), v]),
        'AA',
      ).slice(0, -2),
    ],
  ]);
const MOJO_MULTIPART = [
  'application/x-multipart; boundary=AA',
  'text/plain; x="multipart"; boundary=AA',
  'image/png; a=multipart; boundary=AA',
];
/** Dispositions busboy reads as the file `note` and a Perl reader as the text field `note`. */
const FIELD_TO_PERL = [
  'form-data; name="note"; filename=a.txt',
  'form-data; name="note";\tfilename="a.txt"',
  'form-data; name="note";filename="a.txt"',
  'form-data; name="note";filename=a.txt',
];

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
              properties:
                name: { type: string, pattern: '^[a-z]+$' }
                role: { type: string, enum: [user] }
      responses: { '200': { description: ok } }
`;

t.test('multipart bodies the Perl readers read otherwise: refused by validation and the waf', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const waf = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block', budget: '2s' } } });
  const validated = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const agents = new Map([waf, validated].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const send = (s: typeof waf, path: string, body: string) =>
    fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=BB' },
      body: Buffer.from(body, 'latin1'),
    });

  await t.test('F3: a part Mojolicious reads as multipart, a file too', async (t) => {
    const before = backend.requests.length;
    for (const type of MOJO_MULTIPART) {
      const v = await send(validated, '/users', nested(type, [['role', 'admin']]));
      t.equal(v.status, 400, `${type}: role=admin to Mojolicious`);
      t.match(v.json(), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /nested multipart part/ }] }, type);
      const w = await send(waf, '/echo', nested(type, [['q', SQLI]]));
      t.equal(w.status, 400, `${type}: an SQL injection to Mojolicious`);
      t.match(w.json(), { code: 'ERR_REQUEST_INVALID', detail: /nested multipart part/ }, type);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    // A file whose name and content say multipart and boundary, of an ordinary type, passes.
    const png = multipart([
      [named('name'), 'eve'],
      [
        ['Content-Disposition: form-data; name="f"; filename="multipart boundary=1.png"', 'Content-Type: image/png'],
        '--AA\r\nmultipart; boundary=AA',
      ],
    ]);
    t.equal((await send(validated, '/users', png)).status, 200, 'an ordinary file');
  });

  await t.test('F5: a file part the Perl readers read as a text field', async (t) => {
    const before = backend.requests.length;
    for (const disposition of FIELD_TO_PERL) {
      const r = await send(
        waf,
        '/echo',
        multipart([
          [named('name'), 'eve'],
          [[`Content-Disposition: ${disposition}`, 'Content-Type: text/plain'], SQLI],
        ]),
      );
      t.equal(r.status, 400, disposition);
      t.match(
        r.json(),
        { code: 'ERR_REQUEST_INVALID', detail: /a file part (Mojolicious|HTTP::Body \(Catalyst\)) reads as a text field/ },
        disposition,
      );
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    // What clients send: `; filename="…"`, and a browser's empty file input.
    const browser = multipart([
      [named('name'), 'eve'],
      [['Content-Disposition: form-data; name="note"; filename="a.txt"', 'Content-Type: text/plain'], 'plain words'],
      [['Content-Disposition: form-data; name="empty"; filename=""', 'Content-Type: application/octet-stream'], ''],
    ]);
    t.equal((await send(waf, '/echo', browser)).status, 200, 'a browser form passes');
  });

  await t.test('a name HTTP::Body reads otherwise', async (t) => {
    const before = backend.requests.length;
    for (const disposition of ['form-data; name="role;x"', 'form-data;name="x"; a=" name=role"']) {
      const r = await send(
        validated,
        '/users',
        multipart([
          [named('name'), 'eve'],
          [[`Content-Disposition: ${disposition}`], 'admin'],
        ]),
      );
      t.equal(r.status, 400, `${disposition}: role=admin to HTTP::Body`);
      t.match(r.json(), { errors: [{ message: /HTTP::Body \(Catalyst\) reads under another name \("role"/ }] }, disposition);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
  });
});
