/**
 * Charsets a multipart part is decoded in that the sidecar's readers (busboy) did not read (red team
 * round 24b, checked against a real Jetty 9.4.57 behind Warden: Jetty is no prerequisite here).
 * Jetty decodes every text part without a charset of its own in the charset of the part named
 * `_charset_`, which it looks up by name whether busboy read it as a field or as a file (a file
 * name, or typed application/octet-stream): only the field was checked. And Jetty finds a part's
 * own `charset=` in Content-Types busboy cannot parse (`text/plain;; charset=IBM037`), where busboy
 * decoded the part as UTF-8 and handed the waf a value: `' OR 1=1 --` in EBCDIC reached Jetty as
 * SQL injection, 200. Each is refused, by each stage's own reader.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { startTestClamd } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const TYPE = 'multipart/form-data; boundary=b';
const EBCDIC_SQLI = Buffer.from([0x7d, 0x40, 0xd6, 0xd9, 0x40, 0xf1, 0x7e, 0xf1, 0x40, 0x60, 0x60]); // ' OR 1=1 -- in IBM037
const part = (headers: string, content: string | Buffer) =>
  Buffer.concat([
    Buffer.from(`--b\r\nContent-Disposition: form-data; ${headers}\r\n\r\n`, 'latin1'),
    Buffer.from(content),
    Buffer.from('\r\n'),
  ]);
const body = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from('--b--\r\n')]);
const q = (type?: string) => part(`name="q"${type === undefined ? '' : `\r\nContent-Type: ${type}`}`, EBCDIC_SQLI);

/** The shapes Jetty read the EBCDIC SQL injection from: [what, body, the refusal's detail]. */
const SHAPES: [string, Buffer, RegExp][] = [
  ['a _charset_ part with a file name', body(part('name="_charset_"; filename="c.txt"', 'IBM037'), q()), /_charset_ part read as a file/],
  [
    'a _charset_ part typed application/octet-stream',
    body(part('name="_charset_"\r\nContent-Type: application/octet-stream', 'IBM037'), q()),
    /_charset_ part read as a file/,
  ],
  ...[
    'text/plain;charset=IBM037;',
    'text/plain;; charset=IBM037',
    'text/plain; a b; charset=IBM037',
    'text/plain; charset= IBM037',
    'text/plain; charset =IBM037',
    '; charset=IBM037',
  ].map((type): [string, Buffer, RegExp] => [`part Content-Type ${type}`, body(q(type)), /charset ibm037 that cannot be inspected/]),
  // Jetty's scan takes `"` anywhere as a quote (here around `; charset=utf-8; x=`); a parser reads
  // charset=utf-8 and a quoted `; charset=IBM037`. The RFC 9110 syntax check sees it, and the
  // reading of every `charset=` anywhere in the value (Mojolicious's) finds IBM037 first.
  [
    'a stray quote before the part charset',
    body(q('text/plain; a"; charset=utf-8; x="; charset=IBM037')),
    /charset ibm037 that cannot be inspected|parameters are not name=value pairs/,
  ],
];

/** What browsers and HTTP clients send as part types. */
const CLEAN = body(
  part('name="_charset_"', 'UTF-8'),
  part('name="name"\r\nContent-Type: text/plain', 'eve'),
  part('name="note"\r\nContent-Type: application/json; charset=UTF-8', '{"a":1}'),
  part('name="avatar"; filename="a.png"\r\nContent-Type: image/png', 'png'),
  part('name="doc"; filename="a.bin"\r\nContent-Type: application/octet-stream', 'bin'),
);

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
                q: { type: string }
      responses: { '200': { description: ok } }
`;

t.test('charsets Jetty reads a part in and busboy did not: refused by the scan, the waf, validation and the _method check', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);

  await t.test('on a malware_scan route and a waf route: 400, not forwarded', async (t) => {
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
    const send = (path: string, payload: Buffer) =>
      fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': TYPE }, body: payload });
    const before = backend.requests.length;
    for (const [what, payload, detail] of SHAPES) {
      for (const [path, rule] of [
        ['/upload', 'malware.multipart'],
        ['/form', 'waf.multipart'],
      ] as const) {
        const r = await send(path, payload);
        t.equal(r.status, 400, `${what}, ${path}: 400`);
        t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail }, `${what}, ${path}: named`);
        t.equal(s.events.at(-1)?.['warden.rule'], rule, `${what}, ${path}: rule ${rule}`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await send('/upload', CLEAN)).status, 200, 'the part types browsers send pass the scan');
    t.equal((await send('/form', CLEAN)).status, 200, 'and the waf');
  });

  await t.test('on a validated operation: 400, by validation and by the _method check', async (t) => {
    const validated = await startTestSidecar(t, backend.url, {
      openapi: { document: openApiFile(DOC), allow_public: true },
      headers: { overrides: 'forward' },
    });
    const checked = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } });
    const agents = [testAgent(validated.ca), testAgent(checked.ca)];
    t.teardown(() => Promise.all(agents.map((a) => a.close())));
    const send = (s: typeof validated, payload: Buffer) =>
      fetchText(`${s.url}/users`, agents[s === validated ? 0 : 1] as (typeof agents)[0], {
        method: 'POST',
        headers: { 'content-type': TYPE },
        body: payload,
      });
    const before = backend.requests.length;
    for (const [what, payload, detail] of SHAPES) {
      const v = await send(validated, payload);
      t.equal(v.status, 400, `${what}: 400 by validation`);
      t.match(
        v.json(),
        { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body', message: /not valid multipart/ }] },
        `${what}: by validation`,
      );
      t.equal(validated.events.at(-1)?.['warden.rule'], 'openapi.body', `${what}: rule openapi.body`);
      const m = await send(checked, payload);
      t.equal(m.status, 400, `${what}: 400 by the _method check`);
      t.match(m.json(), { code: 'ERR_REQUEST_INVALID', detail }, `${what}: named`);
      t.equal(checked.events.at(-1)?.['warden.rule'], 'overrides.multipart', `${what}: rule overrides.multipart`);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    t.equal((await send(validated, CLEAN)).status, 200, 'the part types browsers send pass validation');
    t.equal((await send(checked, CLEAN)).status, 200, 'and the _method check');
  });
});
