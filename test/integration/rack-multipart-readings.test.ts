/**
 * Multipart bodies Rack 2 (Rails, Sinatra) reads otherwise than busboy, behind every multipart
 * reader here (red team round 22f, checked against a real Sinatra 3 / Rack 2.2 / Puma behind
 * Warden: Ruby is no prerequisite here, the readings are Rack's source, run by hand):
 *
 * - Rack::Request#POST parses every `multipart/*` body as a form, so a `_method` part in a
 *   multipart/mixed or related body ran a POST as a DELETE; the `_method` check read only
 *   multipart/form-data. Parts busboy skips there (`attachment; name=…`, a Content-ID alone) are
 *   named by Rack too.
 * - Rack takes a part's name from one unanchored, greedy regex over its whole header block (then
 *   its Content-ID), so `name="note"; x="; name=_method"` and four other shapes were `note` to
 *   busboy and `_method` (or `role`, past the schema's enum) to Rack.
 * - Rack ends even a quoted boundary at "," or ";": under `boundary="AA,BB"` it split the body at
 *   `--AA` lines inside what busboy read as one file part.
 * - Rack looks a part's `filename` up case-sensitively, among parameters scanned over its whole
 *   header block (red team round 22h): `FILENAME="a.txt"` was a file to busboy, which the waf does
 *   not read and validation took for `format: binary`, and an SQL injection in a text field to Rack.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";
const multipart = (parts: [headers: string[], content: string][], boundary = 'b') =>
  parts.map(([headers, content]) => `--${boundary}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${content}\r\n`).join('') +
  `--${boundary}--\r\n`;
const named = (name: string): string[] => [`Content-Disposition: form-data; name="${name}"`];
/** Header blocks busboy reads as `note` and Rack as `_method`. */
const RENAMED = [
  ['Content-Disposition: form-data; name="note"; x="; name=_method"'],
  ['Content-Disposition: form-data; name="n;name=_method"'],
  ['X-Content-Disposition: form-data; name="_method"', 'Content-Disposition: form-data; name="note"'],
  ['X-Pad: Content-Disposition: y; name=_method', 'Content-Disposition: form-data; name="note"'],
  ['Content-Disposition: form-data; x=":"; name="note"', 'Content-ID: _method'],
];
/** A body Rack splits at `--AA` under a boundary holding `separator`, busboy at the whole boundary. */
const splitByRack = (separator: string, fields: [string, string][]) => {
  const whole = `AA${separator}BB`;
  let body = `--${whole}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbob\r\n`;
  body += `--${whole}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  for (const [k, v] of fields) body += `--AA\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  return [`multipart/form-data; boundary="${whole}"`, `${body}--AA--\r\n\r\n--${whole}--\r\n`] as const;
};

