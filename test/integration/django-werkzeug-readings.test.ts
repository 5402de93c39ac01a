/**
 * Two readings of the request Content-Type found with real Django 3.2 and Flask 2.2 / Werkzeug 2.2
 * behind the sidecar (red team round 29, F1 and F2; Python is no prerequisite here, the shapes are
 * replayed against the test backend, which records what reached it):
 *
 * - Django's WSGIRequest.GET decodes the query string in the charset the request's Content-Type
 *   names, on every method, body or not: a GET typed `text/plain; charset=utf-7` with
 *   `?q=%2BADw-script%2BAD4-` passed the waf and a query `pattern` (read as UTF-8) and Django read
 *   `<script>`;
 * - Werkzeug parses `application/x-url-encoded` (any case, any parameters) as a form, and
 *   formidable 3 (used directly) any Content-Type holding `urlencoded`: their fields were never
 *   read as form fields here (waf, `_method` check, the malware scan of values).
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";
/** `<script>alert(1)</script>` in UTF-7, percent-encoded as a query value. */
const UTF7_SCRIPT_QUERY = '%2BADw-script%2BAD4-alert(1)%2BADw-/script%2BAD4-';

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /search:
    get:
      parameters:
        - { name: term, in: query, schema: { type: string, pattern: "^[^<>'\\"]*$" } }
      responses: { '200': { description: ok } }
  /raw:
    post:
      requestBody:
        required: true
        content:
          '*/*': { schema: { type: string } }
      responses: { '200': { description: ok } }
`;

t.test('Django decodes the query string in the Content-Type charset: refused where a stage reads the query', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const waf = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block', budget: '2s' } } });
  const bare = await startTestSidecar(t, backend.url);
  // A waf, off on the route: nothing reads that route's query.
  const wafOff = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'files', path: '/files/*', methods: ['PUT'], waf: false }],
  });
  const h1 = new Map([validated, waf, bare, wafOff].map((s) => [s, testAgent(s.ca)]));
  const h2 = testAgent(waf.ca, { h2: true });
  t.teardown(() => Promise.all([...h1.values(), h2].map((a) => a.close())));
  const send = (s: typeof waf, target: string, contentType: string, method = 'GET', body?: string, agent = h1.get(s)) =>
    fetchText(`${s.url}${target}`, agent as ReturnType<typeof testAgent>, {
      method,
      headers: { 'content-type': contentType },
      ...(body === undefined ? {} : { body }),
    });
  const rule = (s: typeof waf) => s.events.at(-1)?.['warden.rule'];

  await t.test('a charset that does not read ASCII as ASCII, with a query: 415', async (t) => {
    const before = backend.requests.length;
    const cases: [typeof waf, string, string, string, string?][] = [
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'GET'],
      [waf, `/x?id=1%2BACc-%20OR%20%2BACc-1%2BACc-%3D%2BACc-1`, 'text/plain; charset=utf-7', 'GET'],
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'DELETE'],
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'POST', ''],
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'application/octet-stream; charset=utf-7', 'GET'],
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset="UTF-7"', 'GET'],
      [waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; x="charset=utf-7"', 'GET'],
      // `%3C%00` is `<` in UTF-16LE.
      [waf, '/x?q=%3C%00s%00', 'text/plain; charset=utf-16le', 'GET'],
      [validated, `/search?term=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'GET'],
      [validated, `/search?term=1%2BACc-`, 'application/octet-stream; charset=utf-7', 'GET'],
      // An operation validated without query parameters: its validation reads the query all the same (unknown keys, shadows).
      [validated, '/raw?overwrite=true', 'text/plain; charset=utf-16le', 'POST', 'x'],
      // Charsets whose trail bytes include ASCII (0x40-0x7E): `%81\\` is one character to the backend, and the `\\` the waf read is gone.
      [waf, '/x?q=1', 'application/json; charset=big5', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=shift_jis', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=gbk', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=cp949', 'GET'],
      // Stateful or escaping codecs, and single-byte sets that do not map ASCII to itself.
      [waf, '/x?q=1', 'text/plain; charset=iso-2022-jp', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=hz', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=unicode_escape', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=cp500', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=cp864', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset=mac_arabic', 'GET'],
      [waf, '/x?q=1', 'text/plain; charset="utf 7"', 'GET'],
    ];
    for (const [s, target, type, method, body] of cases) {
      const r = await send(s, target, type, method, body);
      t.equal(r.status, 415, `${method} ${target} typed ${type}: refused`);
      t.equal(r.json().code, 'ERR_MEDIA_TYPE_UNSUPPORTED', `${method} ${target}: code`);
      t.equal(rule(s), 'content_type.query_charset', `${method} ${target}: rule`);
    }
    const r = await send(waf, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'GET', undefined, h2);
    t.equal(r.status, 415, 'over h2 too');
    t.equal(backend.requests.length, before, 'the backend saw none');
  });

  await t.test('what clients send passes', async (t) => {
    const before = backend.requests.length;
    const cases: [typeof waf, string, string, string, string?][] = [
      [waf, '/x?q=hello', 'text/plain; charset=utf-8', 'GET'],
      [waf, '/x?q=hello', 'application/json; charset=UTF-8', 'GET'],
      [waf, '/x?q=caf%E9', 'text/plain; charset=iso-8859-1', 'GET'],
      [validated, '/search?term=hello', 'text/plain; charset=windows-1252', 'GET'],
      // libmagic's `file -bi` types, which name no codec (Django ignores a charset Python does not know).
      [bare, '/upload?name=a.bin', 'application/octet-stream; charset=binary', 'PUT', 'x'],
      // An upload in UTF-16 without a query, as before.
      [bare, '/upload', 'text/plain; charset=utf-16', 'PUT', 'x'],
      // A bare "?" is no query.
      [bare, '/upload?', 'text/plain; charset=utf-16', 'PUT', 'x'],
      // Where no stage reads the query (no waf, no validation, no query token source) the check
      // protects nothing: ordinary uploads with a query pass (review1 F3).
      [bare, '/files/export.csv?overwrite=true', 'text/csv; charset=utf-16le', 'PUT', 'a\u0000b\u0000'],
      [bare, '/blobs/x?sig=abc&se=2026', 'text/plain;charset=UTF-16', 'PUT', 'x'],
      [bare, '/ingest?source=dotnet', 'text/plain;charset=utf-16', 'POST', 'x'],
      [bare, '/soap?wsdl=1', 'text/xml; charset=utf-16', 'POST', 'x'],
      [bare, '/x?q=1', 'application/json;charset=big5', 'GET'],
      [bare, `/x?q=${UTF7_SCRIPT_QUERY}`, 'text/plain; charset=utf-7', 'GET'],
      [wafOff, '/files/export.csv?overwrite=true', 'text/csv; charset=utf-16le', 'PUT', 'x'],
      // Where one does: charsets in which ASCII is itself and no other bytes read as ASCII, nor swallow any.
      [waf, '/x?q=hello', 'text/plain; charset=euc-kr', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=EUC-JP', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=gb2312', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=tis-620', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=macintosh', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=koi8-u', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=cp437', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=utf-8-sig', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=""', 'GET'],
      [waf, '/x?q=hello', 'text/plain; charset=ISO_8859-15', 'GET'],
    ];
    for (const [s, target, type, method, body] of cases) {
      const r = await send(s, target, type, method, body);
      t.equal(r.status, 200, `${method} ${target} typed ${type}: passes`);
    }
    t.equal(backend.requests.length, before + cases.length, 'all reached the backend');
  });
});

