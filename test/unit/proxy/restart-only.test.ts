/**
 * A reload's configuration keeps the start values of what a reload does not apply (src/proxy/restart-only.ts):
 * the third review found the plan compiled from a reload's `mesh.mtls` (`require` → `optional`) while
 * the warning said the old value ran; the twentieth red-team round, the request handler reading a
 * reload's header limits and request timeout.
 */
import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import type { SidecarConfig } from '../../../src/config/types.js';
import { restartOnlyChanges, withStartValues } from '../../../src/proxy/restart-only.js';
import { testConfigYaml } from '../../support/sidecar.js';

/** A configuration as loaded, with a mesh section of its own (loading one needs a CA; the fields are what matter here). */
const withMesh = (config: SidecarConfig, mtls: string): SidecarConfig =>
  ({ ...config, mesh: { ...(config.mesh ?? {}), spiffe_id: 'spiffe://td.test/ns/a/sa/b', mtls } }) as unknown as SidecarConfig;

t.test('mesh, egress, service.name and every connection-level limit keep their start values; the rest is the new file', async (t) => {
  const startYaml = await testConfigYaml('http://127.0.0.1:1', { service: { name: 'orders' }, limits: { max_header_count: 50 } });
  const nextYaml = await testConfigYaml('http://127.0.0.1:2', {
    service: { name: 'payments' },
    limits: { max_header_count: 10, request_timeout: '20s', max_body_bytes: '2MiB' },
  });
  const started = withMesh(parseSidecarConfig('s.yaml', startYaml).config, 'require');
  const read = parseSidecarConfig('s.yaml', nextYaml);
  const next = { ...read, config: withMesh(read.config, 'optional') };
  const kept = withStartValues(next, started).config;
  t.equal((kept.mesh as { mtls: string }).mtls, 'require', 'mesh.mtls: the start value (a reload loosened it)');
  t.equal(kept.service.name, 'orders', 'service.name');
  t.equal(kept.limits.max_header_count, 50, 'a connection-level limit');
  t.equal(kept.limits.request_timeout, started.limits.request_timeout, 'another');
  t.equal(kept.limits.max_body_bytes, 2 * 1024 * 1024, 'a limit checked per request: the new file');
  t.equal(kept.upstream.url, 'http://127.0.0.1:2', 'the upstream: the new file');
  t.same(
    restartOnlyChanges(started, started, next.config).sort(),
    ['limits.max_header_count', 'limits.request_timeout', 'listeners.inbound.tls.client_certificates', 'mesh', 'service.name'],
    'the warning names each',
  );
});
