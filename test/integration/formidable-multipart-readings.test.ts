/**
 * Multipart bodies formidable reads otherwise than busboy, behind every multipart reader here
 * (red team round 26, checked against a real koa-body 6 (formidable 3.5.4) and restify 11 (its
 * bundled formidable 1.2.6) behind Warden: formidable is no prerequisite here, its readings are its
 * source, src/threats/formidable-readings.ts):
 *
 * - formidable takes a part's name from the first `\bname=` anywhere in its Content-Disposition,
 *   so `x-name="role"; name="x"` was `role` (past the schema's enum) to koa-body and restify, and
 *   `x-name="_method"` ran a DELETE through koa-override;
 * - formidable 3 reads a part with a file name and no Content-Type (or an empty one) as a text
 *   field, formidable 1.2.6 one whose `filename=` its regex does not match (`filename="a.txt";x=1`):
 *   files to busboy, whose content the waf does not read, so an XSS reached the apps in block mode.
 *   The first is what Python's requests sends for every file, images and archives too: it stays a
 *   file (read as text, a PNG or a binary was refused; a koa-body app gets such a part as a text
 *   field, threats.md); the second no client sends: refused;
 * - formidable decodes `&#dddd;` and `%22` in a file name, after the `\` it cuts at:
 *   `&#0060;script&#0062;` reached koa-body's `originalFilename` as `<script>`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { curl, fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const XSS = '<script>alert(document.cookie)</script>';
const SQLI = "1' UNION SELECT password FROM users--";
const multipart = (parts: [headers: string[], content: string][], boundary = 'b') =>
  parts.map(([headers, content]) => `--${boundary}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${content}\r\n`).join('') +
  `--${boundary}--\r\n`;
const named = (name: string): string[] => [`Content-Disposition: form-data; name="${name}"`];
/** Dispositions busboy reads as `x` and formidable (both versions) as `target`. */
const renamed = (target: string, x = 'x') => [
  `form-data; x-name="${target}"; name="${x}"`,
  `form-data; a="name=${target}"; name="${x}"`,
  `form-data; a="b name=${target}"; name="${x}"`,
  `form-data; my.name=${target}; name="${x}"`,
];
/** Part header blocks busboy reads as a file named `note` and formidable 3 as a text field: untyped. */
const UNTYPED_FILES = [
  ['Content-Disposition: form-data; name="note"; filename="a.txt"'],
  ['Content-Disposition: form-data; name="note"; filename="a.txt"', 'Content-Type:'],
  ['Content-Disposition: form-data; name="note"; filename="a.txt"', 'Content-Type: '],
  ['Content-Disposition: form-data; name="note"; filename="blob"'],
];
/** Part header blocks busboy reads as a file named `note` and formidable 1.2.6 as a text field. */
const FIELD_TO_FORMIDABLE = [
  ['Content-Disposition: form-data; name="note"; filename="a.txt";x=1', 'Content-Type: text/plain'],
  ['Content-Disposition: form-data; name="note"; filename=a.txt;x=1', 'Content-Type: text/plain'],
  ['Content-Disposition: form-data; name="note"; filename="a.txt" ', 'Content-Type: text/plain'],
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

t.test('multipart bodies formidable reads otherwise: refused by the _method check, the waf and validation', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const plain = await startTestSidecar(t, backend.url);
  const waf = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    headers: { overrides: 'forward' },
  });
  const validated = await startTestSidecar(t, backend.url, {
    openapi: { document: openApiFile(DOC), allow_public: true },
    headers: { overrides: 'forward' },
  });
  const agents = new Map([plain, waf, validated].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const marks = new Map<typeof plain, number>();
  const raised = (s: typeof plain) => (s.events.length > (marks.get(s) ?? 0) ? s.events.at(-1) : undefined);
  const send = (s: typeof plain, path: string, body: string | Buffer, contentType = 'multipart/form-data; boundary=b') => {
    marks.set(s, s.events.length);
    return fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: typeof body === 'string' ? Buffer.from(body, 'latin1') : body,
    });
  };

  await t.test('a part formidable names otherwise than busboy, by each reader', async (t) => {
    const before = backend.requests.length;
    for (const disposition of renamed('role')) {
      const body = multipart([
        [named('name'), 'eve'],
        [[`Content-Disposition: ${disposition}`], 'admin'],
      ]);
      const r = await send(validated, '/users', body);
      t.equal(r.status, 400, `${disposition}: role=admin to formidable`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /not valid multipart/ }] }, disposition);
    }
    for (const disposition of renamed('_method', 'note')) {
      const r = await send(plain, '/echo', multipart([[[`Content-Disposition: ${disposition}`], 'DELETE']]));
      t.equal(r.status, 400, `${disposition}: a _method to koa-override`);
      t.match(
        r.json(),
        { code: 'ERR_REQUEST_INVALID', detail: /formidable reads under another name \("_method", not "note"\)/ },
        disposition,
      );
      t.equal(raised(plain)?.['warden.rule'], 'overrides.multipart', `${disposition}: rule`);
      const sqli = multipart([[[`Content-Disposition: ${disposition}`], SQLI]]);
      t.equal((await send(waf, '/echo', sqli)).status, 400, `${disposition}: the waf's reader`);
      t.equal(raised(waf)?.['warden.rule'], 'waf.multipart', `${disposition}: rule waf.multipart`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    const ok = multipart([
      [named('name'), 'eve'],
      [['Content-Disposition: form-data; name="role"'], 'user'],
      [['Content-Disposition: form-data; name="x-name"'], 'plain'],
      // formidable's first `\bname=` is the real one here: `x` to both.
      [['Content-Disposition: form-data; name="x"; x-name="role"'], 'admin'],
    ]);
    t.equal((await send(validated, '/users', ok)).status, 200, 'plain names pass, a field named x-name, an x-name after the name');
  });

  await t.test("an untyped file part (Python requests' every file) stays a file: binary uploads pass every reader", async (t) => {
    const before = backend.requests.length;
    // Bytes that read as text trip the waf's rules (a PNG holds `'`, `<` and SQL-looking runs).
    const png = Buffer.concat([
      Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
      Buffer.from("IHDR' OR 1=1 --<script>x</script>\x00\xff", 'latin1'),
    ]);
    const boundary = 'bcbf1708c0e05d1010eeb1a2069ca416';
    for (const headers of UNTYPED_FILES) {
      const body = Buffer.concat([
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\neve\r\n--${boundary}\r\n${headers.join('\r\n')}\r\n\r\n`,
          'latin1',
        ),
        png,
        Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
      ]);
      for (const s of [plain, waf])
        t.equal(
          (await send(s, '/echo', body, `multipart/form-data; boundary=${boundary}`)).status,
          200,
          `${headers.join(' | ')}: a binary file passes`,
        );
    }
    t.equal(backend.requests.length, before + UNTYPED_FILES.length * 2, 'all reached the backend');
    // The same bytes read as a text field trip the waf: reading an untyped file as text refuses it.
    const asField = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n`, 'latin1'),
      png,
      Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
    ]);
    t.equal((await send(waf, '/echo', asField, `multipart/form-data; boundary=${boundary}`)).status, 403, 'the same bytes as a field: 403');
  });

  await t.test('a file part formidable 1 reads as a text field: refused by every reader', async (t) => {
    const before = backend.requests.length;
    for (const headers of FIELD_TO_FORMIDABLE) {
      const what = headers.join(' | ');
      for (const content of [XSS, SQLI]) {
        const r = await send(
          waf,
          '/echo',
          multipart([
            [named('name'), 'eve'],
            [headers, content],
          ]),
        );
        t.equal(r.status, 400, `${what}: ${content.slice(0, 8)}`);
        t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /formidable/ }, what);
        t.equal(raised(waf)?.['warden.rule'], 'waf.multipart', `${what}: rule waf.multipart`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
  });

  await t.test('file names formidable decodes: inspected as formidable reads them', async (t) => {
    const before = backend.requests.length;
    const upload = (filename: string) =>
      multipart([[[`Content-Disposition: form-data; name="doc"; filename="${filename}"`, 'Content-Type: text/plain'], 'hello']]);
    const decoded = [
      '&#0060;script&#0062;alert(1)&#0060;/script&#0062;.txt',
      '1&#0039; OR &#0039;1&#0039;=&#0039;1.txt',
      '..&#0047;..&#0047;..&#0047;etc&#0047;passwd',
      // formidable cuts at the last `\`, the escape of a quote too: `"'…` here.
      'x\\"1&#0039; OR &#0039;1&#0039;=&#0039;1',
    ];
    for (const filename of decoded) {
      t.equal((await send(waf, '/echo', upload(filename))).status, 403, filename);
      t.match(raised(waf), { 'warden.detail': /^\/files\/doc/ }, `${filename}: the file name`);
    }
    // A file name formidable finds elsewhere than busboy's `filename`.
    const elsewhere = [
      'form-data; name="doc"; x-filename="&#0060;script&#0062;.txt"; filename="a.txt"',
      'form-data; name="doc"; filename="a.txt";x=" <script>alert(1)</script>"',
      'form-data; name="doc"; filename="a\\"; <script>alert(1)</script>.txt"',
      'form-data; name="doc"; x-filename="a.txt"',
    ];
    for (const disposition of elsewhere) {
      const r = await send(waf, '/echo', multipart([[[`Content-Disposition: ${disposition}`, 'Content-Type: text/plain'], 'hello']]));
      t.equal(r.status, 400, disposition);
      t.match(r.json(), { detail: /formidable/ }, disposition);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    // What browsers and curl send for `my "quoted" file.txt`, and a `\` (formidable reads `b.txt`).
    for (const filename of ['my %22quoted%22 file.txt', 'dir\\b.txt', "O'Brien's notes.txt"])
      t.equal((await send(waf, '/echo', upload(filename))).status, 200, `${filename} passes`);
  });

  await t.test('what curl, undici FormData and a browser send passes', async (t) => {
    const before = backend.requests.length;
    const dir = mkdtempSync(join(tmpdir(), 'warden-formidable-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, waf.ca);
    writeFileSync(join(dir, 'notes.txt'), 'plain words\n');
    writeFileSync(join(dir, 'data.unknownext'), Buffer.from([0, 1, 2, 3]));
    const sent = await curl([
      '--cacert',
      caFile,
      '-F',
      'name=eve',
      '-F',
      `doc=@${join(dir, 'notes.txt')}`,
      '-F',
      `raw=@${join(dir, 'data.unknownext')}`,
      '-F',
      `quoted=@${join(dir, 'notes.txt')};filename="my \\"quoted\\" notes.txt"`,
      `${waf.url}/echo`,
    ]);
    t.equal(sent.status, 200, `curl -F: ${sent.stderr}`);
    const form = new FormData();
    form.append('name', 'eve');
    form.append('blob', new Blob(['{"a":1}']));
    form.append('typed', new Blob(['plain words'], { type: 'text/plain' }), 'a"b\\c.txt');
    form.append('file', new File(['x'], 'n.txt'));
    // undici's own encoding of the form (a Request serialises it as fetch sends it).
    const request = new Request('http://x/', { method: 'POST', body: form });
    const bytes = Buffer.from(await request.arrayBuffer());
    t.equal((await send(waf, '/echo', bytes, request.headers.get('content-type') as string)).status, 200, 'undici FormData');
    const browser = multipart(
      [
        [named('name'), 'eve'],
        [['Content-Disposition: form-data; name="avatar"; filename="photo 1.png"', 'Content-Type: image/png'], '\x89PNG'],
        [['Content-Disposition: form-data; name="empty"; filename=""', 'Content-Type: application/octet-stream'], ''],
      ],
      '----WebKitFormBoundary7MA4YWxkTrZu0gW',
    );
    const chrome = await send(waf, '/echo', browser, 'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW');
    t.equal(chrome.status, 200, 'a browser form with a file and an empty file input');
    t.equal(backend.requests.length, before + 3, 'all reached the backend');
  });
});
