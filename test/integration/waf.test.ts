/**
 * The waf stage over real connections (undici h1 and h2, curl): attacks in each place a backend
 * reads (path, query names and values, headers, cookies, JSON, form and multipart bodies) are
 * refused before the backend sees them, with the attack class as the event and the parameter path
 * (never the value) in it; libddwaf's blind spots (strings over 4 096 characters, containers over
 * 256 entries, deep nesting) hide nothing; detect mode and exclusions let known traffic through.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { join } from 'node:path';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { startTestBackend } from '../support/backend.js';
import { curl, fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type CapturedEvent } from '../support/sidecar.js';

const SQLI = "' OR 1=1 --";
const XSS = '<script>alert(1)</script>';

t.test('waf, block mode', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    threats: {
      waf: {
        // The budget is wall-clock time: on a loaded machine a run past the default 20 ms turned a
        // finding into `waf.timeout` (403 all the same, another event); test/unit/threats tests timeouts.
        budget: '2s',
        max_entries: 2000,
        max_depth: 24,
        exclusions: [
          { route: 'query-builder', parameters: ['/body/sql', '/body/report/sql', '/query/sql'] },
          { route: 'comments', rules: ['xss-tags'] },
        ],
      },
    },
    routes: [
      { id: 'items', path: '/items/:id', methods: ['GET', 'POST', 'PUT'] },
      { id: 'search', path: '/search', methods: ['GET', 'POST'] },
      { id: 'upload', path: '/upload', methods: ['POST'] },
      { id: 'query-builder', path: '/reports', methods: ['POST'] },
      { id: 'comments', path: '/comments', methods: ['POST'] },
      { id: 'raw', path: '/raw', methods: ['POST'], waf: false },
    ],
  });
  const h1 = testAgent(s.ca);
  const h2 = testAgent(s.ca, { h2: true });
  t.teardown(() => Promise.all([h1.close(), h2.close()]));
  const get = (path: string, headers: Record<string, string> = {}, agent = h1) => fetchText(`${s.url}${path}`, agent, { headers });
  const post = (path: string, type: string, body: string | Buffer, agent = h1) =>
    fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': type }, body });
  const lastEvent = (): Partial<CapturedEvent> => s.events.at(-1) ?? {};
  /** A one-part multipart upload: the part's Content-Disposition (and any headers after it), then its content. */
  const upload = (disposition: string, content: string, agent = h1, type = 'multipart/form-data') =>
    post(
      '/upload',
      `${type}; boundary=waf-test`,
      `--waf-test\r\nContent-Disposition: ${disposition}\r\n\r\n${content}\r\n--waf-test--\r\n`,
      agent,
    );

  await t.test('attacks in each place are refused before the backend', async (t) => {
    const before = backend.requests.length;
    const cases: [string, () => ReturnType<typeof get>, string, string][] = [
      ['query value', () => get(`/search?q=${encodeURIComponent(SQLI)}`), 'warden.input.sqli', '/query/q/0'],
      [
        'full-width quote (SQL Server best-fit, NFKC)',
        () => get(`/search?q=${encodeURIComponent('1\uFF07 OR 1=1 --')}`),
        'warden.input.sqli',
        '/query/q/0',
      ],
      ['query value (h2)', () => get(`/search?q=${encodeURIComponent(XSS)}`, {}, h2), 'warden.input.xss', '/query/q/0'],
      ['query name (redacted in the event)', () => get(`/search?${encodeURIComponent(XSS)}=1`), 'warden.input.xss', '/query/*#name'],
      ['nosql operator in a query name', () => get('/search?user[$ne]=x'), 'warden.input.nosqli', '/query/user[$ne]#name'],
      ['path parameter', () => get(`/items/${encodeURIComponent("1' OR '1'='1")}`), 'warden.input.sqli', '/path'],
      ['header', () => get('/search', { 'user-agent': '() { :; }; /bin/bash -c "id"' }), 'warden.input.cmdi', '/header/user-agent'],
      ['cookie', () => get('/search', { cookie: `session=abc; pref=${SQLI}` }), 'warden.input.sqli', '/cookie/pref/0'],
      [
        'cookie, percent-encoded (PHP, Express and Rails decode it)',
        () => get('/search', { cookie: `session=abc; pref=${encodeURIComponent(SQLI)}` }),
        'warden.input.sqli',
        '/cookie/pref/1',
      ],
      [
        'cookie, quoted and percent-encoded (h2)',
        () => get('/search', { cookie: `pref="%3Cscript%3Ealert(1)%3C/script%3E"` }, h2),
        'warden.input.xss',
        '/cookie/pref/1',
      ],
      [
        'cookie, + for spaces (PHP decodes it so)',
        () => get('/search', { cookie: 'pref=1%27+UNION+SELECT+password+FROM+users--' }),
        'warden.input.sqli',
        '/cookie/pref/2',
      ],
      ['JSON value', () => post('/search', 'application/json', JSON.stringify({ a: { b: [1, XSS] } })), 'warden.input.xss', '/body/a/b/1'],
      [
        'JSON key',
        () => post('/search', 'application/json', JSON.stringify({ filter: { $where: 'x' } })),
        'warden.input.nosqli',
        '/body/filter/$where#name',
      ],
      [
        'JSON __proto__ key (a deep merge pollutes Object.prototype)',
        () => post('/search', 'application/json', '{"user":{"__proto__":{"isAdmin":true}}}'),
        'warden.input.prototype_pollution',
        '/body/user/__proto__#name',
      ],
      [
        'JSON constructor.prototype (h2)',
        () => post('/search', 'application/json', JSON.stringify({ constructor: { prototype: { isAdmin: true } } }), h2),
        'warden.input.prototype_pollution',
        '/body/constructor#name',
      ],
      [
        'qs-style query name into a prototype',
        () => get(`/search?${encodeURIComponent('a[__proto__][admin]')}=1`),
        'warden.input.prototype_pollution',
        '/query/a[__proto__][admin]#name',
      ],
      [
        'form __proto__ name',
        () => post('/search', 'application/x-www-form-urlencoded', '__proto__=x'),
        'warden.input.prototype_pollution',
        '/body/__proto__#name',
      ],
      [
        'path setter in a value (lodash set)',
        () => get('/search?path=__proto__.isAdmin'),
        'warden.input.prototype_pollution',
        '/query/path/0',
      ],
      [
        'XML, a quote as a character reference (h2)',
        () => post('/search', 'application/soap+xml', '<?xml version="1.0"?><r><q>1&#39; OR 1=1 --</q></r>', h2),
        'warden.input.sqli',
        '/body/r/q',
      ],
      [
        'XML, markup as entities',
        () => post('/search', 'text/xml', '<r><note>&lt;script&gt;alert(1)&lt;/script&gt;</note></r>'),
        'warden.input.xss',
        '/body/r/note',
      ],
      [
        'XML attribute',
        () => post('/search', 'application/xml', `<r><item sku="1' OR '1'='1"/></r>`),
        'warden.input.sqli',
        '/body/r/item/@sku',
      ],
      [
        'XML CDATA',
        () => post('/search', 'application/atom+xml', '<r><![CDATA[<script>alert(1)</script>]]></r>'),
        'warden.input.xss',
        '/body/r',
      ],
      [
        'JSON with single quotes, escapes decoded (Json.NET and JSON5 read them)',
        () => post('/search', 'application/json', "{'q': '\\u0027 OR 1=1 --'}"),
        'warden.input.sqli',
        '/body/1',
      ],
      [
        'JSON with a \\x escape and a comment (JSON5) (h2)',
        () => post('/search', 'application/json', '{/* note */ "q": "\\x3cscript\\x3ealert(1)\\x3c/script\\x3e"}', h2),
        'warden.input.xss',
        '/body/1',
      ],
      [
        'JSON sent as a form, escapes decoded (a Go handler decodes the body whatever its type)',
        () => post('/search', 'application/x-www-form-urlencoded', '{"q":"\\u0027 OR 1=1 --"}'),
        'warden.input.sqli',
        '/body/q',
      ],
      [
        'JSON sent as text/plain, escapes decoded (h2)',
        () => post('/search', 'text/plain', ' [{"q":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}]', h2),
        'warden.input.xss',
        '/body/0/q',
      ],
      [
        'JSON escapes decoded',
        () => post('/search', 'application/json', '{"q":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}'),
        'warden.input.xss',
        '/body/q',
      ],
      [
        'JSON sent as text/json, escapes decoded (ASP.NET Core and Laravel read it as JSON)',
        () => post('/search', 'text/json', '{"q":"\\u0027 OR 1=1 --"}'),
        'warden.input.sqli',
        '/body/q',
      ],
      [
        'JSON with a BOM (Express drops it), escapes decoded',
        () => post('/search', 'application/json', '\ufeff{"q":"\\u0027 OR 1=1 --"}'),
        'warden.input.sqli',
        '/body/1',
      ],
      [
        'JSON naming a member twice (parsers differ on which counts), escapes decoded',
        () => post('/search', 'application/json', '{"q":"\\u0027 OR 1=1 --","q":"fine"}'),
        'warden.input.sqli',
        '/body/1',
      ],
      [
        'form without a Content-Type (Rack reads a POST body as a form)',
        () => fetchText(`${s.url}/search`, h1, { method: 'POST', body: `q=${encodeURIComponent(SQLI)}` }),
        'warden.input.sqli',
        '/body/q/0',
      ],
      [
        'JSON without a Content-Type, escapes decoded (decoders that ignore the type)',
        () => fetchText(`${s.url}/search`, h2, { method: 'POST', body: '{"q":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}' }),
        'warden.input.xss',
        // Read as a form first (one name), whose escapes are undone too, before its JSON reading.
        '/body/*#name',
      ],
      [
        'form value',
        () =>
          post(
            '/search',
            'application/x-www-form-urlencoded',
            `name=x&url=${encodeURIComponent('http://169.254.169.254/latest/meta-data/')}`,
          ),
        'warden.input.ssrf',
        '/body/url/0',
      ],
      ['multipart text field (h2)', () => upload('form-data; name="title"', SQLI, h2), 'warden.input.sqli', '/body/title/0'],
      [
        'multipart JSON part (Spring binds one), escapes decoded',
        () => upload('form-data; name="meta"\r\nContent-Type: application/json', '{"q":"\\u0027 OR 1=1 --"}'),
        'warden.input.sqli',
        // The part as sent, its escapes undone (its literals, unescaped, are /body/meta/1 and 2).
        '/body/meta/0',
      ],
      [
        'multipart octet-stream part without a file name (busboy: a file; PHP and Spring: a text field)',
        () => upload('form-data; name="q"\r\nContent-Type: application/octet-stream', SQLI, h2),
        'warden.input.sqli',
        '/body/q/0',
      ],
      [
        'multipart/mixed form-data part (Spring and Tomcat read it as a form)',
        () => upload('form-data; name="q"', SQLI, h1, 'multipart/mixed'),
        'warden.input.sqli',
        '/body/q/0',
      ],
      [
        'multipart file name',
        () => upload('form-data; name="f"; filename="../../../etc/passwd"\r\nContent-Type: text/plain', 'data'),
        'warden.input.traversal',
        '/files/f/0',
      ],
      [
        'multipart field name in full-width forms (read as UTF-8, then NFKC)',
        () => upload('form-data; name="\uFF1Cscript\uFF1Ealert(1)\uFF1C/script\uFF1E"', 'x'),
        'warden.input.xss',
        '/body/*#name',
      ],
      [
        'multipart file name with a full-width quote (read as UTF-8, then NFKC)',
        () => upload('form-data; name="f"; filename="1\uFF07 OR 1=1 --"\r\nContent-Type: text/plain', 'data', h2),
        'warden.input.sqli',
        '/files/f/0',
      ],
      [
        'cookie with an empty name (read as a value)',
        () => get('/search', { cookie: `=${XSS}; session=abc` }),
        'warden.input.xss',
        '/cookie/*/0',
      ],
      ['cookie without = (read as a name)', () => get('/search', { cookie: `session=abc; ${XSS}` }), 'warden.input.xss', '/cookie/*#name'],
      ['a bare win.ini (looks like an identifier)', () => get('/search?file=win.ini'), 'warden.input.traversal', '/query/file/0'],
      ['null-- (looks like an identifier)', () => get('/search?q=null--'), 'warden.input.sqli', '/query/q/0'],
    ];
    for (const [where, send, event, path] of cases) {
      const res = await send();
      t.equal(res.status, 403, `${where}: 403`);
      t.equal(res.json().code, 'ERR_WAF_BLOCKED', `${where}: ERR_WAF_BLOCKED`);
      t.equal(lastEvent().name, event, `${where}: ${event}`);
      t.equal(lastEvent()['warden.detail'], path, `${where}: the event names the parameter ${path}`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const serialized = JSON.stringify(s.events) + JSON.stringify(s.logs);
    t.notOk(serialized.includes('alert(1)') || serialized.includes('1=1'), 'no event or log carries an attack value');
  });

  await t.test('raw UTF-8 in headers and cookies is read as UTF-8 too, on HTTP/1.1 and h2 (node hands it over as Latin-1)', async (t) => {
    // The bytes of UTF-8 text as node's clients send a Latin-1 string: one byte per character.
    const raw = (text: string) => Buffer.from(text, 'utf8').toString('latin1');
    const before = backend.requests.length;
    for (const [name, agent] of [
      ['h1', h1],
      ['h2', h2],
    ] as const) {
      const cases: [string, Record<string, string>, string, string][] = [
        ['User-Agent with a full-width quote', { 'user-agent': raw('1\uFF07 OR 1=1 --') }, 'warden.input.sqli', '/header/user-agent'],
        [
          'Referer with full-width angle brackets',
          { referer: raw('\uFF1Cscript\uFF1Ealert(1)\uFF1C/script\uFF1E') },
          'warden.input.xss',
          '/header/referer',
        ],
        [
          'cookie value with a full-width quote',
          { cookie: `session=abc; q=${raw('1\uFF07 OR 1=1 --')}` },
          'warden.input.sqli',
          '/cookie/q/1',
        ],
        // A stray byte that is not UTF-8 does not stop the reading: a lenient decoder reads the rest.
        [
          'User-Agent with a stray 0xFF byte',
          { 'user-agent': '\xff' + raw('1\uFF07 OR 1=1 --') },
          'warden.input.sqli',
          '/header/user-agent',
        ],
      ];
      for (const [where, headers, event, path] of cases) {
        const res = await get('/search', headers, agent);
        t.equal(res.status, 403, `${name} ${where}: 403`);
        t.match(lastEvent(), { name: event, 'warden.detail': path }, `${name} ${where}: ${event} at ${path}`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const benign = await get('/search', { 'user-agent': raw('クライアント/1.0 (日本語)'), cookie: `name=${raw('José Müller')}` }, h2);
    t.equal(benign.status, 200, 'UTF-8 text without an attack passes');
  });

  await t.test('an h2 :path holding bytes outside printable ASCII is refused, as HTTP/1.1 refuses them', async (t) => {
    // (nghttp2 itself resets a stream whose :path holds a space, a control character or DEL.)
    const session = http2.connect(s.url, { ca: s.ca });
    t.teardown(() => session.close());
    const status = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        // node:http2 sends a Latin-1 string's characters as bytes: here, the raw UTF-8 of the text.
        const req = session.request({ ':path': Buffer.from(path, 'utf8').toString('latin1') });
        let body = '';
        let code = 0;
        req.once('response', (h) => (code = Number(h[':status'])));
        req.setEncoding('utf8');
        req.on('data', (d: string) => (body += d));
        req.once('end', () => resolve({ status: code, body }));
        req.once('error', reject);
        req.end();
      });
    const before = backend.requests.length;
    for (const path of [
      '/search?q=1\uFF07%20OR%201=1%20--',
      '/search?q=\uFF1Cscript\uFF1Ealert(1)\uFF1C/script\uFF1E',
      '/\uFF1Cscript\uFF1Ealert(1)\uFF1C/script\uFF1E',
      '/search?q=caf\u00e9',
    ]) {
      const res = await status(path);
      t.equal(res.status, 400, `${JSON.stringify(path)}: 400`);
      // The sidecar's refusal: the test backend's own parser answers such a target with a bare 400.
      const problem = (res.body.startsWith('{') ? JSON.parse(res.body) : {}) as { code?: string };
      t.equal(problem.code, 'ERR_PATH_INVALID', `${JSON.stringify(path)}: the sidecar's ERR_PATH_INVALID`);
      t.match(
        lastEvent(),
        { name: 'warden.http.path_invalid', 'warden.rule': 'path.characters' },
        `${JSON.stringify(path)}: path.characters`,
      );
    }
    t.equal(backend.requests.length, before, 'the backend answered none of them');
    t.equal((await status('/search?q=caf%C3%A9')).status, 200, 'the same text percent-encoded passes');
  });

  await t.test('%uXXXX escapes (System.Web and classic ASP decode them) are read decoded in the query, forms and cookies', async (t) => {
    const SQLI_U = '1%u0027%20OR%201=1%20--';
    const XSS_U = '%u003cscript%u003ealert(1)%u003c/script%u003e';
    const before = backend.requests.length;
    const cases: [string, () => ReturnType<typeof get>, string, string][] = [
      ['query value, %u0027', () => get(`/search?q=${SQLI_U}`), 'warden.input.sqli', '/query/q/1'],
      ['query value, %u003c (h2)', () => get(`/search?x=1&q=${XSS_U}`, {}, h2), 'warden.input.xss', '/query/q/1'],
      [
        'query value, upper-case %U and a full-width %uFF07',
        () => get('/search?q=1%UFF07%20OR%201=1%20--'),
        'warden.input.sqli',
        '/query/q/1',
      ],
      ['query name', () => get(`/search?${XSS_U}=1`), 'warden.input.xss', '/query/*#name'],
      ['form body', () => post('/search', 'application/x-www-form-urlencoded', `q=${SQLI_U}`), 'warden.input.sqli', '/body/q/1'],
      ['cookie', () => get('/search', { cookie: `q=${XSS_U}` }), 'warden.input.xss', '/cookie/q/1'],
    ];
    for (const [where, send, event, path] of cases) {
      const res = await send();
      t.equal(res.status, 403, `${where}: 403`);
      t.match(lastEvent(), { name: event, 'warden.detail': path }, `${where}: ${event} at ${path}`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const benign = await get('/search?q=caf%u00e9%20au%20lait&n=%u004f%u004b');
    t.equal(benign.status, 200, '%uXXXX text without an attack passes');
    t.equal(backend.requests.at(-1)?.url, '/search?q=caf%u00e9%20au%20lait&n=%u004f%u004b', 'and is forwarded as sent');
  });

  await t.test('a multipart part in base64 (a decoding backend would read what the waf cannot) is refused', async (t) => {
    const before = backend.requests.length;
    const r = await upload('form-data; name="title"\r\nContent-Transfer-Encoding: base64', Buffer.from(SQLI).toString('base64'));
    t.equal(r.status, 400, 'refused as a body the waf cannot read');
    t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /base64 transfer encoding/ });
    t.equal(backend.requests.length, before, 'not forwarded');
  });

  await t.test('bodies in a charset the waf would misread are refused; ASCII-compatible ones are inspected', async (t) => {
    // EBCDIC (ibm037), which ASP.NET decodes form bodies from: q=' OR 1=1 --
    const ebcdic = Buffer.from([0x98, 0x7e, 0x7d, 0x40, 0xd6, 0xd9, 0x40, 0xf1, 0x7e, 0xf1, 0x40, 0x60, 0x60]);
    const before = backend.requests.length;
    // JSON and form bodies are refused by their Content-Type before the waf reads them (the
    // `_method` check, the first body stage, refuses them: rule content_type.charset).
    for (const [what, type, body, rule] of [
      ['EBCDIC form', 'application/x-www-form-urlencoded; charset=ibm037', ebcdic, 'content_type.charset'],
      [
        'UTF-16 JSON with an escaped quote',
        'application/json; charset=utf-16le',
        Buffer.from('{"q":"\\u0027 OR 1=1 --"}', 'utf16le'),
        'content_type.charset',
      ],
      ['UTF-7 text', 'text/plain; charset=utf-7', Buffer.from('+ADw-script+AD4-alert(1)+ADw-/script+AD4-'), 'waf.charset'],
      [
        // The charset after another parameter's quoted `charset=` (defect 96): body-parser reads UTF-16.
        'UTF-16 JSON behind a quoted "; charset=utf-8"',
        'application/json; x="; charset=utf-8"; charset=utf-16le',
        Buffer.from('{"q":"\\u0027 OR 1=1 --"}', 'utf16le'),
        'content_type.charset',
      ],
    ] as const) {
      const r = await post('/search', type, body, h2);
      t.equal(r.status, 415, `${what}: 415`);
      t.equal(r.json().code, 'ERR_MEDIA_TYPE_UNSUPPORTED', what);
      t.equal(lastEvent()['warden.rule'], rule, `${what}: rule ${rule}`);
    }
    // A PUT has no _method check: the waf refuses the Content-Type itself, with the same rule.
    const put = await fetchText(`${s.url}/items/1`, h1, {
      method: 'PUT',
      headers: { 'content-type': 'application/json; charset=utf-7' },
      body: '{"q":"+ACc- OR 1=1 --"}',
    });
    t.equal(put.status, 415, 'UTF-7 JSON in a PUT: 415');
    t.equal(lastEvent()['warden.rule'], 'content_type.charset', 'UTF-7 JSON in a PUT: rule content_type.charset');
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    for (const [what, body] of [
      // Parsers take an XML body's encoding from its byte order mark or its declaration.
      ['UTF-16 XML by its byte order mark', Buffer.from(`\ufeff<r><q>1' OR 1=1 --</q></r>`, 'utf16le')],
      ['XML declaring UTF-16', Buffer.from(`<?xml version="1.0" encoding="UTF-16"?><r>x</r>`)],
    ] as const) {
      const r = await post('/search', 'application/xml', body);
      t.equal(r.status, 415, `${what}: 415`);
      t.equal(lastEvent()['warden.rule'], 'waf.charset', `${what}: rule waf.charset`);
    }
    const xml = await post(
      '/search',
      'application/xml',
      `<?xml version="1.0" encoding="UTF-8"?><order><note>O'Brien &amp; Sons</note></order>`,
    );
    t.equal(xml.status, 200, 'a UTF-8 XML body without entities passes');
    const japanese = await post(
      '/search',
      'application/json',
      JSON.stringify({ note: 'ご注文ありがとうございます。２０２６年１２月、ＡＢＣ株式会社' }),
    );
    t.equal(japanese.status, 200, 'Japanese text with full-width letters and digits passes');
    const latin1 = await post('/search', 'application/x-www-form-urlencoded; charset=iso-8859-1', `q=${encodeURIComponent(SQLI)}`);
    t.equal(latin1.status, 403, 'an ASCII-compatible charset is read, and the attack in it refused');
    const utf8 = await post('/search', 'application/json; charset=UTF-8', JSON.stringify({ note: "O'Brien" }));
    t.equal(utf8.status, 200, 'UTF-8 JSON passes');
  });

  await t.test('multipart parts and parameters that name a charset the waf cannot read are refused', async (t) => {
    const b = 'waf-charset';
    const part = (headers: string, value: string | Buffer) =>
      Buffer.concat([Buffer.from(`--${b}\r\nContent-Disposition: form-data; ${headers}\r\n\r\n`), Buffer.from(value), Buffer.from('\r\n')]);
    const multipart = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from(`--${b}--\r\n`)]);
    const ebcdic = Buffer.from([0x7d, 0x40, 0xd6, 0xd9, 0x40, 0xf1, 0x7e, 0xf1, 0x40, 0x60, 0x60]); // ' OR 1=1 --
    const before = backend.requests.length;
    const multipartCases = [
      // Shift_JIS keeps ASCII: the backend reads the attack as it is, busboy gave the waf nothing.
      [
        'a Shift_JIS part',
        `multipart/form-data; boundary=${b}`,
        multipart(part('name="q"\r\nContent-Type: text/plain; charset=shift_jis', SQLI)),
      ],
      [
        'an EBCDIC part',
        `multipart/form-data; boundary=${b}`,
        multipart(part('name="q"\r\nContent-Type: text/plain; charset=ibm037', ebcdic)),
      ],
      // Jetty reads parts without a charset of their own in the body's, or in the _charset_ field's.
      ['the body in EBCDIC', `multipart/form-data; boundary=${b}; charset=ibm037`, multipart(part('name="q"', ebcdic))],
      [
        'a _charset_ field naming EBCDIC',
        `multipart/form-data; boundary=${b}`,
        multipart(part('name="_charset_"', 'IBM037'), part('name="q"', ebcdic)),
      ],
    ] as const;
    for (const [what, type, body] of multipartCases) {
      const r = await post('/upload', type, body, h2);
      t.equal(r.status, 400, `${what}: 400`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /charset.*cannot be inspected/ }, `${what}: named`);
      t.match(
        lastEvent()['warden.rule'],
        /^(?:overrides|waf)\.multipart$/,
        `${what}: refused by a multipart reader (the _method check reads a POST's first)`,
      );
    }
    // Apache Sling decodes every parameter in the charset a _charset_ parameter names.
    const parameterCases = [
      ['query', () => get(`/search?_charset_=ibm037&q=${encodeURIComponent(ebcdic.toString('latin1'))}`)],
      [
        'form',
        () => post('/search', 'application/x-www-form-urlencoded', `_charset_=utf-16le&q=${encodeURIComponent(ebcdic.toString('latin1'))}`),
      ],
      ['untyped body (h2)', () => post('/search', '', `_charset_=ibm037&q=x`, h2)],
    ] as const;
    for (const [what, send] of parameterCases) {
      const r = await send();
      t.equal(r.status, 400, `_charset_ in the ${what}: 400`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /_charset_ parameter names/ }, `_charset_ in the ${what}: named`);
      t.equal(lastEvent()['warden.rule'], 'waf.charset_parameter', `_charset_ in the ${what}: rule waf.charset_parameter`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    // Controls: charsets the waf reads are inspected as usual.
    const utf8Part = await post(
      '/upload',
      `multipart/form-data; boundary=${b}`,
      multipart(part('name="_charset_"', 'UTF-8'), part('name="q"\r\nContent-Type: text/plain; charset=utf-8', 'plain words')),
    );
    t.equal(utf8Part.status, 200, 'a UTF-8 part and _charset_=UTF-8 pass');
    const latin1Attack = await post(
      '/upload',
      `multipart/form-data; boundary=${b}`,
      multipart(part('name="q"\r\nContent-Type: text/plain; charset=iso-8859-1', SQLI)),
    );
    t.equal(latin1Attack.status, 403, 'a Latin-1 part is read, and the attack in it refused');
    const query = await get('/search?_charset_=UTF-8&q=shoes');
    t.equal(query.status, 200, '_charset_=UTF-8 in the query passes');
  });

  await t.test('a multipart/mixed batch of non-form parts passes (every form reader skips them)', async (t) => {
    const b = 'batch_1';
    const body = `--${b}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nGET /orders(1) HTTP/1.1\r\n\r\n\r\n--${b}--\r\n`;
    t.equal((await post('/upload', `multipart/mixed; boundary=${b}`, body)).status, 200);
  });

  await t.test('multipart framing that a lenient backend parser reads differently is refused', async (t) => {
    const b = 'waf-framing';
    const attack = `Content-Disposition: form-data; name="q"\r\n\r\n${SQLI}\r\n`;
    const cases: [string, string][] = [
      // Go's mime/multipart reads the part after a padded boundary line; busboy drops it unseen.
      [
        'transport padding hides a part',
        `--${b}\r\nContent-Disposition: form-data; name="a"\r\n\r\nfine\r\n--${b} \r\n${attack}--${b}--\r\n`,
      ],
      [
        'a disposition other than form-data (PHP reads its name)',
        `--${b}\r\nContent-Disposition: attachment; name="q"\r\n\r\n${SQLI}\r\n--${b}--\r\n`,
      ],
      [
        'filename* beside filename (busboy reads one, PHP the other)',
        `--${b}\r\nContent-Disposition: form-data; name="f"; filename="../../etc/passwd"; filename*=utf-8''safe.txt\r\n\r\nx\r\n--${b}--\r\n`,
      ],
      [
        'a nested multipart/mixed part (commons-fileupload reads its sub-parts as files)',
        `--${b}\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n` +
          `--inner\r\nContent-Disposition: file; filename="a.txt"\r\n\r\nhello\r\n--inner--\r\n\r\n--${b}--\r\n`,
      ],
      [
        'the name twice (busboy reads the first)',
        `--${b}\r\nContent-Disposition: form-data; name="note"; name="q"\r\n\r\n${SQLI}\r\n--${b}--\r\n`,
      ],
    ];
    const before = backend.requests.length;
    for (const [what, body] of cases) {
      for (const agent of [h1, h2]) {
        const r = await post('/upload', `multipart/form-data; boundary=${b}`, body, agent);
        t.equal(r.status, 400, `${what}: 400`);
        t.equal(r.json().code, 'ERR_REQUEST_INVALID', `${what}: ERR_REQUEST_INVALID`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    // PHP ends a part at `\n--boundary` whatever follows (busboy reads on): not content either.
    const bareLf = `--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nline one\n--${b}x after a bare line feed\r\n--${b}--\r\n`;
    t.match(
      (await post('/upload', `multipart/form-data; boundary=${b}`, bareLf)).json(),
      { code: 'ERR_REQUEST_INVALID', detail: /after a bare line feed/ },
      'the boundary after a bare line feed, inside content, is refused',
    );
    const plain = `--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nline one\n-- ${b} is not the boundary\r\n--${b}--\r\n`;
    t.equal((await post('/upload', `multipart/form-data; boundary=${b}`, plain)).status, 200, 'dashes and the boundary apart pass');
  });

  await t.test('an attack in a part whose Content-Disposition busboy cannot parse: refused, not skipped', async (t) => {
    // busboy skipped such a part unseen, PHP 8.2 read it: 200 where the well-formed part gets 403.
    const b = 'waf-disposition';
    const body = (disposition: string, value: string) =>
      `--${b}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--${b}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--${b}--\r\n`;
    const put = (value: string, agent: typeof h1) =>
      fetchText(`${s.url}/items/1`, agent, {
        method: 'PUT',
        headers: { 'content-type': `multipart/form-data; boundary=${b}` },
        body: value,
      });
    const before = backend.requests.length;
    for (const [disposition, attack] of [
      ['form-data; name="q";', SQLI],
      ['form-data; name=q[]', XSS],
      ['form-data; name= "q"', SQLI],
      ['form-data; name="f"; filename=a/x.txt', XSS],
    ] as const) {
      for (const agent of [h1, h2]) {
        // A POST's multipart body is read first by the _method check, and so is a PUT's where the waf
        // holds bodies (row 483): the same reader's refusal, under either rule.
        const posted = await post('/upload', `multipart/form-data; boundary=${b}`, body(disposition, attack), agent);
        t.equal(posted.status, 400, `POST ${disposition}: 400`);
        t.match(posted.json(), { code: 'ERR_REQUEST_INVALID', detail: /Content-Disposition the parser cannot read/ });
        const putted = await put(body(disposition, attack), agent);
        t.equal(putted.status, 400, `PUT ${disposition}: 400`);
        t.match(lastEvent()['warden.rule'], /^(?:waf|overrides)\.multipart$/, `PUT ${disposition}: refused by a multipart reader`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await put(body('form-data; name="q"', SQLI), h1)).status, 403, 'the well-formed part: the attack refused');
    t.equal((await put(body('form-data; name=q', 'shoes'), h1)).status, 200, 'an unquoted name busboy reads passes');
  });

  await t.test('XML: document type declarations that fetch or expand entities, and documents a strict parser refuses', async (t) => {
    const before = backend.requests.length;
    for (const [what, body] of [
      ['external entity (XXE)', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'],
      ['entity expansion (billion laughs)', '<!DOCTYPE r [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>'],
      ['external DTD', '<!DOCTYPE r SYSTEM "https://attacker.example/evil.dtd"><r/>'],
      ['parameter entity', '<!DOCTYPE r [<!ENTITY % p SYSTEM "https://attacker.example/p.dtd"> %p;]><r/>'],
    ] as const) {
      const r = await post('/search', 'application/xml', body, h2);
      t.equal(r.status, 403, `${what}: 403`);
      t.equal(lastEvent().name, 'warden.input.xxe', `${what}: warden.input.xxe`);
      t.equal(lastEvent()['warden.rule'], 'waf.xml_doctype', `${what}: rule waf.xml_doctype`);
    }
    const deep = await post('/search', 'application/xml', '<a>'.repeat(30_000) + 'x' + '</a>'.repeat(30_000));
    t.equal(deep.status, 403, 'XML nested past max_depth: 403');
    t.equal(lastEvent()['warden.rule'], 'waf.limits.depth', 'rule waf.limits.depth');
    const malformed = await post('/search', 'application/xml', '<r><q>unclosed</r>');
    t.equal(malformed.status, 400, 'malformed XML: 400');
    t.match(malformed.json(), { code: 'ERR_REQUEST_INVALID', detail: /XML body could not be read/ });
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const plain = await post(
      '/search',
      'application/xml',
      '<!DOCTYPE order><order id="7"><note>O&apos;Brien &amp; Sons, 2 &lt; 3</note></order>',
    );
    t.equal(plain.status, 200, 'a DOCTYPE naming only the root, attributes and entities for punctuation pass');
  });

  await t.test(
    'XML: text split by comments, CDATA sections, instructions or elements is read joined, as parsers hand it over',
    async (t) => {
      const before = backend.requests.length;
      const sqli = "1' UNI<!---->ON SEL<!---->ECT password FROM users--";
      for (const [what, type, body, event, path] of [
        ['comments split SQLi', 'application/xml', `<order><id>${sqli}</id></order>`, 'sqli', '/body/order/id'],
        [
          'comments split references (XSS)',
          'application/xml',
          '<order><note>&lt;scr<!---->ipt&gt;alert(document.cookie)&lt;/scr<!---->ipt&gt;</note></order>',
          'xss',
          '/body/order/note',
        ],
        [
          'a CDATA section splits SQLi',
          'text/xml',
          "<order><id>1' UNI<![CDATA[ON SEL]]>ECT password FROM users--</id></order>",
          'sqli',
          '/body/order/id',
        ],
        [
          'CDATA sections split XSS',
          'application/soap+xml',
          '<order><note><![CDATA[<scr]]><![CDATA[ipt>alert(document.cookie)</scr]]><![CDATA[ipt>]]></note></order>',
          'xss',
          '/body/order/note',
        ],
        [
          'instructions split SQLi',
          'application/xml',
          "<order><id>1' UNI<?x?>ON SEL<?x?>ECT password FROM users--</id></order>",
          'sqli',
          '/body/order/id',
        ],
        [
          'empty elements split SQLi',
          'text/xml',
          "<order><id>1' UNI<b/>ON SEL<b/>ECT password FROM users--</id></order>",
          'sqli',
          '/body/order/id',
        ],
        [
          'child elements split SQLi (textContent, itertext)',
          'application/xml',
          "<order><id>1' UNI<b>ON</b> SEL<b>ECT</b> password FROM users--</id></order>",
          'sqli',
          '/body/order/id#text',
        ],
        [
          'sibling elements split XSS',
          'application/atom+xml',
          '<r><a>&lt;scr</a><b>ipt&gt;alert(document.cookie)&lt;/scr</b><c>ipt&gt;</c></r>',
          'xss',
          '/body/r#text',
        ],
      ] as const) {
        const r = await post('/search', type, body, what.includes('CDATA') ? h2 : h1);
        t.equal(r.status, 403, `${what}: 403`);
        t.match(lastEvent(), { name: `warden.input.${event}`, 'warden.detail': path }, `${what}: ${event} at ${path}`);
      }
      // Nested text read again at each of 24 levels that joins it: past the bound, refused, not skipped.
      const layered = '<a>x'.repeat(23) + 'lorem ipsum '.repeat(10_000) + '</a>'.repeat(23);
      t.equal((await post('/search', 'application/xml', layered)).status, 403, 'too much nested text: 403');
      t.equal(lastEvent()['warden.rule'], 'waf.limits.text', 'rule waf.limits.text');
      t.equal(backend.requests.length, before, 'the backend saw none of them');

      const benign = [
        '<?xml version="1.0"?>\n<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope">\n  <soap:Body>\n    <order id="7">',
        "      <note>O'Brien <!-- the customer --> &amp; Sons: <b>2</b> &lt; 3, <![CDATA[select one]]> from the list</note>",
        '      <item><sku>A-1</sku><qty>2</qty></item>\n      <item><sku>B-2</sku><qty>1</qty></item>',
        '    </order>\n  </soap:Body>\n</soap:Envelope>',
      ].join('\n');
      t.equal(
        (await post('/search', 'application/soap+xml', benign)).status,
        200,
        'benign XML with comments, CDATA and mixed content passes',
      );
      t.equal(
        (await post('/reports', 'application/xml', "<report><sql>SELECT 1' OR 1=1 --</sql><title>Monthly</title></report>")).status,
        200,
        'an excluded element’s text is left out of the text of the elements around it',
      );
    },
  );

  await t.test('an XML multipart part is read as XML (Spring binds one with its XML converter), as an XML body is', async (t) => {
    const before = backend.requests.length;
    const order =
      '<order><q>1&#39; &#85;NION &#83;ELECT password FROM users--</q><note>&#60;script&#62;alert(document.cookie)&#60;/script&#62;</note></order>';
    const part = (type: string, content: string, agent = h1) => upload(`form-data; name="order"\r\nContent-Type: ${type}`, content, agent);
    for (const [what, type, content, status, event] of [
      ['character references', 'application/xml', order, 403, { name: 'warden.input.sqli', 'warden.detail': '/body/order/1' }],
      ['character references (text/xml, h2)', 'text/xml', order, 403, { name: 'warden.input.sqli' }],
      [
        'comments split',
        'application/soap+xml',
        "<order><id>1' UNI<!---->ON SEL<!---->ECT password FROM users--</id></order>",
        403,
        { name: 'warden.input.sqli' },
      ],
      [
        'entity declarations (XXE)',
        'application/xml',
        '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        403,
        { name: 'warden.input.xxe', 'warden.rule': 'waf.xml_doctype' },
      ],
      ['not well-formed', 'application/xml', '<r><q>unclosed</r>', 400, { 'warden.rule': 'waf.xml' }],
      ['declaring UTF-16', 'application/xml', '<?xml version="1.0" encoding="UTF-16"?><r>x</r>', 415, { 'warden.rule': 'waf.charset' }],
    ] as const) {
      const r = await part(type, content, what.includes('h2') ? h2 : h1);
      t.equal(r.status, status, `${what}: ${status}`);
      t.match(lastEvent(), event, `${what}: ${JSON.stringify(event)}`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const benign = '<order id="7"><note>O\'Brien &amp; Sons, 2 &lt; 3 <!-- x --></note><qty>2</qty></order>';
    t.equal((await part('application/xml', benign)).status, 200, 'a benign XML part passes');
    t.equal((await part('application/xml', '')).status, 200, 'an empty XML part passes, as an empty XML body does');
  });

  await t.test('a JSON or XML part with a file name (a browser FormData Blob: filename="blob") is read as Spring binds it', async (t) => {
    const before = backend.requests.length;
    const withFile = (type: string, content: string, agent = h1) =>
      upload(`form-data; name="meta"; filename="blob"\r\nContent-Type: ${type}`, content, agent);
    t.equal((await withFile('application/json', JSON.stringify({ q: SQLI }))).status, 403, 'JSON: refused');
    t.equal(
      (await withFile('application/json', JSON.stringify({ q: SQLI }).replaceAll("'", '\\u0027'), h2)).status,
      403,
      'escaped JSON (h2): refused',
    );
    t.equal((await withFile('application/xml', '<r><q>1&#39; UNION SELECT password FROM users--</q></r>')).status, 403, 'XML: refused');
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await withFile('application/json', JSON.stringify({ title: "O'Brien & Sons" }))).status, 200, 'a benign one passes');
    // An uploaded XML file is no XML body: a DOCTYPE (SVG 1.1's), a Latin-1 declaration or a cut
    // document is read as its text, not refused.
    const svg =
      '<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd"><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>';
    t.equal((await withFile('image/svg+xml', svg)).status, 200, 'an SVG with its DOCTYPE passes');
    t.equal((await withFile('application/xml', svg)).status, 200, 'so does the same as application/xml');
    t.equal(
      (await withFile('text/xml', '<?xml version="1.0" encoding="ISO-8859-1"?><r>caf\u00e9</r>')).status,
      200,
      'a Latin-1 XML file passes',
    );
    t.equal((await withFile('application/xml', '<r><q>unclosed')).status, 200, 'a cut XML file passes');
    t.equal(
      (await upload('form-data; name="doc"; filename="a.bin"\r\nContent-Type: application/octet-stream', SQLI)).status,
      200,
      "a file's own content is not the waf's (the scan's, where one runs)",
    );
  });

  await t.test('a Content-Encoding is undone for the waf (Express inflates gzip bodies); the backend gets the body it read', async (t) => {
    const encoded = (coding: string, type: string, body: Buffer, agent = h1) =>
      fetchText(`${s.url}/search`, agent, { method: 'POST', headers: { 'content-type': type, 'content-encoding': coding }, body });
    const before = backend.requests.length;
    const attacks = [
      ['gzip JSON', 'gzip', 'application/json', gzipSync(JSON.stringify({ q: XSS }))],
      ['deflate form (h2)', 'deflate', 'application/x-www-form-urlencoded', deflateSync(`q=${encodeURIComponent(SQLI)}`)],
      ['br JSON', 'br', 'application/json', brotliCompressSync(JSON.stringify({ q: SQLI }))],
      ['gzip over deflate', 'deflate, gzip', 'application/json', gzipSync(deflateSync(JSON.stringify({ q: XSS })))],
    ] as const;
    for (const [what, coding, type, body] of attacks) {
      const r = await encoded(coding, type, body, what.includes('h2') ? h2 : h1);
      t.equal(r.status, 403, `${what}: the attack inside is refused`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');

    const plain = JSON.stringify({ note: "O'Brien & Sons" });
    const ok = await encoded('gzip', 'application/json', gzipSync(plain));
    t.equal(ok.status, 200, 'a benign gzipped body passes');
    const seen = backend.requests.at(-1);
    // Decoded, as the waf read it: a backend that does not decode requests reads the same bytes.
    t.equal(seen?.sha256, createHash('sha256').update(plain).digest('hex'), 'forwarded decoded');
    t.equal(seen?.headers['content-encoding'], undefined, 'without its Content-Encoding');
    t.equal(seen?.headers['content-length'], String(plain.length), 'with its own length');

    const unknown = await encoded('zstd', 'application/json', Buffer.from('x'));
    t.equal(unknown.status, 415, 'a coding the sidecar cannot undo: 415');
    t.equal(unknown.headers['accept-encoding'], 'gzip, deflate, br', 'naming the ones it can (RFC 7694)');
    const corrupt = await encoded('gzip', 'application/json', Buffer.from('not gzip at all'));
    t.equal(corrupt.status, 400, 'a body that is not what its coding says: 400');
    t.equal(corrupt.json().code, 'ERR_REQUEST_MALFORMED');
    // 64 MiB of spaces gzipped to ~64 KB: decoded never past 100 times that (max_decoded_ratio), nor max_body_bytes.
    const bomb = await encoded('gzip', 'application/json', gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)));
    t.equal(bomb.status, 413, 'a gzip bomb is refused: 413');
    t.equal(backend.requests.length, before + 1, 'only the benign one reached the backend');
  });

  await t.test('curl: an attack in a form body refused, a benign one passes', async (t) => {
    const caFile = join(mkdtempSync(join(tmpdir(), 'warden-waf-')), 'ca.pem');
    writeFileSync(caFile, s.ca);
    const base = ['--cacert', caFile, `${s.url}/search`, '--data-urlencode'];
    const bad = await curl([...base, 'q=1; cat /etc/passwd']);
    t.equal(bad.status, 403, bad.stderr);
    const good = await curl([...base, "q=Dinner at O'Brien's -- it's on me"]);
    t.equal(good.status, 200, good.stderr);
  });

  await t.test('benign input with quotes, SQL words and markup passes', async (t) => {
    const before = backend.requests.length;
    const ok = [
      await get(`/search?q=${encodeURIComponent("O'Brien")}&name=${encodeURIComponent("D'Angelo & Sons")}`),
      await get(`/search?q=${encodeURIComponent('select the union representative and drop me a line')}`, {}, h2),
      await post('/search', 'application/json', JSON.stringify({ note: 'x < y and y > z', tags: ['a', 'b'], html: '<b>bold</b>' })),
      await get('/search', { cookie: 'theme=dark; lang=en-GB', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0' }),
      await get(`/items/${encodeURIComponent("Rock 'n' Roll")}`),
    ];
    t.same(
      ok.map((r) => r.status),
      [200, 200, 200, 200, 200],
    );
    t.equal(backend.requests.length, before + 5, 'all reached the backend');
    t.equal(
      backend.requests.at(-3)?.bodyBytes,
      Buffer.byteLength(JSON.stringify({ note: 'x < y and y > z', tags: ['a', 'b'], html: '<b>bold</b>' })),
      'the body arrives whole',
    );
  });

  await t.test('strings found clean and remembered: an attack beside them is still refused and named', async (t) => {
    const before = backend.requests.length;
    const body = { customer: "O'Brien & Sons", note: 'Deliver to the loading dock; call ahead.', sku: 'SKU-1000' };
    const agent = { 'user-agent': 'orders-client/2.1' };
    const send = (extra: Record<string, string>, headers = agent) =>
      fetchText(`${s.url}/search`, h1, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ...body, ...extra }),
      });
    for (let i = 0; i < 3; i++) t.equal((await send({})).status, 200, `the same clean request, ${i + 1}`);
    const inBody = await send({ tag: SQLI });
    t.equal(inBody.status, 403, 'an attack beside remembered strings');
    t.match(lastEvent(), { name: 'warden.input.sqli', 'warden.detail': '/body/tag' }, 'named by its own path');
    const inHeader = await send({}, { 'user-agent': '() { :; }; /bin/bash -c "id"' });
    t.equal(inHeader.status, 403, 'an attack in a header, the body all remembered');
    t.match(lastEvent(), { name: 'warden.input.cmdi', 'warden.detail': '/header/user-agent' });
    for (let i = 0; i < 2; i++) t.equal((await send({ tag: SQLI })).status, 403, `the attack again, ${i + 1}: never remembered`);
    t.equal(backend.requests.length, before + 3, 'only the clean requests reached the backend');
  });

  await t.test('nothing hides where libddwaf would not look', async (t) => {
    // A payload at the end of a 20 000-character value (libddwaf alone stops at 4 096).
    const long = 'a'.repeat(20_000) + XSS;
    const inLong = await post('/search', 'application/json', JSON.stringify({ text: long }));
    t.equal(inLong.status, 403, 'a payload after 20 000 characters is found');
    t.equal(lastEvent()['warden.detail'], '/body/text');
    // …and one spanning the 4 096 boundary (pieces overlap).
    const straddle = 'b'.repeat(4096 - 10) + XSS;
    t.equal((await get(`/search?q=${encodeURIComponent(straddle)}`)).status, 403, 'a payload across a piece boundary is found');
    // …and one whose parts filler longer than the overlap keeps in different pieces (adversarial.md 211).
    for (const [filler, name] of [
      [' '.repeat(700), 'spaces'],
      ['\n'.repeat(700), 'newlines'],
      [`/*${'x'.repeat(700)}*/`, 'a comment'],
    ] as const) {
      const split = `${'b'.repeat(3500)} 1'${filler}OR 1=1 --`;
      t.equal((await get(`/search?q=${encodeURIComponent(split)}`)).status, 403, `an injection split by ${name} past the overlap: query`);
      t.equal((await post('/search', 'application/json', JSON.stringify({ text: split }))).status, 403, `…and a JSON value`);
    }
    // The 300th entry of a container (libddwaf alone stops at 256).
    const wide = Array.from({ length: 300 }, (_, i) => (i === 299 ? SQLI : `value ${i}`));
    const inWide = await post('/search', 'application/json', JSON.stringify({ list: wide }));
    t.equal(inWide.status, 403, 'a payload in the 300th entry is found');
    t.equal(lastEvent()['warden.detail'], '/body/list/299');
    const manyKeys = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i === 280 ? XSS : 'v']));
    t.equal((await post('/search', 'application/json', JSON.stringify(manyKeys))).status, 403, 'a payload in the 281st key is found');
    // Deeper than max_depth: refused, since it cannot be inspected.
    let deep: unknown = XSS;
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const tooDeep = await post('/search', 'application/json', JSON.stringify(deep));
    t.equal(tooDeep.status, 403);
    t.match(tooDeep.json(), { code: 'ERR_WAF_BLOCKED' });
    t.match(lastEvent(), { name: 'warden.input.invalid', 'warden.rule': 'waf.limits.depth' });
    let okDepth: unknown = 'fine';
    for (let i = 0; i < 20; i++) okDepth = { d: okDepth };
    t.equal((await post('/search', 'application/json', JSON.stringify(okDepth))).status, 200, 'nesting within max_depth passes');
    const tooWide = Object.fromEntries(Array.from({ length: 2500 }, (_, i) => [`k${i}`, 'v']));
    t.equal((await post('/search', 'application/json', JSON.stringify(tooWide))).status, 403, 'more than max_entries: refused');
    t.match(lastEvent(), { name: 'warden.input.invalid', 'warden.rule': 'waf.limits.entries' });
  });

  await t.test('exclusions and routes without the waf', async (t) => {
    const sql = JSON.stringify({ sql: "SELECT name FROM users WHERE name = 'x' -- newest first", title: 'report' });
    t.equal((await post('/reports', 'application/json', sql)).status, 200, 'an excluded parameter is not inspected');
    const other = JSON.stringify({ sql: 'ok', title: SQLI });
    t.equal((await post('/reports', 'application/json', other)).status, 403, 'the route’s other parameters still are');
    const comment = JSON.stringify({ body: 'Use <details> and <summary> for folding' });
    t.equal((await post('/search', 'application/json', comment)).status, 403, 'xss-tags applies on other routes');
    t.equal((await post('/comments', 'application/json', comment)).status, 200, 'and is off where excluded');
    t.equal((await post('/comments', 'application/json', JSON.stringify({ body: XSS }))).status, 403, 'other xss rules still apply there');
    t.equal((await post('/raw', 'application/json', JSON.stringify({ q: SQLI }))).status, 200, 'waf: false turns it off on a route');
  });

  await t.test('a "#" in a name is no #name suffix: the event names it redacted, and it is inside no excluded parameter', async (t) => {
    const before = backend.requests.length;
    const cases: [string, () => ReturnType<typeof get>, string, string][] = [
      [
        'JSON name x#… holding the attack',
        () => post('/search', 'application/json', JSON.stringify({ [`x#${'A'.repeat(5000)}${XSS}`]: 'y' })),
        'warden.input.xss',
        '/body/*#name',
      ],
      [
        'JSON value under a name x#…',
        () => post('/search', 'application/json', JSON.stringify({ [`x#${'B'.repeat(5000)}`]: SQLI })),
        'warden.input.sqli',
        '/body/*',
      ],
      [
        'query value under a name x%23…',
        () => get(`/search?x%23${'C'.repeat(5000)}=${encodeURIComponent(SQLI)}`),
        'warden.input.sqli',
        '/query/*/0',
      ],
      [
        'JSON name sql# beside the excluded /body/sql',
        () => post('/reports', 'application/json', JSON.stringify({ 'sql#': XSS })),
        'warden.input.xss',
        '/body/*',
      ],
      [
        'a JSON subtree under sql#anything',
        () => post('/reports', 'application/json', JSON.stringify({ 'sql#anything': { deep: { x: XSS } } })),
        'warden.input.xss',
        '/body/*/deep/x',
      ],
      [
        'query sql%23q beside the excluded /query/sql',
        () =>
          fetchText(`${s.url}/reports?sql%23q=${encodeURIComponent(XSS)}`, h1, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{}',
          }),
        'warden.input.xss',
        '/query/*/0',
      ],
    ];
    for (const [where, send, event, path] of cases) {
      const res = await send();
      t.equal(res.status, 403, `${where}: 403`);
      t.equal(lastEvent().name, event, `${where}: ${event}`);
      t.equal(lastEvent()['warden.detail'], path, `${where}: the event names ${path}`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const serialized = JSON.stringify(s.events.slice(-cases.length));
    t.notOk(/AAAA|BBBB|CCCC|alert\(1\)/.test(serialized), 'no event carries the name’s text');
    // The exclusions themselves still hold.
    t.equal((await post('/reports', 'application/json', JSON.stringify({ sql: XSS }))).status, 200, '/body/sql: still excluded');
    const excludedQuery = await fetchText(`${s.url}/reports?sql=${encodeURIComponent(XSS)}`, h1, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    t.equal(excludedQuery.status, 200, '/query/sql: still excluded');
  });

  await t.test('application types that name a text format are read (a backend decodes them as JSON anyway)', async (t) => {
    const json = JSON.stringify({ q: SQLI });
    const escaped = JSON.stringify({ q: SQLI }).replaceAll("'", '\\u0027');
    for (const type of [
      'application/x-json',
      'application/csp-report',
      'application/x-ndjson',
      'application/graphql',
      'application/javascript',
      'application/x-yaml',
    ]) {
      const before = backend.requests.length;
      t.equal((await post('/search', type, json)).status, 403, `${type}: an SQL injection in it refused`);
      t.equal((await post('/search', type, escaped)).status, 403, `${type}: escaped as \\u0027, refused too`);
      t.equal(backend.requests.length, before, `${type}: never reached the backend`);
    }
    t.equal((await post('/search', 'application/x-ndjson', '{"q":"shoes"}\n{"q":"boots"}\n')).status, 200, 'benign text passes');
    // Escaped strings that do not open the body: NDJSON after a first line, GraphQL's string escapes.
    const unicode = SQLI.replaceAll("'", '\\u0027');
    t.equal(
      (await post('/search', 'application/x-ndjson', `1\n{"q":"${unicode}"}\n`)).status,
      403,
      'NDJSON, escaped on a later line: refused',
    );
    t.equal(
      (await post('/search', 'application/graphql', `query { s(q: "${unicode}") { id } }`)).status,
      403,
      'GraphQL string escape: refused',
    );
  });

  await t.test('bodies the waf does not parse stream through unbuffered', async (t) => {
    const binary = Buffer.alloc(64 * 1024, 0x27); // 64 KiB of single quotes, as octet-stream
    const res = await post('/upload', 'application/octet-stream', binary);
    t.equal(res.status, 200);
    t.equal(backend.requests.at(-1)?.bodyBytes, binary.length);
  });
});

t.test('waf, detect mode: reports and forwards', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'detect', max_depth: 8 } } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const res = await fetchText(`${s.url}/anything?q=${encodeURIComponent(SQLI)}`, agent);
  t.equal(res.status, 200, 'forwarded');
  t.match(s.events.at(-1), { name: 'warden.input.sqli', 'warden.action': 'detect', 'warden.detail': '/query/q/0' });
  let deep: unknown = 'x';
  for (let i = 0; i < 12; i++) deep = { d: deep };
  const deepRes = await fetchText(`${s.url}/anything`, agent, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(deep),
  });
  t.equal(deepRes.status, 200, 'too deep: forwarded in detect mode');
  t.match(s.events.at(-1), { name: 'warden.input.invalid', 'warden.action': 'detect', 'warden.rule': 'waf.limits.depth' });
});