/** An OData v4 $batch as clients send it (Microsoft's OData client, SAP UI5): GETs, and a changeset. */
const ODATA_BATCH_BOUNDARY = 'batch_36522ad7-fc75-4b56-8c71-56071383e77b';
const ODATA_CHANGESET = 'changeset_77162fcd-b8da-41ac-a9f8-9357efbbd';
const ODATA_BATCH = [
  `--${ODATA_BATCH_BOUNDARY}`,
  'Content-Type: application/http',
  'Content-Transfer-Encoding: binary',
  'Content-ID: 1',
  '',
  "GET Customers('ALFKI')?$select=CompanyName,ContactName HTTP/1.1",
  'Accept: application/json;odata.metadata=minimal',
  'OData-Version: 4.0',
  '',
  '',
  `--${ODATA_BATCH_BOUNDARY}`,
  `Content-Type: multipart/mixed; boundary=${ODATA_CHANGESET}`,
  '',
  `--${ODATA_CHANGESET}`,
  'Content-Type: application/http',
  'Content-Transfer-Encoding: binary',
  'Content-ID: 2',
  '',
  'POST Customers HTTP/1.1',
  'Content-Type: application/json;odata.metadata=minimal',
  'Accept: application/json',
  '',
  '{"CustomerID":"NEWCO","CompanyName":"O\'Reilly & Sons","ContactName":"Ann","Address":{"City":"Seattle","PostalCode":"98052"}}',
  `--${ODATA_CHANGESET}`,
  'Content-Type: application/http',
  'Content-Transfer-Encoding: binary',
  'Content-ID: 3',
  '',
  'PATCH Orders(10248) HTTP/1.1',
  'Content-Type: application/json',
  'If-Match: W/"20260101"',
  '',
  '{"ShipName":"Around the Horn","Freight":32.38,"ShippedDate":"2026-12-01T00:00:00Z"}',
  `--${ODATA_CHANGESET}--`,
  '',
  `--${ODATA_BATCH_BOUNDARY}`,
  'Content-Type: application/http',
  'Content-Transfer-Encoding: binary',
  '',
  "GET Products?$filter=UnitPrice gt 20 and startswith(ProductName,'Ch')&$orderby=UnitPrice desc&$top=5&$count=true HTTP/1.1",
  'Accept: application/json',
  '',
  '',
  `--${ODATA_BATCH_BOUNDARY}--`,
  '',
].join('\r\n');

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
                file: { type: string, format: binary }
                role: { type: string, enum: [user] }
      responses: { '200': { description: ok } }
