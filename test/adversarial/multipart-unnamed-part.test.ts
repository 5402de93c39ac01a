/**
 * A multipart part without a `name` (red-team round 20b): busboy hands it on named undefined, and
 * the `_method` body check, on every POST route by default, threw on it inside busboy's write — an
 * uncaught exception that ended the process, for one unauthenticated request. Now 400.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

t.test('a part without a name is refused 400 and the sidecar serves on', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  for (const disposition of ['form-data; x="y"', 'form-data', 'form-data; filename="a.txt"']) {
    const body = `--b\r\nContent-Disposition: ${disposition}\r\n\r\nhello\r\n--b--\r\n`;
    const r = await fetchText(`${s.url}/echo`, agent, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
      body,
    });
    t.equal(r.status, 400, `${disposition}: 400`);
    t.match(r.text, /a part without a name/, `${disposition}: the detail says why`);
    const after = await fetchText(`${s.url}/echo`, agent);
    t.equal(after.status, 200, `${disposition}: the sidecar serves on`);
  }
  t.equal(backend.requests.filter((r) => r.method === 'POST').length, 0, 'none reached the backend');
});
