/**
 * What a sidecar loads is memory it keeps (idle RSS): a sidecar without telemetry export, the CA or
 * a demo identity provider must not load the OpenTelemetry SDK, the X.509 library, SQLite, jose or
 * the OpenID provider. Each import of a package is logged by a resolve hook.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestBackend } from '../support/backend.js';
import { repoRoot, spawnWarden, testConfigYaml, type Teardown } from '../support/sidecar.js';

const loadedBy = async (t: Teardown, extra: Record<string, unknown>) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const log = join(mkdtempSync(join(tmpdir(), 'warden-modules-')), 'modules.txt');
  // Once it listens, startup's imports are done (the hook appends synchronously).
  await spawnWarden(t, await testConfigYaml(backend.url, extra), {
    NODE_OPTIONS: `--import=${join(repoRoot, 'test/fixtures/module-log/register.mjs')}`,
    WARDEN_MODULE_LOG: log,
  });
  return new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean));
};

const HEAVY = [
  '@opentelemetry/sdk-logs',
  '@opentelemetry/sdk-trace-base',
  '@opentelemetry/sdk-metrics',
  '@peculiar/x509',
  'better-sqlite3',
  'jose',
  'oidc-provider',
];

t.test('a sidecar without telemetry loads none of the heavy packages it does not use', async (t) => {
  const loaded = await loadedBy(t, {});
  t.ok(loaded.has('undici') && loaded.has('pino'), 'the hook sees what the sidecar imports');
  t.same(
    HEAVY.filter((p) => loaded.has(p)),
    [],
  );
});

t.test('with OTLP export configured, the SDK is loaded (the hook sees lazy imports)', async (t) => {
  const loaded = await loadedBy(t, { telemetry: { otlp: { endpoint: 'http://127.0.0.1:9' } } });
  t.ok(loaded.has('@opentelemetry/sdk-trace-base'));
  t.ok(loaded.has('@opentelemetry/sdk-logs'));
  t.ok(loaded.has('@opentelemetry/sdk-metrics'));
});
