/**
 * JSON nested deeper than validation reads (MAX_JSON_DEPTH): ajv recurses with the data and
 * overflowed the stack near 6 000 levels against a recursive schema. A request body so deep was
 * answered 500 ERR_INTERNAL; a response body so deep went unchecked with no trace (the RangeError
 * was thrown in undici's onResponseEnd, which swallowed it).
 */
import t from 'tap';
import { createServer, type AddressInfo } from 'node:net';
import { openApiFile } from '../support/openapi-file.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const document = () =>
  openApiFile(`openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /arr:
    get:
      operationId: getArr
      responses:
        '200': { description: ok, content: { application/json: { schema: { $ref: '#/components/schemas/Arr' } } } }
    post:
      operationId: postArr
      requestBody: { required: true, content: { application/json: { schema: { $ref: '#/components/schemas/Arr' } } } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Arr: { type: array, items: { $ref: '#/components/schemas/Arr' } }
`);

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** A backend answering GET with `body(path)` as JSON, POST with `[]`; `posts` counts the POSTs it got. */
async function jsonBackend(t: Teardown, body: (path: string) => string): Promise<{ url: string; posts: () => number }> {
  let posts = 0;
  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '/';
      const text = head.startsWith('GET') ? body(path) : (posts++, '[]');
      head = '';
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, posts: () => posts };
}

t.test('a request body nested past 1000 levels: 400 ERR_REQUEST_INVALID naming the depth, never forwarded', async (t) => {
  const backend = await jsonBackend(t, () => '[]');
  const s = await startTestSidecar(t, backend.url, { openapi: { document: document(), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (body: string) =>
    fetchText(`${s.url}/arr`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  const shallow = await post(nested(1000));
  t.equal(shallow.status, 200, '1000 levels: validated and forwarded');
  for (const depth of [1001, 6000, 100_000]) {
    const res = await post(nested(depth));
    t.equal(res.status, 400, `${depth} levels: 400`);
    t.equal(res.json().code, 'ERR_REQUEST_INVALID', `${depth} levels: ERR_REQUEST_INVALID, not ERR_INTERNAL`);
    t.equal(res.json().detail, '/body nests arrays and objects deeper than 1000 levels', `${depth} levels: the detail says why`);
  }
  t.equal(backend.posts(), 1, 'none of the deeper ones reached the backend');
  t.same(
    s.logs.filter((l) => l.msg === 'unexpected error on the request path'),
    [],
    'no unexpected error logged',
  );
  t.same(
    s.events.filter((e) => e.name === 'warden.input.invalid').map((e) => e['warden.rule']),
    ['openapi.body', 'openapi.body', 'openapi.body'],
    'each refusal is warden.input.invalid, rule openapi.body',
  );
});

t.test('a response body nested too deep to validate: counted as a skipped check (too_deep), the response unchanged', async (t) => {
  const bodies: Record<string, string> = { '/arr': nested(6000) };
  const backend = await jsonBackend(t, (path) => bodies[path] ?? '[[1]]');
  const s = await startTestSidecar(t, backend.url, {
    openapi: { document: document(), allow_public: true, validation: { responses: 'report' } },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const skipped = async () => {
    const text = (await fetchText(`${s.adminUrl}/metrics`, agent)).text;
    return Number(/^warden_response_checks_skipped_total\{[^}]*reason="too_deep"[^}]*\} (\d+)/m.exec(text)?.[1] ?? -1);
  };
  t.equal(await skipped(), 0, 'the too_deep series exists from the start');
  for (const depth of [6000, 1001]) {
    bodies['/arr'] = nested(depth);
    const res = await fetchText(`${s.url}/arr`, agent);
    t.equal(res.status, 200, `${depth} levels: passed on`);
    t.equal(res.text.length, depth * 2, `${depth} levels: whole`);
  }
  // The check runs once the response has ended at the sidecar, maybe after the client had it.
  let count = 0;
  for (let i = 0; i < 100 && (count = await skipped()) < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(count, 2, 'warden_response_checks_skipped_total{reason="too_deep"} counts both');
  bodies['/arr'] = nested(1000);
  t.equal((await fetchText(`${s.url}/arr`, agent)).status, 200);
  bodies['/arr'] = '[[1]]';
  t.equal((await fetchText(`${s.url}/arr`, agent)).status, 200);
  for (let i = 0; i < 100 && !s.events.some((e) => e.name === 'warden.response.invalid'); i++) await new Promise((r) => setTimeout(r, 20));
  t.same(
    s.events.filter((e) => e.name === 'warden.response.invalid').map((e) => e['warden.detail']),
    ['/body/0/0 must be array'],
    '1000 levels is checked and valid; a shallow invalid body is still a finding',
  );
  t.equal(await skipped(), 2, 'neither counted as skipped');
  t.same(
    s.logs.filter((l) => l.msg === 'unexpected error on the request path'),
    [],
    'no unexpected error logged',
  );
});
