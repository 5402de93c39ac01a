/**
 * The clamd client's pool against a real clamd, through a relay that can drop every open connection
 * while it keeps listening: what a clamd restart or its IdleTimeout does to pooled connections.
 */
import t from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { createClamdClient, type ScannerError } from '../../src/threats/clamd-client.js';
import { EICAR, startClamdRelay, startTestClamd } from '../support/clamd.js';

t.test('a pooled connection that died idle: the scan is sent again on a new one, once', async (t) => {
  const clamd = await startTestClamd(t);
  const relay = await startClamdRelay(t, clamd.port);
  const client = createClamdClient({
    address: `tcp://127.0.0.1:${relay.port}`,
    timeout: 2000,
    maxConcurrent: 8,
    streamMaxLength: 25 * 1024 * 1024,
    idleConnections: 2,
  });
  t.teardown(() => client.close());
  const dropAll = () => relay.dropAll();

  t.same(await client.scan([Buffer.from('warm the pool')]), { clean: true });
  t.equal(relay.connections, 1, 'one pooled connection');

  // Dropped, and taken by the next scan in the same turn: before the client has seen the close.
  dropAll();
  const clean = client.stream();
  clean.write(Buffer.from('a clean upload, '));
  clean.write(Buffer.from('in two chunks'));
  t.same(await clean.end(), { clean: true }, 'the scan went through on a new connection');
  t.equal(relay.connections, 2, 'one new connection');

  // The security decision is the same after a resend: an infected body is still found.
  dropAll();
  const infected = client.stream();
  infected.write(EICAR);
  t.match(await infected.end(), { clean: false, signature: /Eicar/i }, 'EICAR found after a resend');

  // The verdict requested before the close is seen: the end of stream is sent again too.
  dropAll();
  const late = client.stream();
  late.write(Buffer.from('ended before the drop is seen'));
  t.same(await late.end(), { clean: true });

  // A body over the replay limit (1 MiB) is not kept: its scan fails as before.
  dropAll();
  const big = client.stream();
  big.write(Buffer.alloc(768 * 1024, 0x61));
  big.write(Buffer.alloc(768 * 1024, 0x62));
  // `connection`, not `unreachable`: the connection was made and lost, which fail-open does not forward past.
  await t.rejects(big.end(), { name: 'ScannerError', reason: 'connection' }, 'over 1 MiB sent: not resent');

  // Once only: with the relay gone, the new connection fails too and the scan fails. Not `unreachable`:
  // a pooled connection closed, then nothing listening, is what a clamd this very scan crashed looks
  // like, which fail-open forwarded (the upload, and every one after it until clamd was back).
  t.same(await client.scan([Buffer.from('pool again')]), { clean: true });
  dropAll();
  const gone = client.stream();
  relay.stopListening();
  gone.write(Buffer.from('x'));
  await t.rejects(gone.end(), { name: 'ScannerError', reason: 'connection', message: /lost the scan/ }, 'no endless retries');
  await t.rejects(client.scan([Buffer.from('y')]), { reason: 'connection', message: /since it lost a scan/ }, 'nor unreachable after it');
});

t.test('clamd closes an idle pooled connection (its ReadTimeout) as a scan takes it: sent again, not refused', async (t) => {
  const clamd = await startTestClamd(t, { readTimeoutSeconds: 1 });
  // clamd's replies and its close reach the client 3 s late: its "COMMAND READ TIMED OUT" and close
  // of the idle session (1 to 2 s after the verdict) arrive after the next scan has taken the
  // connection — over a network, the race of a scan that takes the connection as clamd times it out.
  const relay = await startClamdRelay(t, clamd.port, { replyDelayMs: 3000 });
  const client = createClamdClient({
    address: `tcp://127.0.0.1:${relay.port}`,
    // The resent scan's verdict comes 1–2 s (the close) + 3 s (the relay) after end(): 5 s was
    // missed on a loaded host.
    timeout: 15_000,
    maxConcurrent: 8,
    streamMaxLength: 1024 * 1024,
    idleConnections: 2,
  });
  t.teardown(() => client.close());
  t.same(await client.scan([Buffer.from('warm the pool')]), { clean: true });
  const clean = client.stream();
  clean.write(Buffer.from('a clean upload'));
  // Was `protocol` ("unexpected clamd reply: COMMAND READ TIMED OUT"): 503 under either on_failure.
  t.same(await clean.end(), { clean: true }, 'clean, on a new connection');
  t.equal(relay.connections, 2, 'sent again on a new connection');
});

t.test('after a scan lost mid-way, nothing listening is `connection` until clamd answers again', async (t) => {
  const clamd = await startTestClamd(t);
  // A relay to the real clamd that can lose a scan's connection, stop listening and listen again on its port.
  let lose = false;
  const open = new Set<Socket>();
  const relay = createServer((inbound) => {
    open.add(inbound);
    const outbound = connect(clamd.port, '127.0.0.1');
    const both = () => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
    };
    inbound.on('data', (d: Buffer) => (lose ? both() : outbound.write(d)));
    outbound.on('data', (d: Buffer) => inbound.write(d));
    inbound.on('close', both).on('error', both);
    outbound.on('close', both).on('error', both);
  });
  const listen = (port = 0) =>
    new Promise<number>((done) => relay.listen(port, '127.0.0.1', () => done((relay.address() as { port: number }).port)));
  const stop = () =>
    new Promise((done) => {
      for (const s of open) s.destroy();
      relay.close(done);
    });
  const port = await listen();
  t.teardown(() => relay.close());
  const client = createClamdClient({
    address: `tcp://127.0.0.1:${port}`,
    timeout: 2000,
    maxConcurrent: 8,
    streamMaxLength: 1024 * 1024,
    idleConnections: 0,
  });
  t.teardown(() => client.close());
  const scan = () => client.scan([Buffer.from('a clean upload')]).catch((err: ScannerError) => err);

  t.same(await scan(), { clean: true }, 'clamd answers');
  await stop();
  t.match(await scan(), { reason: 'unreachable' }, 'down, no scan lost: unreachable');
  await listen(port);
  lose = true;
  t.match(await scan(), { reason: 'connection', lostAfterConnect: true }, 'a scan lost after clamd accepted it');
  lose = false;
  await stop();
  t.match(await scan(), { reason: 'connection', message: /since it lost a scan \d+ s ago/ }, 'then down: connection, not unreachable');
  await listen(port);
  t.same(await scan(), { clean: true }, 'clamd answers again');
  await stop();
  t.match(await scan(), { reason: 'unreachable' }, 'down again after that verdict: unreachable (the suspicion ended with it)');
});
