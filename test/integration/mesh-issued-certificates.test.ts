/**
 * A certificate the CA returns is checked before it replaces the one in use: valid now, chained to
 * the trust bundle, with a bundle that keeps the current roots. A stand-in CA built from the real
 * test CA's intermediate (so its TLS identity is the CA's, as in a broken or compromised CA) answers
 * with what each case needs; the sidecar's own identity code (startMeshIdentity) talks to it.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa } from '../../src/ca/init.js';
import { createIssuer } from '../../src/ca/issuer.js';
import { checkCsr } from '../../src/ca/csr-policy.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/ca/keys.js';
import { loadCaMaterial, serverSpiffeId, type CaMaterial } from '../../src/ca/layout.js';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startMeshIdentity } from '../../src/mesh/identity.js';
import { createEventBus } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { ORDERS, testCaMaterial, TRUST_DOMAIN } from '../support/ca-harness.js';
import { testConfigYaml, type CapturedEvent, type Teardown } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOUR = 3_600_000;

/** What the stand-in CA issues: a good certificate, or one of the broken kinds. */
type Answer = 'good' | 'expired' | 'not-yet-valid' | 'other-ca' | 'other-ca-and-bundle';

/** The stand-in CA: TLS as the real one (intermediate-issued server certificate with its SPIFFE ID). */
async function startStandInCa(t: Teardown, real: CaMaterial, other: CaMaterial) {
  const state = { answer: 'good' as Answer };
  const issuerOf = (material: CaMaterial, shift: number) =>
    createIssuer({
      intermediate: material.intermediate,
      intermediateKey: material.intermediateKey,
      trustDomain: TRUST_DOMAIN,
      lifetimeMs: 20_000, // renewal (renew_at 0.1) within 2 s
      backdateMs: 0,
      now: () => Date.now() + shift,
    });
  const keys = await generateKeyPair();
  const server = await issuerOf(real, 0).issue({
    publicKey: keys.publicKey,
    spiffeId: serverSpiffeId(TRUST_DOMAIN),
    dnsNames: ['localhost'],
    use: 'server',
    lifetimeMs: HOUR,
  });
  const https = createServer(
    {
      key: await exportPrivateKeyPem(keys.privateKey),
      cert: server.pem + real.intermediatePem,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        void (async () => {
          if (req.url === '/v1/bundle') return res.end(real.bundlePem);
          if (req.url !== '/v1/enroll' && req.url !== '/v1/renew') return res.writeHead(503).end('{}');
          const csr = await checkCsr((JSON.parse(body) as { csr: string }).csr);
          const { answer } = state;
          const material = answer.startsWith('other-ca') ? other : real;
          const shift = answer === 'expired' ? -2 * HOUR : answer === 'not-yet-valid' ? 2 * HOUR : 0;
          // Expired: issued "2 h ago" for 1 h; not yet valid: from 2 h on.
          const issued = await issuerOf(material, shift).issue({
            publicKey: csr.publicKey,
            spiffeId: ORDERS,
            dnsNames: [],
            use: 'workload',
            ...(shift !== 0 ? { lifetimeMs: HOUR } : {}),
          });
          res.writeHead(201, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              spiffe_id: ORDERS,
              serial: issued.serial,
              not_before: issued.notBefore.toISOString(),
              not_after: issued.notAfter.toISOString(),
              certificate: issued.pem,
              chain: material.intermediatePem,
              bundle: answer === 'other-ca-and-bundle' ? other.bundlePem : real.bundlePem,
            }),
          );
        })();
      });
    },
  );
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => https.close(r)));
  return { url: `https://localhost:${(https.address() as AddressInfo).port}`, state };
}