t.test('a configuration naming an unknown rule or route is refused at load', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  await t.rejects(
    startTestSidecar(t, backend.url, { threats: { waf: { exclusions: [{ rules: ['sqli-nope'] }] } } }),
    /threats\.waf\.exclusions\[0\]\.rules\[0\].*no waf rule "sqli-nope"/,
  );
  await t.rejects(
    startTestSidecar(t, backend.url, {
      threats: { waf: { exclusions: [{ route: 'nope', rules: ['xss-tags'] }] } },
      routes: [{ id: 'a', path: '/a' }],
    }),
    /threats\.waf\.exclusions\[0\]\.route.*no route or operation "nope"/,
  );
  await t.rejects(
    startTestSidecar(t, backend.url, { threats: { waf: { exclusions: [{ parameters: ['/body/sql', '/body/a#b'] }] } } }),
    /threats\.waf\.exclusions\[0\]\.parameters\[1\].*a "#" in a name is written ~2/,
    'a "#" the waf never writes in a path: refused',
  );
});

t.test("an operation's declared header parameters are inspected (the backend reads them by its own description)", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = join(mkdtempSync(join(tmpdir(), 'warden-waf-openapi-')), 'api.yaml');
  writeFileSync(
    document,
    [
      'openapi: 3.1.0',
      'info: { title: tenants, version: "1" }',
      'paths:',
      '  /reports:',
      '    get:',
      '      operationId: listReports',
      '      parameters:',
      '        - { name: X-Tenant, in: header, required: true, schema: { type: string } }',
      "      responses: { '200': { description: ok } }",
      '',
    ].join('\n'),
  );
  const s = await startTestSidecar(t, backend.url, { threats: { waf: {} }, openapi: { document, allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const before = backend.requests.length;
  const attack = await fetchText(`${s.url}/reports`, agent, { headers: { 'x-tenant': "acme' OR '1'='1" } });
  t.equal(attack.status, 403, 'an attack in the declared header is refused');
  t.match(s.events.at(-1), { name: 'warden.input.sqli', 'warden.detail': '/header/x-tenant' });
  t.equal(backend.requests.length, before, 'not forwarded');
  t.equal((await fetchText(`${s.url}/reports`, agent, { headers: { 'x-tenant': 'acme' } })).status, 200, 'a plain value passes');
  const undeclared = await fetchText(`${s.url}/reports`, agent, { headers: { 'x-tenant': 'acme', 'x-note': "acme' OR '1'='1" } });
  t.equal(undeclared.status, 200, 'the same in an undeclared header is not inspected (only the common and the declared ones are)');
});