t.test('form types other than application/x-www-form-urlencoded that backends read as forms: refused', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
  const waf = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block', budget: '2s' } } });
  // clamd is never reached: the refusal comes first.
  const scan = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: 'tcp://127.0.0.1:9', timeout: '300ms' } },
    routes: [{ id: 'upload', path: '/upload/*', methods: ['POST', 'PUT'], malware_scan: true }],
  });
  const h1 = new Map([validated, waf, scan].map((s) => [s, testAgent(s.ca)]));
  const h2 = testAgent(waf.ca, { h2: true });
  t.teardown(() => Promise.all([...h1.values(), h2].map((a) => a.close())));
  const send = (s: typeof waf, path: string, contentType: string, body: string, method = 'POST', agent = h1.get(s)) =>
    fetchText(`${s.url}${path}`, agent as ReturnType<typeof testAgent>, { method, headers: { 'content-type': contentType }, body });
  const rule = (s: typeof waf) => s.events.at(-1)?.['warden.rule'];
  const form = `q=${encodeURIComponent(SQLI)}`;

  const before = backend.requests.length;
  for (const type of [
    'application/x-url-encoded',
    'Application/X-URL-Encoded; charset=utf-8',
    'application/x-url-encoded,x',
    ' application/x-url-encoded ',
    // formidable 3 reads any Content-Type holding "urlencoded" as a form.
    'application/x-urlencoded',
    'application/urlencoded',
    'text/plain; x=urlencoded',
    'application/octet-stream; v=URLEncoded',
    'text/x-www-form-urlencoded',
  ]) {
    for (const [s, path, method] of [
      [waf, '/echo', 'POST'],
      [waf, '/echo', 'PUT'],
      [validated, '/raw', 'POST'],
      [scan, '/upload/a', 'PUT'],
    ] as const) {
      const r = await send(s, path, type, s === scan ? 'doc=%57ARDEN-TEST-MALWARE-PATTERN-7f3a' : form, method);
      t.equal(r.status, 415, `${method} ${path} typed ${JSON.stringify(type)}: refused`);
      t.equal(r.json().code, 'ERR_MEDIA_TYPE_UNSUPPORTED', `${type}: code`);
      t.equal(rule(s), 'content_type.form_alias', `${type}: rule`);
    }
  }
  const override = await send(waf, '/echo', 'application/x-url-encoded', '_method=DELETE');
  t.equal(override.status, 415, 'a _method field typed application/x-url-encoded');
  t.equal((await send(waf, '/echo', 'application/x-url-encoded', form, 'POST', h2)).status, 415, 'over h2 too');
  t.equal(backend.requests.length, before, 'the backend saw none');

  // The form type itself is read as one (the waf refuses the SQLi as a form), and plain forms pass.
  t.equal((await send(waf, '/echo', 'application/x-www-form-urlencoded', form, 'PUT')).status, 403, 'the SQLi as a form: waf');
  for (const type of ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8'])
    t.equal((await send(waf, '/echo', type, 'q=hello&n=1', 'PUT')).status, 200, `${type}: passes`);
  t.equal((await send(validated, '/raw', 'text/plain', 'encoded text')).status, 200, 'text/plain passes');
  // `url-encoded` in a parameter value: Werkzeug reads only the media type, formidable's regex is
  // `urlencoded`: neither reads these as forms (review1 F4).
  const part = '------url-encoded-part\r\ncontent-disposition: form-data; name="a"\r\n\r\nhello\r\n------url-encoded-part--\r\n';
  for (const [type, body] of [
    ['application/json; profile="https://schemas.example/url-encoded"', '{"a":1}'],
    ['image/png; name="my-url-encoded.png"', 'png'],
    ['multipart/form-data; boundary=----url-encoded-part', part],
  ] as const) {
    for (const [s, path] of [
      [waf, '/echo'],
      [scan, '/upload/a'],
    ] as const) {
      const r = await send(s, path, type, body, 'PUT');
      // The scan's clamd is down: any answer but the form alias's 415.
      if (s === scan) t.not(r.status, 415, `${path} typed ${JSON.stringify(type)}: not refused as a form alias (${r.status})`);
      else t.equal(r.status, 200, `${path} typed ${JSON.stringify(type)}: passes`);
    }
  }
});
