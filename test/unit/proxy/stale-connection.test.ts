/**
 * Which failures the upstream retry takes for a stale pooled connection (src/proxy/stale-connection.ts):
 * the rules proxy.md states, each on its own, beside the integration test's races.
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import type { buildConnector } from 'undici';
import { isReplayableMethod, isStaleConnectionFailure, markingReads } from '../../../src/proxy/stale-connection.js';

const undiciClosed = (message: string, bytesRead: number) =>
  Object.assign(new Error(message), { code: 'UND_ERR_SOCKET', socket: { bytesRead } });

/** An error as a socket opened through markingReads reports it, after reading `bytesRead` bytes. */
function markedError(code: string, bytesRead: number): Error {
  const socket = Object.assign(new EventEmitter(), { bytesRead });
  const open = ((_options: unknown, callback: (err: null, socket: unknown) => void) =>
    callback(null, socket)) as unknown as buildConnector.connector;
  markingReads(open)({} as buildConnector.Options, () => undefined);
  const err = Object.assign(new Error(code), { code });
  socket.emit('error', err);
  return err;
}

t.test('safe methods only', async (t) => {
  for (const method of ['GET', 'HEAD', 'OPTIONS']) t.ok(isReplayableMethod(method), `${method} may go again`);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'TRACE']) t.notOk(isReplayableMethod(method), `${method} never`);
});

t.test('a close on a connection that had answered, soon after the write, with time left', async (t) => {
  t.ok(isStaleConnectionFailure(undiciClosed('other side closed', 120), 5, 5000), 'FIN on a reused connection');
  t.ok(isStaleConnectionFailure(undiciClosed('closed', 120), 5, 5000), "undici's 'closed' too");
  t.notOk(isStaleConnectionFailure(undiciClosed('other side closed', 0), 5, 5000), 'a fresh connection: the backend is down');
  t.notOk(isStaleConnectionFailure(undiciClosed('bad response', 120), 5, 5000), 'an answer undici refused is no close');
  t.ok(isStaleConnectionFailure(markedError('ECONNRESET', 120), 5, 5000), 'a reset on a connection that had read');
  t.ok(isStaleConnectionFailure(markedError('EPIPE', 120), 5, 5000), 'EPIPE likewise');
  t.notOk(isStaleConnectionFailure(markedError('EPIPE', 0), 5, 5000), 'EPIPE on a fresh connection: not retried');
  t.notOk(isStaleConnectionFailure(Object.assign(new Error('x'), { code: 'ECONNRESET' }), 5, 5000), 'a reset not marked by the connector');
  t.ok(isStaleConnectionFailure(undiciClosed('other side closed', 120), 1000, 5000), 'within 1 s of the write');
  t.notOk(isStaleConnectionFailure(undiciClosed('other side closed', 120), 1001, 5000), 'later: the backend was working on it');
  t.ok(isStaleConnectionFailure(undiciClosed('other side closed', 120), 5, 50), '50 ms of the headers deadline left');
  t.notOk(isStaleConnectionFailure(undiciClosed('other side closed', 120), 5, 49), 'less: the retry would outlive its 504');
  t.notOk(isStaleConnectionFailure(undefined, 5, 5000), 'no error object');
});
