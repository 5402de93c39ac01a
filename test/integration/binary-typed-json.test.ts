/**
 * JSON sent under a binary Content-Type (`application/octet-stream`, `image/png`): Mojolicious'
 * `$c->req->json` (`j($self->body)`) and Dancer2 with `serializer => 'JSON'` decode the body as
 * JSON whatever its type, as Go's json.NewDecoder(r.Body), Flask's get_json(force=True) and
 * express.json({ type: '*\/*' }) do. The waf streamed such a body uninspected and the scan read its
 * raw bytes, where `\u0057` hides a signature: against Mojolicious 9.31 and Dancer2, an SQL
 * injection and a script passed the waf in block mode and the test pattern passed the scan (red
 * team 26, F7). A body of a type neither reads that opens like JSON is now read as JSON by both;
 * one that does not (an image, an archive) still streams, its first bytes the only ones looked at.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import t from 'tap';
import { request, type Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { startTestClamd, TEST_PATTERN } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';
import { storedZip } from '../support/zip.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /files:
    put:
      operationId: putFile
      requestBody:
        content:
          application/octet-stream:
            schema: { type: string, format: binary }
      responses: { '200': { description: ok } }
`;

const SQLI = `{"note":"1' UNION SELECT password FROM users--"}`;
const SCRIPT = '{"note":"<script>alert(document.cookie)</script>"}';
/** 64 KiB: the body_memory_bytes of the sidecars here, so that bodies past it are cheap to send. */
const MEMORY = 64 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Text opening with `opening`, then lines, past body_memory_bytes. */
const pastMemory = (opening: string) => Buffer.from(opening + 'plain words of a file\n'.repeat(Math.ceil((3 * MEMORY) / 22)));
/** A PNG's signature and IHDR, then noise: what an image upload's first bytes are. */
const png = (bytes: number) =>
  Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomBytes(Math.max(0, bytes - 16))]);