async function materials() {
  const real = await loadCaMaterial((await testCaMaterial()).dir);
  // Another CA of the same trust domain: its certificates carry the right SPIFFE ID and key, but chain elsewhere.
  const otherDir = join(mkdtempSync(join(tmpdir(), 'warden-other-ca-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir: otherDir });
  const other = await loadCaMaterial(otherDir);
  const bundleFile = join(mkdtempSync(join(tmpdir(), 'warden-roots-')), 'roots.pem');
  writeFileSync(bundleFile, real.bundlePem);
  return { real, other, bundleFile };
}

async function startIdentity(t: Teardown, mesh: Record<string, unknown>) {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-mesh-')), 'sidecar.yaml');
  const config = parseSidecarConfig(file, await testConfigYaml('http://127.0.0.1:1', { mesh })).config.mesh;
  if (!config) throw new Error('no mesh section');
  const events: CapturedEvent[] = [];
  const bus = createEventBus([(name, _severity, attributes) => events.push({ name, ...attributes })]);
  const identity = await startMeshIdentity(config, { events: bus, logger: createLogger({ level: 'silent' }) });
  t.teardown(() => identity.stop());
  return { identity, events };
}

const meshOf = (url: string, bundle: string, extra: Record<string, unknown> = {}) => ({
  spiffe_id: ORDERS,
  ca: { url, bundle, timeout: '2s' },
  bootstrap_token: 'stand-in-token',
  state_dir: mkdtempSync(join(tmpdir(), 'warden-state-')),
  refresh: { bundle: '5m', crl: '5m' },
  ...extra,
});

t.test('renewal: an unusable certificate from the CA is refused, the current one kept, and renewal retried', async (t) => {
  const { real, other, bundleFile } = await materials();
  const ca = await startStandInCa(t, real, other);
  const mesh = meshOf(ca.url, bundleFile, { renew_at: 0.1, renew_jitter: 0, max_backoff: '500ms' });
  const { identity, events } = await startIdentity(t, mesh);
  const enrolled = identity.material();
  const saved = readFileSync(join(mesh.state_dir, 'workload.pem'), 'utf8');
  const failures = () => events.filter((e) => e.name === 'warden.mesh.renewal_failed');
  const waitFor = async (what: () => boolean) => {
    const deadline = Date.now() + 15_000;
    while (!what() && Date.now() < deadline) await sleep(50);
  };

  const cases: [Answer, RegExp][] = [
    ['expired', /unusable certificate: certificate \w+ expired at /],
    ['not-yet-valid', /unusable certificate: certificate \w+ is not valid before /],
    ['other-ca', /unusable certificate: certificate \w+ does not chain to the trust bundle/],
    ['other-ca-and-bundle', /unusable certificate: the trust bundle sent with it holds none of the current roots/],
  ];
  for (const [answer, reason] of cases) {
    const before = failures().length;
    ca.state.answer = answer;
    await waitFor(() => failures().length > before);
    const failure = failures()[before];
    t.match(failure, { 'error.type': 'ERR_MESH_CERT_REFUSED', 'warden.detail': reason }, `${answer}: renewal_failed says why`);
    t.match(
      String(failure?.['warden.detail']),
      new RegExp(`serving on ${enrolled.serial} `),
      `${answer}: still serving on the current one`,
    );
    t.equal(identity.material().serial, enrolled.serial, `${answer}: the current certificate stays in use`);
    t.equal(identity.material().ca, enrolled.ca, `${answer}: the trust bundle stays`);
    t.equal(readFileSync(join(mesh.state_dir, 'workload.pem'), 'utf8'), saved, `${answer}: nothing saved`);
  }
  t.same(
    events.filter((e) => e.name === 'warden.mesh.rotated'),
    [],
    'no rotation while the CA answers with unusable certificates',
  );

  ca.state.answer = 'good';
  await waitFor(() => events.some((e) => e.name === 'warden.mesh.rotated'));
  t.not(identity.material().serial, enrolled.serial, 'a usable certificate replaces it on a later retry');
  t.equal(identity.status().lastError, undefined);
});

t.test('enrollment: an unusable certificate from the CA stops startup with a clear error, nothing saved', async (t) => {
  const { real, other, bundleFile } = await materials();
  const ca = await startStandInCa(t, real, other);
  for (const [answer, reason] of [
    ['expired', /expired at/],
    ['not-yet-valid', /is not valid before/],
    ['other-ca', /does not chain to the trust bundle/],
  ] as const) {
    ca.state.answer = answer;
    const mesh = meshOf(ca.url, bundleFile);
    await t.rejects(
      startIdentity(t, mesh),
      { code: 'ERR_MESH_ENROLL_FAILED', caCode: 'ERR_MESH_CERT_REFUSED', message: reason },
      `${answer}: startup refused`,
    );
    t.throws(() => readFileSync(join(mesh.state_dir, 'workload.pem')), { code: 'ENOENT' }, `${answer}: no workload.pem`);
  }
  ca.state.answer = 'good';
  const { identity } = await startIdentity(t, meshOf(ca.url, bundleFile));
  t.ok(identity.material().serial, 'a usable certificate: started');
});
