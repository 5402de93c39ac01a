/**
 * Reloads one after another: the file of the last reload asked for is the one in force, even when an
 * earlier reload is slow (its IdP takes seconds to answer the prefetch); and a reload that changes
 * what only a restart can apply says so.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend } from '../support/backend.js';
import { startTestSidecar, testConfigYaml } from '../support/sidecar.js';

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
  const warned = () => s.logs.filter((l) => String(l.msg).includes('change only on restart')).length;
  const changed = await testConfigYaml(backend.url, { limits: { max_requests_per_connection: 7 } });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(warned(), 1, 'limits.max_requests_per_connection: warned');
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(warned(), 1, 'the same again: no warning');
});
