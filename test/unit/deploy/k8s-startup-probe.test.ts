/**
 * The Kubernetes example's native sidecar, started for real: the sidecar.yaml of the ConfigMap in
 * compose/kubernetes/orders.yaml against a real Warden CA, with NO backend listening — which is how
 * the kubelet runs it: the app containers (the backend) start only once the sidecar's startupProbe
 * has passed. So the startupProbe's path must answer 200 without a backend, while the
 * readinessProbe's path (/readyz, which checks the backend) answers 503 until the backend listens.
 * A startupProbe on /readyz deadlocked the pod (red-team round 14 b, finding 1).
 *
 * Only what cannot run here moves: the listeners to loopback and free ports, the CA's URL and the
 * trust domain to the test CA's, the Secret's token file and the emptyDir to temp paths.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { parseAllDocuments } from 'yaml';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { startSidecar } from '../../../src/proxy/sidecar.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { freePort, repoRoot, startCaUnderTest, TRUST_DOMAIN } from '../../support/ca-harness.js';

type Json = Record<string, unknown>;
type Probe = { httpGet?: { path: string; port: string } };

const docs = parseAllDocuments(readFileSync(join(repoRoot, 'compose/kubernetes/orders.yaml'), 'utf8')).map((d) => d.toJSON() as Json);
const configMap = docs.find((d) => d.kind === 'ConfigMap') as { data: Record<string, string> };
const deployment = docs.find((d) => d.kind === 'Deployment') as { spec: { template: { spec: { initContainers: Json[] } } } };
const sidecar = deployment.spec.template.spec.initContainers.find((c) => (c.args as string[])[0] === 'proxy') ?? {};
const probePath = (name: string) => (sidecar[name] as Probe | undefined)?.httpGet?.path ?? '';

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.text() };
}

t.test('the native sidecar starts with no backend; its readiness waits for the backend', async (t) => {
  t.equal(sidecar.restartPolicy, 'Always', 'the manifest runs Warden as a native sidecar');
  const { ca } = await startCaUnderTest(t);
  const dir = mkdtempSync(join(tmpdir(), 'warden-k8s-'));
  const backendPort = await freePort(); // nothing listens there until the end

  let text = configMap.data['sidecar.yaml'] ?? '';
  const spiffeId = /spiffe_id: (\S+)/.exec(text)?.[1]?.replace('demo.warden.test', TRUST_DOMAIN) ?? '';
  const dnsNames = (/dns_names: \[([^\]]*)\]/.exec(text)?.[1] ?? '').split(',').map((s) => s.trim());
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, ca.createToken({ spiffe_id: spiffeId, dns_names: dnsNames }).token);
  text = text
    .replaceAll('host: 0.0.0.0', 'host: 127.0.0.1')
    .replace(/port: 8443\b/, 'port: 0')
    .replace(/port: 9901\b/, 'port: 0')
    .replace('http://127.0.0.1:8080', `http://127.0.0.1:${backendPort}`)
    .replace('https://warden-ca.warden.svc:8444', ca.url)
    .replace('demo.warden.test', TRUST_DOMAIN)
    .replace(/\$\{file:\/run\/secrets\/warden\/token\}/, `\${file:${tokenFile}}`)
    .replace('/var/lib/warden/state', join(dir, 'state'));
  t.match(text, new RegExp(`file:${tokenFile}`), "the Secret's token file was found and moved");
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, text);

  const started = Date.now();
  const running = await startSidecar(parseSidecarConfig(file, text, { WARDEN_CA_FINGERPRINT: ca.fingerprint }), {
    logger: createLogger({ level: 'silent' }),
    processMetrics: false,
  });
  t.teardown(() => running.drain());
  const admin = `http://127.0.0.1:${running.admin.port}`;

  const startup = await get(`${admin}${probePath('startupProbe')}`);
  t.equal(startup.status, 200, `the startupProbe (${probePath('startupProbe')}) passes without a backend`);
  const liveness = await get(`${admin}${probePath('livenessProbe')}`);
  t.equal(liveness.status, 200, `so does the livenessProbe (${probePath('livenessProbe')})`);
  const ready = await get(`${admin}${probePath('readinessProbe')}`);
  t.equal(ready.status, 503, `the readinessProbe (${probePath('readinessProbe')}) does not: no backend yet`);
  const checks = (JSON.parse(ready.body) as { checks: { name: string; ok: boolean }[] }).checks;
  t.same(
    checks.filter((c) => !c.ok).map((c) => c.name),
    ['backend'],
    'only the backend check fails: enrolled, certificate and CRL in place',
  );
  const { failureThreshold = 3, periodSeconds = 10 } = sidecar.startupProbe as { failureThreshold?: number; periodSeconds?: number };
  t.ok(Date.now() - started < failureThreshold * periodSeconds * 1000, 'well within the startupProbe budget');

  // Now the kubelet starts the backend container; readiness follows.
  const backend = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => backend.listen(backendPort, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => backend.close(resolve)));
  let status = 0;
  for (let i = 0; i < 30 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 200)); // the backend probe's answer stands for 1 s
    status = (await get(`${admin}${probePath('readinessProbe')}`)).status;
  }
  t.equal(status, 200, 'once the backend listens, the pod becomes ready');
});
