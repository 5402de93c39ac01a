/**
 * Reloads one after another: the file of the last reload asked for is the one in force, even when an
 * earlier reload is slow (its IdP takes seconds to answer the prefetch); and a reload that changes
 * what only a restart can apply says so; and a SIGHUP while `warden proxy` starts is kept for after.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend } from '../support/backend.js';
import { spawnWarden, startTestSidecar, testConfigYaml } from '../support/sidecar.js';

t.test('a slow reload does not commit after a later one', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // An IdP whose discovery takes 1 s: the first reload waits for it before it can commit.
  const idp = createServer((_req, res) => void setTimeout(() => res.writeHead(404).end(), 1000));
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    idp.closeAllConnections();
    idp.close();
  });
  const issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  const s = await startTestSidecar(t, backend.url, { routes: [{ id: 'v0', path: '/*' }] });
  const file = s.sidecar.current.loaded.file;
  const v1 = await testConfigYaml(backend.url, {
    routes: [{ id: 'v1', path: '/*' }],
    tokens: { issuers: [{ id: 'slow', issuer, audience: ['x'] }] },
  });
  const v2 = await testConfigYaml(backend.url, { routes: [{ id: 'v2', path: '/*' }] });

  const first = s.sidecar.reload(() => parseSidecarConfig(file, v1));
  await new Promise((r) => setTimeout(r, 100));
  const second = s.sidecar.reload(() => parseSidecarConfig(file, v2));
  t.same(await Promise.all([first, second]), [true, true]);
  t.same(
    s.sidecar.current.config.routes.map((r) => r.id),
    ['v2'],
    'the later file is in force',
  );
});

t.test('connection limits and egress change only on restart, and a reload says so', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {});
  const file = s.sidecar.current.loaded.file;
  const warned = () => s.logs.filter((l) => /changes? only on restart/.test(String(l.msg))).length;
  const changed = await testConfigYaml(backend.url, { limits: { max_requests_per_connection: 7 } });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(warned(), 1, 'limits.max_requests_per_connection: warned');
  t.match(
    s.logs.find((l) => /changes? only on restart/.test(String(l.msg)))?.msg,
    /^limits\.max_requests_per_connection changes only on restart: still running with the old value$/,
    'naming the setting',
  );
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(warned(), 1, 'the same again: no warning');
});

t.test('SIGHUP while warden proxy is starting: it starts, then reloads (the signal ended it before)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The OpenAPI document by URL: its first request is held until the signal has been sent.
  const doc =
    'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /items:\n    get:\n      responses: { "200": { description: ok } }\n';
  let arrived: () => void = () => undefined;
  const firstRequest = new Promise<void>((r) => (arrived = r));
  let release: () => void = () => undefined;
  const released = new Promise<void>((r) => (release = r));
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    arrived();
    void released.then(() => res.writeHead(200, { 'content-type': 'application/yaml' }).end(doc));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const document = `http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.yaml`;
  const config = await testConfigYaml(backend.url, { openapi: { document, allow_public: true } });

  const w = await spawnWarden(t, config, {}, async (child) => {
    await firstRequest;
    child.kill('SIGHUP');
    // The signal is delivered before the document is: the process is still starting.
    await new Promise((r) => setTimeout(r, 200));
    release();
  });
  t.equal(w.child.exitCode, null, 'still running');
  await w.waitFor((l) => l.msg === 'SIGHUP came while starting: reloading configuration');
  await w.waitFor((l) => l['event.name'] === 'warden.config.reloaded' || l.event === 'warden.config.reloaded');
  t.equal(requests, 2, 'the reload read the document again');
  t.equal(w.child.exitCode, null, 'and runs on');
});
