/**
 * An h2 client that, with a request open, sends a frame nghttp2 takes for a connection error. On
 * Node 20 nghttp2 then sends GOAWAY and stops reading, and Node reports nothing: the session, its
 * socket and its open stream never close. Before the liveness probe (src/proxy/h2-session-tracker.ts)
 * each such connection kept its place under max_connections, a max_in_flight slot and its body's
 * lease of max_buffered_bytes for good: 7 connections made every buffered POST 503 until a restart.
 */
import { connect as tlsConnect } from 'node:tls';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { FLAG, FRAME, frame, headerBlock, rawH2, requestHeaders, type RawH2 } from '../support/h2-frames.js';
import { startTestSidecar } from '../support/sidecar.js';

const PRIORITY = 0x2;
const CONTINUATION = 0x9;
/** The probe ends a dead session two to three 5 s ticks after its last byte; margin for a loaded machine. */
const RELEASE_BOUND_MS = 20_000;

const json = (length: number): [string, string][] => [
  ['content-type', 'application/json'],
  ['content-length', String(length)],
];

interface Trigger {
  name: string;
  /** The request left open on stream 1. */
  request: Buffer;
  path: string;
  /** The frame nghttp2 ends the session for. */
  offence: Buffer;
}

const TRIGGERS: Trigger[] = [
  {
    name: 'PING over the frame size, a GET in flight (answered by the backend after 300 ms)',
    request: frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/slow?ms=300'))),
    path: '/slow',
    offence: frame(FRAME.PING, 0, 0, Buffer.alloc(20_000)),
  },
  {
    name: 'DATA over the frame size, a JSON POST body pending',
    request: frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestHeaders('/echo-data', json(524_288), 'POST'))),
    path: '/echo-data',
    offence: frame(FRAME.DATA, 0, 1, Buffer.alloc(20_000, 0x20)),
  },
  {
    name: 'CONTINUATION without HEADERS, a JSON POST body pending',
    request: frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, headerBlock(requestHeaders('/echo-cont', json(524_288), 'POST'))),
    path: '/echo-cont',
    offence: frame(CONTINUATION, FLAG.END_HEADERS, 3, Buffer.from([0x82])),
  },
  {
    name: 'PRIORITY on its own stream, a GET the backend never answers',
    request: frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, headerBlock(requestHeaders('/hang'))),
    path: '/hang',
    offence: frame(PRIORITY, 0, 1, Buffer.from([0, 0, 0, 1, 16])),
  },
];

t.test('h2 connection errors with a request open: the connection and what it held are given back', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    // The triggers and the live client fill every place: before the fix nothing else got in, ever.
    limits: { max_connections: TRIGGERS.length + 1, max_in_flight: TRIGGERS.length + 1, max_buffered_bytes: '1MiB' },
    upstream: { timeouts: { headers: '60s' } },
    routes: [{ id: 'open', path: '/*' }],
  });

  // A live client whose request waits longer than the probe's bound: it answers the PINGs, so it stays.
  const live = testAgent(s.ca, { h2: true, connections: 1 });
  t.teardown(() => live.close());
  const longPoll = fetchText(`${s.url}/slow?ms=17000`, live, { headersTimeout: 30_000 });
  while (!backend.requests.some((r) => r.url.startsWith('/slow?ms=17000'))) await new Promise((r) => setTimeout(r, 20));

  const attacks: RawH2[] = [];
  for (const trigger of TRIGGERS) {
    const h2 = await rawH2(s.port, s.ca);
    t.teardown(() => h2.socket.destroy());
    await h2.waitFor((fs) => fs.some((f) => f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) !== 0), 2000);
    h2.send(trigger.request);
    await new Promise((r) => setTimeout(r, 50));
    h2.send(trigger.offence);
    t.ok(await h2.waitFor((fs) => fs.some((f) => f.type === FRAME.GOAWAY), 2000), `${trigger.name}: GOAWAY`);
    attacks.push(h2);
  }
  const sent = Date.now();

  const tryConnect = () =>
    new Promise<boolean>((resolve) => {
      const socket = tlsConnect({ port: s.port, host: '127.0.0.1', servername: 'localhost', ca: s.ca, ALPNProtocols: ['h2'] });
      socket.on('error', () => resolve(false));
      socket.once('close', () => resolve(false));
      // Admitted: the server keeps it open past its first read (a refused one is closed at once).
      socket.once('secureConnect', () => setTimeout(() => resolve(!socket.destroyed), 200));
      setTimeout(() => socket.destroy(), 400);
    });
  t.notOk(await tryConnect(), 'while the triggers are open, max_connections is full');

  const released = await Promise.all(
    attacks.map((h2) =>
      Promise.race([h2.closed.then(() => Date.now() - sent), new Promise<number>((r) => setTimeout(() => r(-1), RELEASE_BOUND_MS))]),
    ),
  );
  TRIGGERS.forEach((trigger, i) => {
    const ms = released[i] ?? -1;
    t.ok(ms >= 0, `${trigger.name}: the sidecar closed the connection (${ms >= 0 ? `${ms} ms` : `not within ${RELEASE_BOUND_MS} ms`})`);
  });

  t.ok(await tryConnect(), 'a bystander connects again under max_connections');
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = await fetchText(`${s.url}/echo`, agent, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ hello: 'w'.repeat(1000) }),
    headersTimeout: 5000,
  }).catch((err: Error) => ({ status: err.message }));
  t.equal(post.status, 200, `a bystander's JSON POST: max_in_flight and the body budget are back (got ${post.status})`);

  const cut = s.events.filter((e) => e.name === 'warden.http.limit_exceeded' && e['error.type'] === 'ERR_CLIENT_UNRESPONSIVE');
  t.equal(cut.length, TRIGGERS.length, 'warden.http.limit_exceeded (ERR_CLIENT_UNRESPONSIVE, rule h2.ping) for each');
  t.ok(
    cut.every((e) => e['warden.rule'] === 'h2.ping'),
    'rule h2.ping',
  );
  for (const trigger of TRIGGERS) {
    // upstream_ms tells the GET /slow of the trigger (300 ms) from the live client's (17 s).
    const line = s.logs.find(
      (l) => l.msg === 'request' && l['url.path'] === trigger.path && ((l.upstream_ms as number | undefined) ?? 0) < 5000,
    );
    // The GET's response was ended by the sidecar but never sent: it must not read as delivered.
    t.equal(line?.['warden.aborted'], true, `${trigger.name}: access line says aborted (${JSON.stringify(line)})`);
  }

  const polled = await longPoll;
  t.equal(polled.status, 200, 'the live client waiting 17 s on the backend was never cut');
});
