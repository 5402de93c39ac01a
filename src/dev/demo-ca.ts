/**
 * The demo's Warden CA: created once in the dev folder (`warden ca init` equivalent), served on
 * loopback, with a bootstrap token for the demo sidecar and two enrolled callers for curl — one the
 * demo routes allow, one they do not.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initCa } from '../ca/init.js';
import { CA_FILES } from '../ca/layout.js';
import { startCaServer, type CaServer } from '../ca/server.js';
import { resolveCaConfig } from '../config/ca-load.js';
import { createCaClient } from '../mesh/ca-client.js';
import { createKeyAndCsr } from '../mesh/csr.js';
import type { Logger } from '../telemetry/logger.js';

export const DEMO_TRUST_DOMAIN = 'dev.warden.test';
export const demoId = (path: string) => `spiffe://${DEMO_TRUST_DOMAIN}/${path}`;

export interface DemoCaller {
  spiffeId: string;
  certFile: string;
  keyFile: string;
  serial: string;
}

export interface DemoCa {
  server: CaServer;
  dir: string;
  bundleFile: string;
  /** A bootstrap token for `spiffeId` (with DNS name localhost, for curl's host check). */
  tokenFor(spiffeId: string): string;
  /** Enrolls a caller identity and writes its key and certificate chain for curl. */
  enrollCaller(spiffeId: string, name: string): Promise<DemoCaller>;
  close(): Promise<void>;
}

export async function startDemoCa(dir: string, port: number, deps: { logger: Logger }): Promise<DemoCa> {
  const caDir = join(dir, 'ca');
  if (!existsSync(join(caDir, CA_FILES.rootCert))) await initCa({ trustDomain: DEMO_TRUST_DOMAIN, dir: caDir });
  const config = resolveCaConfig({ trust_domain: DEMO_TRUST_DOMAIN, dir: caDir, listen: { host: '127.0.0.1', port } });
  // One OpenTelemetry SDK per process: in the demo, OTEL_* variables are the sidecar's. The demo's
  // CA is disposable (its folder is the demo's): a database removed from it is made anew, where
  // `warden ca serve` refuses to start (a lost database).
  const server = await startCaServer({
    config,
    logger: deps.logger,
    env: {},
    createDatabase: !existsSync(config.database.path),
  });
  const bundleFile = join(caDir, CA_FILES.bundle);
  const client = createCaClient({ url: server.url, timeout: 5000 }, server.rootPem, DEMO_TRUST_DOMAIN);
  return {
    server,
    dir: caDir,
    bundleFile,
    tokenFor: (spiffeId) => server.createToken({ spiffe_id: spiffeId, dns_names: ['localhost'], ttl_seconds: 600 }).token,
    async enrollCaller(spiffeId, name) {
      const { keyPem, csrPem } = await createKeyAndCsr(spiffeId);
      const issued = await client.enroll(server.createToken({ spiffe_id: spiffeId }).token, csrPem);
      const certFile = join(dir, `${name}.crt`);
      const keyFile = join(dir, `${name}.key`);
      writeFileSync(certFile, issued.certificate + issued.chain);
      writeFileSync(keyFile, keyPem, { mode: 0o600 });
      return { spiffeId, certFile, keyFile, serial: issued.serial };
    },
    async close() {
      await client.close();
      await server.close();
    },
  };
}
