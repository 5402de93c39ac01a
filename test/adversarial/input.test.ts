/**
 * Hostile bodies and tokens against one in-process Warden with the pet store's OpenAPI policy:
 * JSON bombs on a validated body (deep nesting, huge numbers, duplicate keys, huge strings and
 * arrays), form bodies repeating one name, parameters given twice, and token attacks (alg none,
 * HS256 with the public key, kid injection, jku/x5u, expired, wrong aud/iss, oversized, token in
 * the query, two Authorization headers). Each row: a 4xx problem quickly, nothing at the backend,
 * the sidecar healthy afterwards.
 */
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { repoRoot, startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';
import { activeTimers, timersBackTo } from '../support/timers.js';
import { deflatePolyglot } from '../support/deflate-polyglot.js';
import { FLAG, FRAME, frame, headerBlock, rawH2, requestHeaders } from '../support/h2-frames.js';
import { check, exchange, Scoreboard } from './harness.js';

const now = () => Math.floor(Date.now() / 1000);

t.test('hostile bodies and tokens', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['pets'] }], max_token_bytes: '4KiB' },
    openapi: {
      document: join(repoRoot, 'test/fixtures/openapi/petstore-3.1.yaml'),
      allow_public: true,
      operations: { createPet: { rate_limit: false } },
    },
    limits: { max_body_bytes: '256KiB' },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => (agent.closed ? undefined : agent.close()));
  const claims = { iss: idp.issuer, aud: 'pets', sub: 'mallory', scope: 'pets:read pets:write' };
  const good = await idp.sign({ ...claims, exp: now() + 300 });
  // The health probe: the public operation.
  const board = new Scoreboard(backend, () => ({ port: s.port, ca: s.ca, adminUrl: s.adminUrl, probe: '/v1/health' }));
  const timersAtStart = activeTimers();

  const post = (body: string | Buffer) =>
    fetchText(`${s.url}/v1/pets`, agent, {
      method: 'POST',
      headers: { authorization: `Bearer ${good}`, 'content-type': 'application/json' },
      body,
    });

  const deep = (n: number) => '{"name":"x","tag":' + '['.repeat(n) + ']'.repeat(n) + '}';
  const BOMBS: [string, () => string | Buffer, number[]][] = [
    ['deep nesting (arrays, 100 000)', () => deep(100_000), [400, 413]],
    ['deep nesting (objects, 50 000)', () => '{"name":"x","tag":' + '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000) + '}', [400, 413]],
    ['unterminated nesting (200 000 "[")', () => '{"name":"x","tag":' + '['.repeat(200_000), [400, 413]],
    ['huge number 1e999999', () => '{"name":"x","age":1e999999}', [400]],
    ['100 000-digit integer', () => `{"name":"x","age":${'9'.repeat(100_000)}}`, [400]],
    ['negative huge exponent (underflows to -0)', () => '{"name":"x","age":-1e-999999}', [400, 200]],
    ['duplicate keys', () => '{"name":"rex","name":{"$where":"1"}}', [400]],
    ['duplicate keys (second valid)', () => '{"name":{"x":1},"name":"rex"}', [400]],
    ['__proto__ key', () => '{"name":"rex","__proto__":{"admin":true}}', [400]],
    ['huge string (200 KB)', () => `{"name":"${'a'.repeat(200_000)}"}`, [400]],
    ['big array (60 000 elements)', () => `{"name":"x","tag":[${'1,'.repeat(59_999)}1]}`, [400]],
    ['body over the limit (1 MB)', () => `{"name":"x","tag":"${'a'.repeat(1_000_000)}"}`, [413]],
    ['many keys (20 000)', () => `{"name":"x",${Array.from({ length: 20_000 }, (_, i) => `"k${i}":1`).join(',')}}`, [400]],
    ['lone surrogate escapes', () => '{"name":"\\ud800\\ud800"}', [400, 200]],
    ['invalid UTF-8 bytes', () => Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc0, 0xaf, 0xff]), Buffer.from('"}')]), [400]],
    ['BOM then JSON', () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"name":"rex"}')]), [400]],
    ['JSON with trailing garbage', () => '{"name":"rex"} {"name":"eve"}', [400]],
    ['NUL inside the document', () => '{"name":"rex"}\u0000', [400]],
  ];
  for (const [name, make, statuses] of BOMBS) {
    const body = make();
    await board.run(
      t,
      'json bombs',
      name,
      `${statuses.filter((x) => x !== 200).join('/')} within 2 s`,
      async () => {
        const started = Date.now();
        const r = await post(body);
        if (statuses.includes(200) && r.status === 200) return; // a valid document after all (the backend may see it)
        check(statuses.includes(r.status), `got ${r.status}: ${r.text.slice(0, 120)}`);
        check(/problem\+json/.test(String(r.headers['content-type'])), 'not problem+json');
        check(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      },
      { backendAllowance: statuses.includes(200) ? 1 : 0 },
    );
  }

  // Form bodies: a name repeated many times (each repeat once copied the values so far). Validation
  // reads them up to limits.max_form_fields (10 000); past it they are 413 before any stage reads them.
  const FORM_BOMBS: [string, string, number][] = [
    ['a declared field 9 000 times', 'tag=&'.repeat(9_000), 400],
    ['an undeclared name 9 000 times', 'a=&'.repeat(9_000), 400],
    ['a declared field 48 000 times (240 KB)', 'tag=&'.repeat(48_000), 413],
    ['an undeclared name 80 000 times (240 KB)', 'a=&'.repeat(80_000), 413],
  ];
  for (const [name, body, status] of FORM_BOMBS) {
    await board.run(t, 'form bombs', name, `${status} within 2 s`, async () => {
      const started = Date.now();
      const r = await fetchText(`${s.url}/v1/pets`, agent, {
        method: 'POST',
        headers: { authorization: `Bearer ${good}`, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      check(r.status === status, `got ${r.status}: ${r.text.slice(0, 120)}`);
      check(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    });
  }

  // A parameter given twice where its schema holds one value: validation read one copy, the
  // backend got both (deepObject and cookies: the last was checked; exploded properties: the first).
  const REPEATS: [string, string, Record<string, string>][] = [
    ['deepObject entry twice (filter[color]=blue, then red)', '/v1/pets?filter[color]=blue&filter[color]=red', {}],
    ['exploded property twice (size=10, then 500)', '/v1/pets?size=10&size=500', {}],
    ['cookie twice (session=NOT_OK, then abc)', '/v1/pets', { cookie: 'session=NOT_OK; session=abc' }],
  ];
  for (const [name, path, headers] of REPEATS) {
    await board.run(t, 'repeated parameters', name, '400 must be given once', async () => {
      const r = await fetchText(`${s.url}${path}`, agent, { headers: { authorization: `Bearer ${good}`, ...headers } });
      check(r.status === 400, `got ${r.status}: ${r.text.slice(0, 120)}`);
      check(r.text.includes('must be given once'), r.text.slice(0, 200));
    });
  }

  // A name PHP ends at its NUL (php_register_variable_ex uses strlen): `limit` there, with no maximum checked here.
  await board.run(t, 'repeated parameters', '?limit%00=1000 (PHP reads limit; maximum 100)', '400, not forwarded', async () => {
    const r = await fetchText(`${s.url}/v1/pets?limit%00=1000`, agent, { headers: { authorization: `Bearer ${good}` } });
    check(r.status === 400, `got ${r.status}: ${r.text.slice(0, 120)}`);
    check(r.text.includes('is read as \\"limit\\"'), r.text.slice(0, 200));
  });

  const exp = now() + 300;
  const get = (headers: Record<string, string>, path = '/v1/pets') => fetchText(`${s.url}${path}`, agent, { headers });
  const TOKENS: [string, () => Promise<string> | string][] = [
    ['alg none', () => idp.unsigned({ ...claims, exp })],
    ['alg none, signature kept', () => `${idp.unsigned({ ...claims, exp })}${good.split('.')[2] ?? ''}`],
    ['HS256 keyed with the public key', () => idp.hmacWithPublicKey({ ...claims, exp })],
    ['kid path traversal', () => idp.sign({ ...claims, exp }, { kid: '../../../../dev/null' }, idp.foreignKey())],
    ['kid SQL injection', () => idp.sign({ ...claims, exp }, { kid: "x' UNION SELECT 'key' --" }, idp.foreignKey())],
    ['kid 3 KB', () => idp.sign({ ...claims, exp }, { kid: 'k'.repeat(3000) }, idp.foreignKey())],
    ['jku to an attacker JWKS', () => idp.sign({ ...claims, exp }, { jku: 'http://127.0.0.1:1/jwks' }, idp.foreignKey())],
    ['x5u to an attacker certificate', () => idp.sign({ ...claims, exp }, { x5u: 'http://127.0.0.1:1/c.pem' })],
    ['embedded jwk', () => idp.sign({ ...claims, exp }, { jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } }, idp.foreignKey())],
    ['expired', () => idp.sign({ ...claims, exp: now() - 600 })],
    ['wrong audience', () => idp.sign({ ...claims, aud: 'payments', exp })],
    ['wrong issuer', () => idp.sign({ ...claims, iss: 'https://evil.example', exp })],
    ['oversized token (8 KB)', () => idp.sign({ ...claims, exp, pad: 'p'.repeat(8000) })],
    ['signature stripped', () => good.split('.').slice(0, 2).join('.') + '.'],
    [
      'payload swapped, signature kept',
      () => {
        const [h, , sig] = good.split('.');
        return `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'pets:admin', exp })).toString('base64url')}.${sig}`;
      },
    ],
    ['not a JWT (garbage)', () => '%00%0d%0a<script>'],
  ];
  for (const [name, make] of TOKENS) {
    const token = await make();
    await board.run(t, 'tokens', name, '401 problem, WWW-Authenticate', async () => {
      const r = await get({ authorization: `Bearer ${token}` });
      check(r.status === 401, `got ${r.status}`);
      check(String(r.headers['www-authenticate']).startsWith('Bearer'), 'no Bearer challenge');
      check(/problem\+json/.test(String(r.headers['content-type'])), 'not problem+json');
    });
  }
  await board.run(t, 'tokens', 'token in the query string (not allowed)', '401 token missing', async () => {
    const r = await get({}, `/v1/pets?access_token=${good}`);
    check(r.status === 401, `got ${r.status}`);
    check(r.json().code === 'ERR_AUTHN_TOKEN_MISSING', `code ${String(r.json().code)}`);
  });
  await board.run(t, 'tokens', 'two Authorization headers (HTTP/1.1)', '400, closed', async () => {
    const r = await exchange(s.port, s.ca, [
      `GET /v1/pets HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${good}\r\nAuthorization: Bearer ${good}\r\n\r\n`,
    ]);
    check(r.status === 400 && r.closed, `got ${r.status}, closed=${r.closed}`);
  });
  await board.run(t, 'tokens', 'two Authorization headers (HTTP/2)', '4xx or reset; not forwarded', async () => {
    const h2 = await rawH2(s.port, s.ca);
    try {
      const auth: [string, string][] = [
        ['authorization', `Bearer ${good}`],
        ['authorization', 'Bearer x'],
      ];
      h2.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/v1/pets', auth))));
      const answered = await h2.waitFor(
        (fs) => fs.some((f) => f.streamId === 1 && (f.type === FRAME.HEADERS || f.type === FRAME.RST_STREAM)),
        2000,
      );
      check(answered || h2.socket.destroyed, 'no answer');
      const body = h2.frames
        .filter((f) => f.streamId === 1 && f.type === FRAME.DATA)
        .map((f) => f.payload.toString())
        .join('');
      check(body === '' || /"status":4\d\d/.test(body), `answered ${body.slice(0, 100)}`);
    } finally {
      h2.socket.destroy();
    }
  });
  await board.run(t, 'tokens', 'Basic credentials instead of a bearer token', '401', async () => {
    const r = await get({ authorization: 'Basic bWFsbG9yeTpwdw==' });
    check(r.status === 401, `got ${r.status}`);
  });
  await board.run(t, 'tokens', 'bearer token with a comma list', '401', async () => {
    const r = await get({ authorization: `Bearer ${good}, Bearer ${good}` });
    check(r.status === 401, `got ${r.status}`);
  });

  // The control: the same good token is served.
  const ok = await get({ authorization: `Bearer ${good}` });
  t.equal(ok.status, 200, 'control: the good token is served');
  board.report(t);
  await agent.close();
  // Every case above is over: none may leave a timer of its request running (docs/adversarial.md defect 35).
  const left = await timersBackTo(timersAtStart, 15_000);
  t.ok(left <= timersAtStart, `no timer of a refused request left running (${left} active, ${timersAtStart} at the start)`);
});

/**
 * Attacks dressed so that a reader of the body as sent sees nothing while a backend's parser
 * decodes them: media types read as JSON, untyped bodies, charsets, content codings, non-interoperable
 * JSON, multipart parts (adversarial.md, defects 17–21). Against the waf on the passthrough route.
 */
t.test('waf evasion by how a backend reads the body', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { threats: { waf: {} }, limits: { max_body_bytes: '256KiB' } });
  const agent = testAgent(s.ca);
  t.teardown(() => (agent.closed ? undefined : agent.close()));
  const board = new Scoreboard(backend, () => ({ port: s.port, ca: s.ca, adminUrl: s.adminUrl, probe: '/probe' }));
  const timersAtStart = activeTimers();
  const SQLI_ESCAPED = '{"q":"\\u0027 OR 1=1 --"}';
  const multipart = (headers: string, value: string) =>
    `--b\r\nContent-Disposition: form-data; name="f"\r\n${headers}\r\n${value}\r\n--b--\r\n`;
  const CASES: [string, Record<string, string>, string | Buffer, number][] = [
    ['text/json, a JSON-escaped quote (ASP.NET Core, Laravel decode it)', { 'content-type': 'text/json' }, SQLI_ESCAPED, 403],
    ['form without a Content-Type (Rack parses it)', {}, `q=${encodeURIComponent("' OR 1=1 --")}`, 403],
    ['JSON without a Content-Type, <script> escaped', {}, '{"q":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}', 403],
    ['JSON after a BOM (Express drops it)', { 'content-type': 'application/json' }, `\ufeff${SQLI_ESCAPED}`, 403],
    ['JSON naming a member twice', { 'content-type': 'application/json' }, '{"q":"\\u0027 OR 1=1 --","q":"x"}', 403],
    [
      'EBCDIC form (charset=ibm037, ASP.NET decodes it)',
      { 'content-type': 'application/x-www-form-urlencoded; charset=ibm037' },
      Buffer.from([0x98, 0x7e, 0x7d, 0x40, 0xd6, 0xd9, 0x40, 0xf1, 0x7e, 0xf1, 0x40, 0x60, 0x60]),
      415,
    ],
    ['UTF-16LE JSON', { 'content-type': 'application/json; charset=utf-16le' }, Buffer.from(SQLI_ESCAPED, 'utf16le'), 415],
    ['UTF-7 text (+ADw-script+AD4-)', { 'content-type': 'text/plain; charset=utf-7' }, '+ADw-script+AD4-alert(1)+ADw-/script+AD4-', 415],
    [
      'gzip JSON (Express inflates it)',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      gzipSync('{"q":"<script>alert(1)</script>"}'),
      403,
    ],
    [
      'deflate form',
      { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'deflate' },
      deflateSync(`q=${encodeURIComponent("' OR 1=1 --")}`),
      403,
    ],
    [
      'gzip, a zero byte between two members (zlib stopped at it, Python reads on)',
      { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      Buffer.concat([gzipSync('q=hello'), Buffer.alloc(1), gzipSync(`&q=${encodeURIComponent("' OR 1=1 --")}`)]),
      400,
    ],
    [
      'gzip, _method in a zero-padded second member',
      { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      Buffer.concat([gzipSync('a=1'), Buffer.alloc(1), gzipSync('&_method=DELETE')]),
      400,
    ],
    [
      'deflate that reads as a benign form in zlib and as an attack raw (DeflateStream)',
      { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'deflate' },
      deflatePolyglot(`&q=${encodeURIComponent("' OR 1=1 --")}`),
      400,
    ],
    ['a coding the sidecar cannot undo (zstd)', { 'content-type': 'application/json', 'content-encoding': 'zstd' }, 'x', 415],
    [
      'gzip bomb (64 MiB of spaces)',
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20)),
      413,
    ],
    [
      'multipart JSON part, quote escaped (Spring binds it)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      multipart('Content-Type: application/json\r\n', SQLI_ESCAPED),
      403,
    ],
    [
      'multipart part in base64 transfer encoding',
      { 'content-type': 'multipart/form-data; boundary=b' },
      multipart('Content-Transfer-Encoding: base64\r\n', Buffer.from("' OR 1=1 --").toString('base64')),
      400,
    ],
    [
      'multipart part in Shift_JIS (ASCII as it is; the parser gave no value)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      multipart('Content-Type: text/plain; charset=shift_jis\r\n', "' OR 1=1 --"),
      400,
    ],
    [
      'multipart body in charset=ibm037 (Jetty reads plain parts in it)',
      { 'content-type': 'multipart/form-data; boundary=b; charset=ibm037' },
      multipart('', 'x'),
      400,
    ],
    [
      'form with _charset_=ibm037 (Apache Sling decodes every parameter in it)',
      { 'content-type': 'application/x-www-form-urlencoded' },
      '_charset_=ibm037&q=x',
      400,
    ],
    ['JSON in single quotes, quote escaped (Json.NET reads it)', { 'content-type': 'application/json' }, "{'q': '\\u0027 OR 1=1 --'}", 403],
    [
      'JSON __proto__ member (a deep merge pollutes Object.prototype)',
      { 'content-type': 'application/json' },
      '{"__proto__": {"isAdmin": true}}',
      403,
    ],
    [
      'XML external entity (application/xml was not read)',
      { 'content-type': 'application/xml' },
      '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
      403,
    ],
    ['XML, a quote as a character reference', { 'content-type': 'application/xml' }, '<r><q>1&#39; OR 1=1 --</q></r>', 403],
    [
      'multipart file part cut off (no close delimiter; an uncaught error ended the process)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      '--b\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nhello',
      400,
    ],
    [
      'multipart file part closed after a bare LF (busboy reads on to the end)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      '--b\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nhello\n--b--\r\n',
      400,
    ],
    [
      'multipart part after a padded boundary line (Go reads it, busboy drops it)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      `--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nfine\r\n--b \r\nContent-Disposition: form-data; name="q"\r\n\r\n' OR 1=1 --\r\n--b--\r\n`,
      400,
    ],
    // Content-Types a backend reads as another body type than the waf (src/net/media-type.ts, contentTypeRefusal).
    [
      'form typed application/x-www-form-urlencoded,x (PHP and Rack end the type at ",")',
      { 'content-type': 'application/x-www-form-urlencoded,x' },
      `q=${encodeURIComponent("' OR 1=1 --")}&x=${encodeURIComponent('<script>alert(1)</script>')}`,
      400,
    ],
    [
      'form typed "application/x-www-form-urlencoded x" (PHP ends the type at a space)',
      { 'content-type': 'application/x-www-form-urlencoded x' },
      `q=${encodeURIComponent("' OR 1=1 --")}`,
      400,
    ],
    [
      'JSON typed application/octet-stream; v=+json (Laravel reads JSON)',
      { 'content-type': 'application/octet-stream; v=+json' },
      SQLI_ESCAPED,
      400,
    ],
    [
      'multipart part with Content-Disposition: attachment (PHP reads its name)',
      { 'content-type': 'multipart/form-data; boundary=b' },
      `--b\r\nContent-Disposition: attachment; name="q"\r\n\r\n' OR 1=1 --\r\n--b--\r\n`,
      400,
    ],
  ];
  for (const [name, headers, body, status] of CASES)
    await board.run(t, 'waf evasion', name, `${status}, not forwarded`, async () => {
      const r = await fetchText(`${s.url}/search`, agent, { method: 'POST', headers, body });
      check(r.status === status, `got ${r.status}: ${r.text.slice(0, 120)}`);
      check(/problem\+json/.test(String(r.headers['content-type'])), 'not problem+json');
    });
  board.report(t);
  await agent.close();
  // Every case above is over: none may leave a timer of its request running (docs/adversarial.md defect 35).
  const left = await timersBackTo(timersAtStart, 15_000);
  t.ok(left <= timersAtStart, `no timer of a refused request left running (${left} active, ${timersAtStart} at the start)`);
});
