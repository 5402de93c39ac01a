/**
 * Response validation (report mode) copies only the bodies it reads: an event stream, held open for
 * as long as its client listens, took a copy of up to 1 MiB from the budget request bodies share,
 * never read, and a few such streams left every other caller's buffered body refused 503 (red team 29).
 */
import t from 'tap';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { openApiFile } from '../support/openapi-file.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const STREAM_BYTES = 200 * 1024;

t.test('event streams in report mode hold no copy: a buffered request body still fits beside them', async (t) => {
  const open = new Set<ServerResponse>();
  const backend = createHttpServer((req, res) => {
    if (req.url?.startsWith('/events/')) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      // 200 KiB of events, then the stream stays open (its client still listening).
      res.write(`data: ${'e'.repeat(STREAM_BYTES)}\n\n`);
      open.add(res);
      return;
    }
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end('{}'); // lacks the declared `id`: a finding, once its copy is read
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const res of open) res.destroy();
    backend.closeAllConnections();
    backend.close();
  });
  const document = openApiFile(
    `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /events/{n}:
    get:
      operationId: events
      parameters: [{ name: n, in: path, required: true, schema: { type: integer } }]
      responses:
        '200':
          description: a stream
          content: { text/event-stream: { schema: { type: string } } }
        default:
          description: a problem
          content: { application/json: { schema: { type: object } } }
  /items:
    post:
      operationId: addItem
      requestBody:
        required: true
        content: { application/json: { schema: { type: object, properties: { note: { type: string } } } } }
      responses:
        '200':
          description: ok
          content: { application/json: { schema: { type: object, required: [id] } } }
`,
  );
  const s = await startTestSidecar(t, `http://127.0.0.1:${(backend.address() as { port: number }).port}`, {
    openapi: { document, allow_public: true, validation: { responses: 'report' } },
    limits: { max_buffered_bytes: '256KiB' },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const skipped = async (reason: string) => {
    const text = (await fetchText(`${s.adminUrl}/metrics`, agent)).text;
    return Number(new RegExp(`^warden_response_checks_skipped_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? -1);
  };

  const session = http2Connect(s.url, { ca: s.ca });
  t.teardown(() => session.destroy());
  for (let n = 0; n < 3; n++) {
    const stream = session.request({ ':path': `/events/${n}` });
    await new Promise<void>((resolve, reject) => {
      let received = 0;
      stream.on('data', (d: Buffer) => (received += d.length) >= STREAM_BYTES && resolve());
      stream.once('error', reject);
    });
  }
  const body = JSON.stringify({ note: 'n'.repeat(100 * 1024) });
  const post = await fetchText(`${s.url}/items`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  t.equal(post.status, 200, `a 100 KiB JSON body beside three open event streams of 200 KiB each is served (${post.text.slice(0, 120)})`);
  t.equal(await skipped('budget'), 0, 'no response check counted as skipped for its budget: the streams were never to be read');
  t.equal(s.events.filter((e) => e.name === 'warden.traffic.shed').length, 0, 'nothing shed');
  // The JSON answer is still copied and checked.
  let findings = 0;
  for (let i = 0; i < 100 && findings === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    findings = s.events.filter((e) => e.name === 'warden.response.invalid').length;
  }
  t.equal(findings, 1, 'the JSON answer without its id is reported');
});
