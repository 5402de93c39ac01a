/**
 * Multipart bodies Tomcat 10.1 and Jetty 9.4 read otherwise than busboy (red team 28, run against
 * the real Debian servers behind the sidecar; Java is no prerequisite here, the shapes are replayed
 * against the test backend):
 *
 * - Tomcat (commons-fileupload's ParameterParser) decodes RFC 2047 encoded words in a part's name
 *   and file name (`name="=?UTF-8?Q?role?="` is `role`) and in the boundary
 *   (`boundary="=?UTF-8?Q?AA?="` is `AA`);
 * - Jetty takes single quotes off the boundary (`boundary='AA'` is `AA`), finds it with a
 *   case-sensitive `indexOf("boundary=")` (under `Boundary=AA` it splits at bare `--` lines, in
 *   what busboy skips as the preamble), and opens a single-quoted span at any `'` in a
 *   Content-Disposition (`x=a'; filename="b.txt"; y=b'` hides the file name).
 *
 * Each reached the servlet past the enum, the `_method` ban and the waf, h1 and h2. Here each is
 * refused on an OpenAPI route, a plain waf route and a malware-scan route, over both.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FormData } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { EICAR, startTestClamd } from '../support/clamd.js';
import { curl, fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users:
    post:
      requestBody:
        required: true
        content:
          multipart/form-data: { schema: { $ref: '#/components/schemas/User' } }
      responses: { '200': { description: ok } }
  /users/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: integer } }]
    post:
      requestBody:
        content:
          multipart/form-data: { schema: { type: object, properties: { name: { type: string } } } }
      responses: { '200': { description: ok } }
    delete:
      responses: { '200': { description: ok } }
components:
  schemas:
    User:
      type: object
      properties:
        name: { type: string, maxLength: 40 }
        role: { type: string, enum: [user] }
        note: { type: string }
        file: { type: string, format: binary }
`;

/** One part: its Content-Disposition parameters after `form-data; `, its content, and more headers. */
type Part = [disposition: string, content: string | Buffer, headers?: string];
const parts = (list: Part[], boundary: string, close = true): Buffer =>
  Buffer.concat([
    ...list.flatMap(([disposition, content, headers]) => [
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; ${disposition}\r\n${headers ?? ''}\r\n`),
      Buffer.from(content),
      Buffer.from('\r\n'),
    ]),
    Buffer.from(close ? `--${boundary}--\r\n` : ''),
  ]);
/** The parts Tomcat or Jetty reads, framed by `--inner`, inside one busboy file part framed by `--outer`. */
const hidden = (inner: Part[], outer: string, innerBoundary = 'AA') =>
  parts([['name="file"; filename="a.bin"', parts(inner, innerBoundary), 'Content-Type: application/octet-stream\r\n']], outer);
/** The parts Jetty reads under `Boundary=AA` (split at `--` lines), in busboy's preamble of a `--AA` body. */
const preamble = (inner: Part[]) => Buffer.concat([parts(inner, ''), parts([['name="name"', 'eve']], 'AA')]);

/** Every shape: the Content-Type, a body carrying `fields` as the Java server reads it. */
const SHAPES: [what: string, type: string, body: (fields: Part[]) => Buffer][] = [
  ['F2 boundary="=?UTF-8?Q?AA?=" (Tomcat: AA)', 'multipart/form-data; boundary="=?UTF-8?Q?AA?="', (f) => hidden(f, '=?UTF-8?Q?AA?=')],
  ["F3 boundary='AA' (Jetty: AA)", "multipart/form-data; boundary='AA'", (f) => hidden(f, "'AA'")],
  ['F4 Boundary=AA (Jetty: --)', 'multipart/form-data; Boundary=AA', preamble],
  ['F4 BOUNDARY=AA (Jetty: --)', 'multipart/form-data; BOUNDARY=AA', preamble],
  ['a "--" line in the preamble', 'multipart/form-data; boundary=AA', preamble],
];

t.test('multipart bodies Tomcat or Jetty read otherwise are refused (red team 28)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const validated = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    openapi: { document: openApiFile(DOC), allow_public: true },
  });
  const waf = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'all', path: '/*' }],
  });
  const scan = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '10s' } },
    routes: [{ id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true }],
  });
  const agents = new Map([validated, waf, scan].map((s) => [s, [testAgent(s.ca), testAgent(s.ca, { h2: true })] as const]));
  t.teardown(() => Promise.all([...agents.values()].flat().map((a) => a.close())));
  const send = (s: typeof waf, h2: boolean, path: string, contentType: string, body: Buffer, method = 'POST') =>
    fetchText(`${s.url}${path}`, agents.get(s)?.[h2 ? 1 : 0] as ReturnType<typeof testAgent>, {
      method,
      headers: { 'content-type': contentType },
      body,
    });

  for (const h2 of [false, true]) {
    const over = h2 ? 'h2' : 'h1';
    await t.test(`F1: an RFC 2047 encoded word in a part name or file name (Tomcat decodes it), ${over}`, async (t) => {
      const before = backend.requests.length;
      for (const name of ['=?UTF-8?Q?role?=', '=?UTF-8?B?cm9sZQ==?=', '=?UTF-8?Q?ro?= =?UTF-8?Q?le?=']) {
        const r = await send(
          validated,
          h2,
          '/users',
          'multipart/form-data; boundary=BB',
          parts(
            [
              ['name="name"', 'eve'],
              [`name="${name}"`, 'admin'],
            ],
            'BB',
          ),
        );
        t.equal(r.status, 400, `${name}: role=admin to Tomcat, refused by validation`);
        t.match(r.text, /encoded word/, `${name}: for the encoded word`);
      }
      for (const name of ['=?UTF-8?Q?=5Fmethod?=', '=?UTF-8?B?X21ldGhvZA==?=']) {
        const r = await send(validated, h2, '/users/1', 'multipart/form-data; boundary=BB', parts([[`name="${name}"`, 'DELETE']], 'BB'));
        t.equal(r.status, 400, `${name}: _method=DELETE to Tomcat, refused`);
      }
      for (const filename of ['=?UTF-8?Q?=3Cscript=3Ealert(1)=3C/script=3E.txt?=', '=?UTF-8?B?Li4vLi4vLi4vZXRjL3Bhc3N3ZA==?=']) {
        const body = parts([[`name="file"; filename="${filename}"`, 'x', 'Content-Type: text/plain\r\n']], 'BB');
        const r = await send(waf, h2, '/upload', 'multipart/form-data; boundary=BB', body, 'PUT');
        t.equal(r.status, 400, `${filename}: an attack in Tomcat's file name, refused by the waf`);
      }
      t.equal(backend.requests.length, before, 'the backend saw none');
    });

    await t.test(`F2-F4: a boundary Tomcat or Jetty reads otherwise hides their parts, ${over}`, async (t) => {
      const before = backend.requests.length;
      for (const [what, type, body] of SHAPES) {
        const role = await send(
          validated,
          h2,
          '/users',
          type,
          body([
            ['name="name"', 'eve'],
            ['name="role"', 'admin'],
          ]),
        );
        t.equal(role.status, 400, `${what}: role=admin, refused by validation`);
        const override = await send(validated, h2, '/users/1', type, body([['name="_method"', 'DELETE']]));
        t.equal(override.status, 400, `${what}: _method=DELETE, refused`);
        const sqli = await send(waf, h2, '/notes', type, body([['name="note"', SQLI]]), 'PUT');
        t.equal(sqli.status, 400, `${what}: an SQL injection, refused by the waf`);
        const eicar = await send(
          scan,
          h2,
          '/upload',
          type,
          body([['name="file"; filename="e.com"', EICAR, 'Content-Type: application/octet-stream\r\n']]),
        );
        t.ok(eicar.status === 400 || eicar.status === 422, `${what}: EICAR, refused by the scan (${eicar.status})`);
      }
      t.equal(backend.requests.length, before, 'the backend saw none');
    });

    await t.test(`F5: a single quote in an unquoted Content-Disposition value (Jetty hides the file name), ${over}`, async (t) => {
      const before = backend.requests.length;
      for (const injection of [SQLI, '<script>alert(document.cookie)</script>']) {
        const body = parts([[`name="note"; x=a'; filename="b.txt"; y=b'`, injection, 'Content-Type: text/plain\r\n']], 'BB');
        const r = await send(waf, h2, '/notes', 'multipart/form-data; boundary=BB', body, 'PUT');
        t.equal(r.status, 400, `${injection}: a text field to Jetty, refused by the waf`);
        t.match(r.text, /single quote/);
        t.equal(
          (await send(validated, h2, '/users', 'multipart/form-data; boundary=BB', body)).status,
          400,
          `${injection}: and by validation`,
        );
      }
      t.equal(backend.requests.length, before, 'the backend saw none');
    });
  }

  await t.test('what clients send passes: undici, curl, and others as they send them', async (t) => {
    const form = new FormData();
    form.append('name', 'eve');
    form.append('note', "John's note =?x");
    form.append('file', new Blob(['hello']), "John's a=?b.txt");
    for (const [agent, over] of [
      [agents.get(validated)?.[0], 'h1'],
      [agents.get(validated)?.[1], 'h2'],
    ] as const) {
      const r = await fetchText(`${validated.url}/users`, agent as ReturnType<typeof testAgent>, { method: 'POST', body: form });
      t.equal(r.status, 200, `undici's FormData (----formdata-undici-0…), ${over}: ${r.text}`);
    }
    const caFile = join(mkdtempSync(join(tmpdir(), 'warden-java-')), 'ca.pem');
    writeFileSync(caFile, validated.ca);
    for (const http2 of [[], ['--http2']]) {
      const curled = await curl(
        ['--cacert', caFile, ...http2, '-F', 'name=eve', '-F', 'file=@-;filename=a.txt', `${validated.url}/users`],
        Buffer.from('x'),
      );
      t.equal(curled.status, 200, `curl -F ${http2.join('')} (------------------------<hex>) ${curled.stderr}`);
    }
    for (const [client, type, boundary] of [
      ['Chromium', 'multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW', '----WebKitFormBoundary7MA4YWxkTrZu0gW'],
      [
        'Firefox',
        'multipart/form-data; boundary=----geckoformboundary5d3e4a9c2b1f0e8d7c6b5a49',
        '----geckoformboundary5d3e4a9c2b1f0e8d7c6b5a49',
      ],
      ['requests (urllib3)', 'multipart/form-data; boundary=3fe4a5448505a9fe294af101573d817f', '3fe4a5448505a9fe294af101573d817f'],
      [
        'Go',
        'multipart/form-data; boundary=4c2f5a1ea0e2b4a8a3e7cc1c3c2bde0f4d5b1f9a0e0c7d6b5a4f3e2d1c0b',
        '4c2f5a1ea0e2b4a8a3e7cc1c3c2bde0f4d5b1f9a0e0c7d6b5a4f3e2d1c0b',
      ],
      ['OkHttp (UUID)', 'multipart/form-data; boundary=0f8e8d8a-5b9c-4d7e-9a1b-2c3d4e5f6a7b', '0f8e8d8a-5b9c-4d7e-9a1b-2c3d4e5f6a7b'],
      [
        '.NET (quoted GUID)',
        'multipart/form-data; boundary="0f8e8d8a-5b9c-4d7e-9a1b-2c3d4e5f6a7b"',
        '0f8e8d8a-5b9c-4d7e-9a1b-2c3d4e5f6a7b',
      ],
      [
        'Postman, axios form-data',
        'multipart/form-data; boundary=--------------------------123456789012345678901234',
        '--------------------------123456789012345678901234',
      ],
      ['Spring, Apache HttpClient', 'multipart/form-data;boundary=1A2b_3C-4d5E6f7G8h9IjK', '1A2b_3C-4d5E6f7G8h9IjK'],
      [
        "Python's email package",
        'multipart/form-data; boundary="===============5829186441279335224=="',
        '===============5829186441279335224==',
      ],
    ] as const) {
      const body = parts(
        [
          ['name="name"', 'eve'],
          [`name="file"; filename="John's report.txt"`, 'x', 'Content-Type: text/plain\r\n'],
        ],
        boundary,
      );
      t.equal((await send(validated, false, '/users', type, body)).status, 200, client);
    }
  });
});
