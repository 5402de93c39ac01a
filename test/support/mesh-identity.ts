/** A MeshIdentity alone (no sidecar around it), from a `mesh:` section as in sidecar.yaml. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startMeshIdentity } from '../../src/mesh/identity.js';
import { createEventBus } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { testConfigYaml, type CapturedEvent, type Teardown } from './sidecar.js';

/** The identity, its events, and its warnings and errors in `logs`; stopped at teardown. */
export async function startIdentity(t: Teardown, mesh: Record<string, unknown>) {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-mesh-')), 'sidecar.yaml');
  const config = parseSidecarConfig(file, await testConfigYaml('http://127.0.0.1:1', { mesh })).config.mesh;
  if (!config) throw new Error('no mesh section');
  const events: CapturedEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const bus = createEventBus([(name, _severity, attributes) => events.push({ name, ...attributes })]);
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  const identity = await startMeshIdentity(config, { events: bus, logger });
  t.teardown(() => identity.stop());
  return { identity, events, logs };
}
