/**
 * SIGHUPs in a burst are merged: one reload running and one waiting, which reads the file when it
 * runs. Each signal ran a reload of its own before — each compiling the whole plan on the event
 * loop and keeping a generation alive for drain_timeout (100 signals: minutes of stalled requests,
 * RSS 149 → 325 MiB) — although all but the last read the same file.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { renameSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a burst of SIGHUPs runs at most two reloads, and the last file is in force', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // An IdP whose discovery takes 1 s: each reload (its `tokens` changed) waits for it, as one
  // compiling a large OpenAPI document would for its compile, so the signals come while one runs.
  const idp = createServer((_req, res) => void setTimeout(() => res.writeHead(404).end(), 1000));
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    idp.closeAllConnections();
    idp.close();
  });
  const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  /** File i: routes /r0 … /ri, and a `tokens` of its own (another leeway), so each is a change. */
  const config = (i: number) =>
    testConfigYaml(backend.url, {
      routes: Array.from({ length: i + 1 }, (_, k) => ({ id: `r${k}`, path: `/r${k}/*` })),
      tokens: { leeway: `${30 + i}s`, issuers: [{ id: 'slow', issuer, audience: ['x'] }] },
    });
  const warden = await spawnWarden(t, await config(0));
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());

  const N = 8;
  for (let i = 1; i <= N; i++) {
    // As an operator's tooling writes it: whole, by rename.
    writeFileSync(`${warden.configFile}.tmp`, await config(i));
    renameSync(`${warden.configFile}.tmp`, warden.configFile);
    warden.child.kill('SIGHUP');
    await sleep(40);
  }
  const last = await warden.waitFor(
    (l) => l.event === 'warden.config.reloaded' && String(l['warden.detail']).startsWith(`${N + 1} routes`),
    30_000,
  );
  t.ok(last, `the last file (${N + 1} routes) was applied`);
  await sleep(2500); // longer than a reload: one still waiting would have run
  const reloads = warden.lines.filter((l) => l.event === 'warden.config.reloaded');
  t.ok(reloads.length <= 2, `${N} signals in a burst: ${reloads.length} reload(s) (at most 2: one running, one waiting)`);
  t.equal(reloads.at(-1), last, 'the last reload applied the last file');
  t.same(
    warden.lines.filter((l) => l.event === 'warden.config.reload_failed'),
    [],
    'none failed',
  );
  // Matched (401: the routes want a token with `tokens` set) against unmatched: the route table in force.
  const status = async (path: string) => (await fetchText(`${warden.url}${path}`, agent)).status;
  t.equal(await status(`/r${N}/x`), 401, `/r${N} (in the last file only) is a route`);
  t.equal(await status(`/r${N + 1}/x`), 404, `/r${N + 1} is none yet`);
  t.equal(warden.lines.filter((l) => l.msg === 'SIGHUP: reloading configuration').length, 1, 'one reload started by a signal');
  t.equal(
    warden.lines.filter((l) => l.msg === 'SIGHUP: a reload is running; one more follows it, reading the file then').length,
    1,
    'one queued behind it; the other signals merged into that one',
  );

  // A signal after the burst, alone, reloads again (nothing is left waiting or stuck).
  writeFileSync(warden.configFile, await config(N + 1));
  warden.child.kill('SIGHUP');
  await warden.waitFor((l) => l.event === 'warden.config.reloaded' && String(l['warden.detail']).startsWith(`${N + 2} routes`), 10_000);
  t.equal(await status(`/r${N + 1}/x`), 401, 'a later signal reloads as before');
});
