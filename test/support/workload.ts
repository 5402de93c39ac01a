/**
 * A workload certificate for a test caller or server, enrolled at a real test CA the way a sidecar
 * does it (own key, CSR, bootstrap token over HTTPS) — for clients that need `--cert` and for
 * file-mode sidecars.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { IssuedCredentials } from '../../src/ca/api.js';
import type { CaServer } from '../../src/ca/server.js';
import { makeCsr } from './ca-harness.js';

export interface Workload {
  spiffeId: string;
  keyPem: string;
  /** Leaf + intermediate. */
  certPem: string;
  bundlePem: string;
  serial: string;
  keyFile: string;
  certFile: string;
  bundleFile: string;
}

export async function enrollWorkload(ca: CaServer, spiffeId: string, dnsNames: string[] = []): Promise<Workload> {
  const csr = await makeCsr({ spiffeId, dnsNames });
  const { token } = ca.createToken({ spiffe_id: spiffeId, dns_names: dnsNames });
  const dispatcher = new Agent({ connect: { ca: ca.rootPem } });
  const res = await request(`${ca.url}/v1/enroll`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, csr: csr.csrPem }),
  });
  const body = (await res.body.json()) as IssuedCredentials & { code?: string };
  await dispatcher.close();
  if (res.statusCode !== 201) throw new Error(`enroll ${spiffeId}: ${res.statusCode} ${body.code ?? ''}`);
  const dir = mkdtempSync(join(tmpdir(), 'warden-workload-'));
  const certPem = body.certificate + body.chain;
  const files = { keyFile: join(dir, 'key.pem'), certFile: join(dir, 'cert.pem'), bundleFile: join(dir, 'bundle.pem') };
  writeFileSync(files.keyFile, csr.keyPem, { mode: 0o600 });
  writeFileSync(files.certFile, certPem);
  writeFileSync(files.bundleFile, body.bundle);
  return { spiffeId, keyPem: csr.keyPem, certPem, bundlePem: body.bundle, serial: body.serial, ...files };
}
