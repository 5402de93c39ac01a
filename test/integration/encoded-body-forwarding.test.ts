/**
 * A coded request body that a stage read decoded goes to the backend decoded, without its
 * Content-Encoding: the bytes every check read. Forwarded as sent, PHP (which does not undo a
 * request's coding, like nginx with PHP-FPM) parsed the gzip bytes as a form, and gzip's FNAME,
 * FEXTRA and FCOMMENT or a brotli metadata block, skipped by the decoder, held fields the waf, the
 * `_method` check and validation never saw (red team 20b): `q` an SQL injection, `_method=DELETE`,
 * `role=admin` past its enum, each 200.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { brotliWithMetadata, gzipWithHeader } from '../support/coded-bodies.js';
import { startPhp, type PhpRead } from '../support/php.js';
import { startTestSidecar } from '../support/sidecar.js';

const SQLI = "1' UNION SELECT password FROM users--";
const FORM = 'application/x-www-form-urlencoded';

/** [what, Content-Encoding, body]: each decodes to `q=hello`; the bytes as sent hold `hidden`. */
const hiding = (hidden: string): [string, string, Buffer][] => [
  ['gzip FNAME', 'gzip', gzipWithHeader('q=hello', { name: `&${hidden}&x=` })],
  ['gzip FEXTRA', 'gzip', gzipWithHeader('q=hello', { extra: `&${hidden}&x=` })],
  ['gzip FCOMMENT', 'gzip', gzipWithHeader('q=hello', { comment: `&${hidden}&x=` })],
  ['a brotli metadata block', 'br', brotliWithMetadata('q=hello', `&${hidden}&x=`)],
];

t.test('bytes a decoder skips reach no backend: a decoded body is forwarded decoded', async (t) => {
  const php = await startPhp(t);
  const direct = new Agent();
  t.teardown(() => direct.close());
  const read = (r: { json<T>(): T }) => r.json<PhpRead>();

  await t.test('PHP 8.2 reads the bytes as sent', async (t) => {
    for (const [what, coding, body] of hiding(`q=${encodeURIComponent(SQLI)}`)) {
      const r = await fetchText(`${php.url}/form`, direct, {
        method: 'POST',
        headers: { 'content-type': FORM, 'content-encoding': coding },
        body,
      });
      t.equal(read(r).post.q, SQLI, `${what}: PHP reads the SQL injection`);
    }
  });

  const s = await startTestSidecar(t, php.url, {
    threats: { waf: { mode: 'block' } },
    routes: [{ id: 'form', path: '/form', methods: ['POST'] }],
  });
  const agents = [testAgent(s.ca), testAgent(s.ca, { h2: true })] as const;
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const send = (path: string, coding: string, body: Buffer, agent: Agent, headers: Record<string, string> = {}, url = s.url) =>
    fetchText(`${url}${path}`, agent, { method: 'POST', headers: { 'content-type': FORM, 'content-encoding': coding, ...headers }, body });
  const decoded = (p: PhpRead, what: string, tt: typeof t, form = 'q=hello') => {
    tt.equal(Buffer.from(p.input, 'base64').toString('latin1'), form, `${what}: PHP is sent the body decoded`);
    tt.equal(p.contentLength, String(Buffer.byteLength(form)), `${what}: with its length`);
    tt.equal(p.contentEncoding, null, `${what}: and no Content-Encoding`);
  };

  await t.test('SQL injection in the bytes skipped: the waf passes q=hello, and q=hello is what PHP gets', async (t) => {
    for (const [what, coding, body] of hiding(`q=${encodeURIComponent(SQLI)}`))
      for (const [i, agent] of agents.entries()) {
        const r = await send('/form', coding, body, agent);
        t.equal(r.status, 200, `${what} (${i === 0 ? 'h1' : 'h2'}): 200`);
        t.same(read(r).post, { q: 'hello' }, `${what}: PHP reads q=hello`);
        decoded(read(r), what, t);
      }
  });

  await t.test('_method=DELETE in the bytes skipped: PHP reads no _method', async (t) => {
    for (const [what, coding, body] of hiding('_method=DELETE')) {
      const r = await send('/form', coding, body, agents[0]);
      t.equal(r.status, 200, `${what}: 200`);
      t.same(read(r).post, { q: 'hello' }, `${what}: PHP reads q=hello only`);
    }
    const plain = await send('/form', 'gzip', gzipSync('q=hello&_method=DELETE'), agents[0]);
    t.equal(plain.status, 400, 'a _method in the coded data itself: 400, as before');
  });

  await t.test('digests of the coded bytes are dropped with the coding', async (t) => {
    const body = gzipSync('q=hello');
    const md5 = createHash('md5').update(body).digest('base64');
    const sha = createHash('sha256').update(body).digest('base64');
    const r = await send('/form', 'gzip', body, agents[0], {
      'content-md5': md5,
      digest: `SHA-256=${sha}`,
      'content-digest': `sha-256=:${sha}:`,
    });
    t.equal(r.status, 200);
    decoded(read(r), 'gzip with digests', t);
  });

  await t.test('OpenAPI: role=admin in the bytes skipped, past enum [user]: PHP reads name=abc only', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-oa-'));
    const schema = {
      type: 'object',
      additionalProperties: false,
      properties: { name: { type: 'string' }, role: { type: 'string', enum: ['user'] } },
    };
    writeFileSync(
      join(dir, 'api.json'),
      JSON.stringify({
        openapi: '3.1.0',
        info: { title: 't', version: '1' },
        paths: {
          '/profile': {
            post: {
              operationId: 'setProfile',
              security: [],
              requestBody: { content: { [FORM]: { schema } } },
              responses: { 200: { description: 'ok' } },
            },
          },
        },
      }),
    );
    const oa = await startTestSidecar(t, php.url, {
      openapi: { document: join(dir, 'api.json'), allow_public: true, validation: { mode: 'enforce' } },
    });
    const agent = testAgent(oa.ca);
    t.teardown(() => agent.close());
    const sent = (coding: string, body: Buffer) => send('/profile', coding, body, agent, {}, oa.url);
    t.equal((await sent('gzip', gzipSync('name=abc&role=admin'))).status, 400, 'role=admin in the coded data: 400');
    for (const [what, coding, body] of [
      ['gzip FNAME', 'gzip', gzipWithHeader('name=abc', { name: '&role=admin&x=' })],
      ['a brotli metadata block', 'br', brotliWithMetadata('name=abc', '&role=admin&x=')],
    ] as const) {
      const r = await sent(coding, body);
      t.equal(r.status, 200, `${what}: 200`);
      t.same(read(r).post, { name: 'abc' }, `${what}: PHP reads name=abc only`);
      decoded(read(r), what, t, 'name=abc');
    }
  });
});