t.test('a JSON document under a binary type is read as JSON by the waf and the scan', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const limits = { body_memory_bytes: MEMORY };
  const inspecting = await startTestSidecar(t, backend.url, {
    limits,
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'users', path: '/v1/users', methods: ['POST'] }],
  });
  const scanning = await startTestSidecar(t, backend.url, {
    limits,
    threats: { malware: { clamd: clamd.address, timeout: '10s' } },
    routes: [{ id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true }],
  });
  const described = await startTestSidecar(t, backend.url, {
    limits,
    threats: { waf: { mode: 'block', budget: '2s' } },
    openapi: { document: openApiFile(DOCUMENT), allow_public: true },
  });
  const agents = new Map<string, Agent>();
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const agentOf = (s: TestSidecar, h2: boolean) => {
    const key = `${s.port} ${h2}`;
    if (!agents.has(key)) agents.set(key, testAgent(s.ca, { h2 }));
    return agents.get(key) as Agent;
  };
  /** The body sent whole (Content-Length), or in pieces without a length when `pieces` is given. */
  const send = (s: TestSidecar, path: string, body: Buffer, contentType: string, h2: boolean, pieces?: number) =>
    fetchText(`${s.url}${path}`, agentOf(s, h2), {
      method: path === '/files' ? 'PUT' : 'POST',
      headers: { 'content-type': contentType },
      body:
        pieces === undefined
          ? body
          : Readable.from(
              (function* () {
                const size = Math.ceil(body.length / pieces);
                for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
              })(),
            ),
    });

  const before = backend.requests.length;
  const spaces = Buffer.alloc(20_000, 0x20);
  for (const [s, path, body, contentType, status, what, pieces] of [
    [inspecting, '/v1/users', Buffer.from(SQLI), 'application/octet-stream', 403, 'SQL injection as octet-stream'],
    [inspecting, '/v1/users', Buffer.from(SCRIPT), 'image/png', 403, 'a script as image/png'],
    [inspecting, '/v1/users', Buffer.from(`\ufeff\r\n [${SCRIPT}]`), 'application/pdf', 403, 'a BOM, white space, an array'],
    [
      inspecting,
      '/v1/users',
      Buffer.from('{"note":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}'),
      'application/octet-stream',
      403,
      'the script in \\u escapes',
    ],
    [inspecting, '/v1/users', Buffer.from(`{"note":"x",${SQLI.slice(1)}`), 'application/zip', 403, 'a name twice (not interoperable)'],
    [
      inspecting,
      '/v1/users',
      Buffer.concat([spaces, Buffer.from(SQLI)]),
      'application/octet-stream',
      403,
      '20 000 spaces first, sent in pieces (no Content-Length)',
      50,
    ],
    [
      inspecting,
      '/v1/users',
      Buffer.concat([Buffer.from(SCRIPT.slice(0, -1)), Buffer.from(`,"pad":"${'a'.repeat(MEMORY)}"}`)]),
      'application/octet-stream',
      403,
      'past body_memory_bytes: the waf cannot hold it (waf.limits.body)',
      8,
    ],
    [
      scanning,
      '/upload',
      Buffer.from(`{"note":"\\u0057${TEST_PATTERN.slice(1)}"}`),
      'application/octet-stream',
      422,
      'the pattern as \\u0057…',
    ],
    [scanning, '/upload', Buffer.from(`[{"note":"\\u0057${TEST_PATTERN.slice(1)}"}]`), 'image/png', 422, 'the same as image/png'],
    [
      scanning,
      '/upload',
      Buffer.from(`{"note":"\\u0057${TEST_PATTERN.slice(1)}","pad":"${'a'.repeat(MEMORY)}"}`),
      'application/octet-stream',
      422,
      'past body_memory_bytes: its values cannot be read (malware.fields_unread)',
    ],
    [
      scanning,
      '/upload',
      Buffer.from(`{"note":"\\u0057${TEST_PATTERN.slice(1)}","pad":"${'a'.repeat(MEMORY)}"}`),
      'text/plain',
      422,
      'text past body_memory_bytes that opens like JSON: no longer scanned whole only',
    ],
    [described, '/files', Buffer.from(SQLI), 'application/octet-stream', 403, 'an operation taking format: binary'],
  ] as const) {
    for (const h2 of [false, true]) {
      const r = await send(s, path, body, contentType, h2, pieces);
      t.equal(r.status, status, `${path} ${what} (${h2 ? 'h2' : 'h1'}): ${status}`);
    }
  }
  t.equal(backend.requests.length, before, 'the backend saw none of them');
  t.ok(
    inspecting.events.some((e) => e['warden.rule'] === 'waf.limits.body'),
    'a body that opens like JSON past body_memory_bytes is refused as too large to inspect',
  );
  t.ok(
    scanning.events.some((e) => e['warden.rule'] === 'malware.fields_unread'),
    'and on a scan route as unread field by field',
  );

  // Controls: harmless JSON under a binary type, an image, an archive, a binary past body_memory_bytes.
  const zip = storedZip([['a.txt', Buffer.from('hello')]]);
  for (const [s, path, body, contentType, what] of [
    [inspecting, '/v1/users', Buffer.from('{"note":"hello"}'), 'application/octet-stream', 'harmless JSON'],
    [inspecting, '/v1/users', png(4096), 'image/png', 'a PNG'],
    [inspecting, '/v1/users', zip, 'application/zip', 'a zip'],
    [inspecting, '/v1/users', randomBytes(4 * MEMORY), 'application/octet-stream', 'noise past body_memory_bytes'],
    [
      inspecting,
      '/v1/users',
      Buffer.concat([Buffer.from('\n\n'), png(3 * MEMORY)]),
      'application/octet-stream',
      'white space, then no JSON',
    ],
    [scanning, '/upload', Buffer.from('{"note":"hello"}'), 'application/octet-stream', 'harmless JSON'],
    [scanning, '/upload', png(4 * MEMORY), 'image/png', 'a PNG past body_memory_bytes'],
    [described, '/files', Buffer.from('{"note":"hello"}'), 'application/octet-stream', 'harmless JSON'],
    [described, '/files', png(4096), 'application/octet-stream', 'a PNG'],
    // Files that open with `{` or `[` and are no JSON to any decoder, past body_memory_bytes (the review).
    [inspecting, '/v1/users', pastMemory('{\\rtf1\\ansi '), 'application/rtf', 'RTF'],
    [inspecting, '/v1/users', pastMemory('{\\rtf1\\ansi '), 'application/octet-stream', 'RTF as octet-stream'],
    [
      inspecting,
      '/v1/users',
      pastMemory('[![Build](https://ci/x.svg)](https://ci)\n'),
      'application/octet-stream',
      'Markdown with a badge',
    ],
    [inspecting, '/v1/users', pastMemory('[network]\nhost=a\n'), 'application/octet-stream', 'an INI file'],
    [scanning, '/upload', pastMemory('[2026-11-28 12:00:00] INFO started\n'), 'text/plain', 'a log file'],
    [scanning, '/upload', pastMemory('[![Build](https://ci/x.svg)](https://ci)\n'), 'text/markdown', 'a README'],
    [scanning, '/upload', pastMemory('{\\rtf1\\ansi '), 'application/octet-stream', 'RTF'],
  ] as const) {
    for (const h2 of [false, true]) {
      for (const pieces of [undefined, 7]) {
        const r = await send(s, path, body, contentType, h2, pieces);
        const got = backend.requests.at(-1);
        t.ok(
          r.status === 200 && got?.sha256 === sha256(body),
          `${path} ${what} (${h2 ? 'h2' : 'h1'}, ${pieces ? 'in pieces' : 'whole'}): 200, the body as sent (${r.status} ${r.text.slice(0, 80)})`,
        );
      }
    }
  }
});

