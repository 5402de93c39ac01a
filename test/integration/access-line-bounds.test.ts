/**
 * The access line cuts the path as spans and events do (1 024 characters, and says how long it
 * was): a 3 KB path of `"` cached in HPACK made each 14-byte h2 request write 8.7 KB of log, and a
 * caller sets the pace of a sidecar whose log reader is slow (docs/adversarial.md 236).
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a long path is cut to 1 024 characters in the access line, with or without headers', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  for (const accessHeaders of [false, true]) {
    const s = await startTestSidecar(t, backend.url, {
      log: { access_headers: accessHeaders },
      routes: [
        { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
        { id: 'rest', path: '/*' },
      ],
    });
    const agent = testAgent(s.ca, { h2: true });
    t.teardown(() => agent.close());
    const path = `/secret/${'%22'.repeat(1000)}`;
    t.equal((await fetchText(`${s.url}${path}`, agent)).status, 403, 'refused');
    t.equal((await fetchText(`${s.url}/short`, agent)).status, 200, 'a short path is served');
    await sleep(400); // access lines go out in batches (line-batcher.ts)
    const lines = s.logs.filter((l) => l.msg === 'request');
    const long = lines.find((l) => String(l['url.path']).startsWith('/secret/'));
    const which = accessHeaders ? 'with headers' : 'without headers';
    t.equal(String(long?.['url.path']).length, 1024, `${which}: url.path is cut to 1 024 characters`);
    t.ok(Number(long?.['url.path_length']) > 1024, `${which}: url.path_length says how long it was`);
    if (!accessHeaders) t.ok(JSON.stringify(long).length < 1500, `${which}: the line stays small (${JSON.stringify(long).length} bytes)`);
    const short = lines.find((l) => l['url.path'] === '/short');
    t.ok(short, `${which}: a short path is whole`);
    t.notOk(short && 'url.path_length' in short, `${which}: and has no url.path_length`);
  }
});