t.test('an ordinary gzip JSON body reaches the backend decoded, with its length; one no stage reads goes as sent', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { threats: { waf: { mode: 'block' } } });
  const agents = [testAgent(s.ca), testAgent(s.ca, { h2: true })] as const;
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const json = Buffer.from(JSON.stringify({ note: "O'Brien & Sons", items: [1, 2, 3] }));
  for (const [i, agent] of agents.entries()) {
    const r = await fetchText(`${s.url}/echo`, agent, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(json),
    });
    t.equal(r.status, 200, `${i === 0 ? 'h1' : 'h2'}: 200`);
    const seen = backend.requests.at(-1);
    t.equal(seen?.sha256, createHash('sha256').update(json).digest('hex'), 'the JSON, decoded');
    t.equal(seen?.headers['content-length'], String(json.length), 'its length');
    t.equal(seen?.headers['content-encoding'], undefined, 'no Content-Encoding');
    t.equal(seen?.headers['transfer-encoding'], undefined, 'no Transfer-Encoding');
  }
  // A body of a type no stage reads is not read: streamed on as sent, with its coding.
  const zipped = gzipSync(Buffer.alloc(64 * 1024, 0x61));
  const r = await fetchText(`${s.url}/echo`, agents[0], {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
    body: zipped,
  });
  t.equal(r.status, 200);
  const seen = backend.requests.at(-1);
  t.equal(seen?.sha256, createHash('sha256').update(zipped).digest('hex'), 'an unread body: as sent');
  t.equal(seen?.headers['content-encoding'], 'gzip', 'with its Content-Encoding');

  // A part of a representation: its range counts coded bytes, wrong once the body goes decoded.
  const before = backend.requests.length;
  for (const [i, agent] of agents.entries()) {
    const ranged = await fetchText(`${s.url}/echo`, agent, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-range': 'bytes 0-40/100' },
      body: gzipSync(json),
    });
    t.equal(ranged.status, 415, `${i === 0 ? 'h1' : 'h2'}: a coded body with a Content-Range read by a stage: 415`);
    t.match(ranged.text, /Content-Range/, 'naming why');
    t.equal(ranged.headers['accept-encoding'], 'identity', 'and what to send');
  }
  t.equal(backend.requests.length, before, 'the backend saw none of them');
  const plainRange = await fetchText(`${s.url}/echo`, agents[0], {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'content-range': 'bytes 0-40/100' },
    body: json,
  });
  t.equal(plainRange.status, 200, 'the same range on a body sent as is: forwarded');
});