`;

t.test('multipart bodies Rack reads otherwise: refused by the _method check, the waf and validation', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The passthrough route: only the _method check reads the body.
  const plain = await startTestSidecar(t, backend.url);
  // A wall-clock budget a loaded machine keeps (past it, a request is refused as waf.timeout).
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
  /** How many events each sidecar had raised when it was last sent a request: `raised` reads only what came after. */
  const marks = new Map<typeof plain, number>();
  const raised = (s: typeof plain) => (s.events.length > (marks.get(s) ?? 0) ? s.events.at(-1) : undefined);
  const send = (s: typeof plain, path: string, contentType: string, body: string, method = 'POST') => {
    marks.set(s, s.events.length);
    return fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>, {
      method,
      headers: { 'content-type': contentType },
      body: Buffer.from(body, 'latin1'),
    });
  };

  await t.test('a _method part in every multipart type, by the name Rack gives it', async (t) => {
    const before = backend.requests.length;
    const tries: [string, string, string][] = [
      ['multipart/mixed, a form-data part', 'multipart/mixed; boundary=b', multipart([[named('_method'), 'DELETE']])],
      ['multipart/related, a form-data part', 'multipart/related; boundary=b', multipart([[named('_method'), 'DELETE']])],
      [
        'multipart/mixed, an attachment named _method (busboy skips it)',
        'multipart/mixed; boundary=b',
        multipart([[['Content-Disposition: attachment; name="_method"'], 'DELETE']]),
      ],
      ['multipart/related, a Content-ID alone', 'multipart/related; boundary=b', multipart([[['Content-ID: _method'], 'PUT']])],
    ];
    for (const [what, type, body] of tries) {
      const r = await send(plain, '/echo', type, body);
      t.equal(r.status, 400, what);
      t.equal(r.json<{ code: string }>().code, 'ERR_REQUEST_OVERRIDE', what);
      t.equal(raised(plain)?.['warden.rule'], 'overrides.method_field', `${what}: rule`);
      t.equal((await send(plain, '/echo', type, body, 'PUT')).status, 200, `${what}: a PUT is forwarded`);
    }
    t.equal(backend.requests.length, before + tries.length, 'only the PUTs reached the backend');
    const batch = multipart([[['Content-Type: application/http', 'Content-ID: 1'], 'GET /items HTTP/1.1']]);
    t.equal((await send(plain, '/echo', 'multipart/mixed; boundary=b', batch)).status, 200, 'an OData-style batch part passes');
    t.equal(
      (await send(plain, '/echo', 'multipart/mixed; boundary=b', multipart([[named('note'), 'hi']]))).status,
      200,
      'a form-data part of another name passes',
    );
  });

  await t.test('the waf reads a part no form reader reads as the field Rack reads it as', async (t) => {
    const before = backend.requests.length;
    const tries: [string, string, string, string][] = [
      ['an attachment named q', 'multipart/mixed', 'Content-Disposition: attachment; name="q"', '/body/q/0'],
      ['an inline part named q', 'multipart/related', 'Content-Disposition: inline; name=q', '/body/q/0'],
      ['a Content-ID alone', 'multipart/mixed', 'Content-ID: q', '/body/q/0'],
      ['a JSON part with a Content-ID', 'multipart/related', 'Content-ID: q\r\nContent-Type: application/json', '/body/q/0'],
      // Named after its type by Rack (params["text/plain"]).
      ['a part with neither', 'multipart/mixed', 'Content-Type: text/plain', '/body/*/0'],
    ];
    for (const [what, type, headers, path] of tries) {
      const r = await send(waf, '/echo', `${type}; boundary=b`, multipart([[headers.split('\r\n'), SQLI]]));
      t.equal(r.status, 403, `${type}, ${what}: an SQL injection is refused`);
      t.match(raised(waf), { name: 'warden.input.sqli', 'warden.detail': path }, `${what}: its event, by Rack's name`);
    }
    const escaped = multipart([
      [['Content-ID: q', 'Content-Type: application/json'], '{"q":"1\\u0027 UNION SELECT password FROM users--"}'],
    ]);
    t.equal((await send(waf, '/echo', 'multipart/related; boundary=b', escaped)).status, 403, 'a JSON part: its strings unescaped too');
    const utf16 = multipart([[['Content-ID: q', 'Content-Type: text/plain; charset=utf-16le'], 'x']]);
    t.equal((await send(waf, '/echo', 'multipart/mixed; boundary=b', utf16)).status, 415, 'a part in a charset the waf cannot read: 415');
    t.equal(backend.requests.length, before, 'the backend saw none');
    t.equal(
      (await send(waf, '/echo', 'multipart/mixed; boundary=b', multipart([[['Content-ID: q'], 'plain words']]))).status,
      200,
      'a part without an attack passes',
    );
  });

  await t.test('an OData $batch passes the waf: its parts are read, and hold no attack', async (t) => {
    const r = await send(waf, '/odata/$batch', `multipart/mixed; boundary=${ODATA_BATCH_BOUNDARY}`, ODATA_BATCH);
    t.equal(r.status, 200, 'GETs, and a changeset of a POST and a PATCH with JSON');
    const attack = ODATA_BATCH.replace(`'ALFKI'`, `'ALFKI'' UNION SELECT password FROM users--'`);
    t.equal(
      (await send(waf, '/odata/$batch', `multipart/mixed; boundary=${ODATA_BATCH_BOUNDARY}`, attack)).status,
      403,
      'an SQL injection in one of its requests is refused (Rack reads the part as field "1")',
    );
  });

  await t.test('a part Rack names otherwise than busboy, by each reader', async (t) => {
    const before = backend.requests.length;
    for (const headers of RENAMED) {
      const body = multipart([[headers, 'DELETE']]);
      const what = headers.join(' | ');
      const r = await send(plain, '/echo', 'multipart/form-data; boundary=b', body);
      t.equal(r.status, 400, what);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /Rack reads under another name \("_method", not "/ }, `${what}: named`);
      t.equal(raised(plain)?.['warden.rule'], 'overrides.multipart', `${what}: by the _method check's reader`);
      const sqli = multipart([[headers, SQLI]]);
      t.equal((await send(waf, '/echo', 'multipart/form-data; boundary=b', sqli)).status, 400, `${what}: the waf's reader`);
      t.equal(raised(waf)?.['warden.rule'], 'waf.multipart', `${what}: rule waf.multipart`);
    }
    const role = multipart([
      [named('name'), 'bob'],
      [['Content-Disposition: form-data; name="file"; x="; name=role"'], 'admin'],
    ]);
    const r = await send(validated, '/users', 'multipart/form-data; boundary=b', role);
    t.equal(r.status, 400, 'role=admin to Rack, file to busboy: 400');
    t.match(r.json(), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /not valid multipart/ }] }, 'by validation');
    t.equal(backend.requests.length, before, 'the backend saw none');
    t.equal(
      (await send(plain, '/echo', 'multipart/form-data; boundary=b', multipart([[named('note'), 'hi']]))).status,
      200,
      'a plain part passes',
    );
  });

  await t.test('a part Rack reads as a text field and busboy as a file: refused by the waf and validation', async (t) => {
    const before = backend.requests.length;
    // Rack looks `filename` up case-sensitively, among parameters scanned over the whole block.
    const fileToBusboy = [
      'Content-Disposition: form-data; name="name"; FILENAME="a.txt"',
      'Content-Disposition: form-data; name="name"; Filename=a.txt',
      'Content-Disposition: form-data; name="name"; x="\\\\"; filename="a.txt"',
    ];
    for (const disposition of fileToBusboy) {
      const sqli = multipart([[[disposition], SQLI]]);
      t.equal((await send(waf, '/echo', 'multipart/form-data; boundary=b', sqli)).status, 400, `${disposition}: the waf`);
      t.equal(raised(waf)?.['warden.rule'], 'waf.multipart', `${disposition}: rule waf.multipart`);
      const xss = multipart([[[disposition, 'Content-Type: text/plain'], '<script>alert(document.cookie)</script>']]);
      t.equal((await send(waf, '/echo', 'multipart/mixed; boundary=b', xss)).status, 400, `${disposition}: in multipart/mixed`);
      // `file` is format: binary: a file to busboy passed validation, a string past the pattern to Rack.
      const r = await send(
        validated,
        '/users',
        'multipart/form-data; boundary=b',
        multipart([[[disposition.replace('"name"', '"file"')], SQLI]]),
      );
      t.equal(r.status, 400, `${disposition}: validation`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /not valid multipart/ }] }, disposition);
    }
    const renamedFile = multipart([[[...named('name'), 'Content-Type: text/plain; filename=x'], 'bob']]);
    t.equal(
      (await send(validated, '/users', 'multipart/form-data; boundary=b', renamedFile)).status,
      400,
      'a file to Rack, a field to busboy',
    );
    t.equal(backend.requests.length, before, 'the backend saw none');
    const upload = multipart([
      [named('name'), 'bob'],
      [['Content-Disposition: form-data; name="file"; filename="a.txt"', 'Content-Type: text/plain'], SQLI],
    ]);
    t.equal((await send(validated, '/users', 'multipart/form-data; boundary=b', upload)).status, 200, 'a file upload passes validation');
    t.equal((await send(waf, '/echo', 'multipart/form-data; boundary=b', upload)).status, 200, 'and the waf, which reads no file');
  });

  await t.test('a boundary holding "," or ";": 400 content_type.boundary', async (t) => {
    const before = backend.requests.length;
    for (const separator of [',', ';']) {
      const [type, method] = splitByRack(separator, [['_method', 'DELETE']]);
      const r = await send(plain, '/echo', type, method);
      t.equal(r.status, 400, `${type}: a _method to Rack`);
      t.match(r.json(), { code: 'ERR_REQUEST_MALFORMED' }, type);
      t.equal(raised(plain)?.['warden.rule'], 'content_type.boundary', `${type}: rule`);
      const [, sqli] = splitByRack(separator, [['name', SQLI]]);
      t.equal((await send(waf, '/echo', type, sqli)).status, 400, `${type}: an SQL injection to Rack`);
      const [, role] = splitByRack(separator, [['role', 'admin']]);
      t.equal((await send(validated, '/users', type, role)).status, 400, `${type}: role=admin to Rack`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none');
    const spaced = multipart([[named('name'), 'bob']], 'AA BB');
    t.equal((await send(validated, '/users', 'multipart/form-data; boundary="AA BB"', spaced)).status, 200, 'a quoted space passes');
  });
});