t.test('an image upload still streams: the backend sees it start before it has all been sent', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const inspecting = await startTestSidecar(t, backend.url, {
    limits: { body_memory_bytes: MEMORY },
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'users', path: '/v1/users', methods: ['POST'] }],
  });
  for (const h2 of [false, true]) {
    const agent = testAgent(inspecting.ca, { h2 });
    t.teardown(() => agent.close());
    const image = png(8 * MEMORY);
    const before = backend.requests.length;
    let seenEarly = false;
    const body = async function* () {
      yield image.subarray(0, 1024);
      // The rest only once the backend has the request (or after 3 s, when it never will).
      for (let waited = 0; waited < 3000 && backend.requests.length === before; waited += 20) await new Promise((r) => setTimeout(r, 20));
      seenEarly = backend.requests.length > before;
      yield image.subarray(1024);
    };
    const r = await request(`${inspecting.url}/v1/users`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: Readable.from(body()),
    });
    await r.body.text();
    t.equal(r.statusCode, 200, `${h2 ? 'h2' : 'h1'}: 200`);
    t.ok(seenEarly, `${h2 ? 'h2' : 'h1'}: the backend had the request after its first KiB`);
    t.equal(backend.requests.at(-1)?.sha256, sha256(image), `${h2 ? 'h2' : 'h1'}: and all of it, as sent`);
  }
});

t.test('oversize: allow streams a body that opens like JSON past body_memory_bytes on, whole, what was held first', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const allowing = await startTestSidecar(t, backend.url, {
    limits: { body_memory_bytes: MEMORY },
    threats: { waf: { mode: 'block', budget: '2s', oversize: 'allow' } },
    routes: [{ id: 'users', path: '/v1/users', methods: ['POST'] }],
  });
  const body = Buffer.from(`{"note":"hello","pad":"${randomBytes(2 * MEMORY).toString('hex')}"}`);
  for (const h2 of [false, true]) {
    const agent = testAgent(allowing.ca, { h2 });
    t.teardown(() => agent.close());
    for (const pieces of [undefined, 9]) {
      const sent =
        pieces === undefined
          ? body
          : Readable.from(
              Array.from({ length: pieces }, (_, i) =>
                body.subarray(Math.ceil(body.length / pieces) * i, Math.ceil(body.length / pieces) * (i + 1)),
              ),
            );
      const r = await fetchText(`${allowing.url}/v1/users`, agent, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: sent,
      });
      t.equal(r.status, 200, `${h2 ? 'h2' : 'h1'} ${pieces ? 'in pieces' : 'whole'}: 200`);
      t.equal(backend.requests.at(-1)?.sha256, sha256(body), `${h2 ? 'h2' : 'h1'} ${pieces ? 'in pieces' : 'whole'}: the body as sent`);
    }
  }
  // Within body_memory_bytes it is still inspected.
  const agent = testAgent(allowing.ca);
  t.teardown(() => agent.close());
  const r = await fetchText(`${allowing.url}/v1/users`, agent, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: SQLI,
  });
  t.equal(r.status, 403, 'an SQL injection within body_memory_bytes: 403');
});
