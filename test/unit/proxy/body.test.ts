import { PassThrough } from 'node:stream';
import t from 'tap';
import { readBody } from '../../../src/proxy/body.js';

const body = () => new PassThrough();
const CLOSED = { code: 'ERR_CLIENT_CLOSED' };

t.test('readBody: a whole body resolves, a client that left rejects with ClientClosedError', async (t) => {
  const whole = body();
  const read = readBody(whole, 100, 1000);
  whole.end(Buffer.from('{"a":1}'));
  t.equal((await read).toString(), '{"a":1}');

  // An h2 stream the client resets: 'aborted' is set, then Node still ends the stream.
  const reset = Object.assign(body(), { aborted: false });
  const cut = readBody(reset, 100, 1000);
  reset.write(Buffer.from('{"a":'));
  reset.aborted = true;
  reset.end();
  await t.rejects(cut, CLOSED, 'an end after the client reset the stream is not a whole body');

  const closed = body();
  const gone = readBody(closed, 100, 1000);
  closed.write(Buffer.from('{"a":'));
  closed.destroy();
  await t.rejects(gone, CLOSED, 'closed without an end');

  for (const code of ['ECONNRESET', 'ERR_HTTP2_STREAM_ERROR']) {
    const errored = body();
    const failed = readBody(errored, 100, 1000);
    errored.destroy(Object.assign(new Error('reset'), { code }));
    await t.rejects(failed, CLOSED, `${code} is the client leaving`);
  }

  const broken = body();
  const other = readBody(broken, 100, 1000);
  broken.destroy(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
  await t.rejects(other, { code: 'ENOSPC' }, 'any other error is passed on as it is');
});
