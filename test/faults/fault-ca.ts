/**
 * A Warden CA in the test process for the fault suite, issuing certificates of `lifetime`. Its
 * database lives in memory-backed /dev/shm where there is one: the CA commits with fsync
 * (`synchronous = FULL`), and on a slow disk each commit held up this process — the load loop whose
 * latencies are the sidecar's measurements (stop 48's CI run saw a request held 2.1 s by a rotation on its disk).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCaServer } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';

export async function startFaultCa(t: { teardown(fn: () => unknown): void }, lifetime: string) {
  const { dir } = await testCaMaterial();
  const dbDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'warden-ca-db-'));
  t.teardown(() => rmSync(dbDir, { recursive: true, force: true }));
  const config = resolveCaConfig({
    trust_domain: TRUST_DOMAIN,
    dir,
    listen: { host: '127.0.0.1', port: 0 },
    database: { path: join(dbDir, 'ca.db') },
    certificates: { lifetime, backdate: '0s' },
    log: { level: 'silent' },
  });
  const server = await startCaServer({ config, createDatabase: true });
  t.teardown(() => server.close());
  return server;
}
