/**
 * The clamd client's pool against a real clamd, through a relay that can drop every open connection
 * while it keeps listening: what a clamd restart or its IdleTimeout does to pooled connections.
 */
import t from 'tap';
import { createClamdClient } from '../../src/threats/clamd-client.js';
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

  // Once only: with the relay gone, the new connection fails too and the scan fails (fail-closed is the caller's).
  t.same(await client.scan([Buffer.from('pool again')]), { clean: true });
  dropAll();
  const gone = client.stream();
  relay.stopListening();
  gone.write(Buffer.from('x'));
  await t.rejects(gone.end(), { name: 'ScannerError', reason: 'unreachable' }, 'no endless retries');
});
