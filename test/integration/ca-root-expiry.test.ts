/**
 * The root bounds the CA as the intermediate does: no certificate outlives it, its end is warned about
 * 30 days ahead, and a CA whose root or intermediate has expired does not start (one line naming the
 * file and the fix). A leaf used to outlive its root, and an expired root started without a word.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import type { IssuedCredentials } from '../../src/ca/api.js';
import { initCa } from '../../src/ca/init.js';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/ca/keys.js';
import { CA_FILES } from '../../src/ca/layout.js';
import { certificatePem, EC_P256, randomSerial, x509 } from '../../src/ca/pki.js';
import { startCaServer } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { makeCsr, ORDERS, repoRoot, TRUST_DOMAIN } from '../support/ca-harness.js';

const DAY = 86_400_000;

/**
 * A CA directory (warden ca init) whose root and intermediate are replaced by a pair with these ends —
 * what a hand-made intermediate late in a root's life, or a CA left running for years, looks like.
 */
async function caDirWith(rootNotAfter: Date, intermediateNotAfter: Date): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-root-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const notBefore = new Date(Math.min(rootNotAfter.getTime(), intermediateNotAfter.getTime()) - 400 * DAY);
  const rootKeys = await generateKeyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=Warden Root CA, O=${TRUST_DOMAIN}`,
    notBefore,
    notAfter: rootNotAfter,
    signingAlgorithm: EC_P256,
    keys: rootKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const keys = await generateKeyPair();
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=Warden Issuing CA, O=${TRUST_DOMAIN}`,
    issuer: root.subjectName,
    notBefore,
    notAfter: intermediateNotAfter,
    publicKey: keys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.AuthorityKeyIdentifierExtension(root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId),
    ],
  });
  writeFileSync(join(dir, CA_FILES.rootCert), certificatePem(root));
  writeFileSync(join(dir, CA_FILES.bundle), certificatePem(root));
  writeFileSync(join(dir, CA_FILES.intermediateCert), certificatePem(intermediate));
  writeFileSync(join(dir, CA_FILES.intermediateKey), await exportPrivateKeyPem(keys.privateKey), { mode: 0o600 });
  return dir;
}

t.test('a root ending before the intermediate: certificates end with the root, and its end is logged 30 days ahead', async (t) => {
  const rootEnd = new Date(Math.floor((Date.now() + 2 * DAY) / 1000) * 1000);
  const dir = await caDirWith(rootEnd, new Date(Date.now() + 365 * DAY));
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  const config = resolveCaConfig({
    trust_domain: TRUST_DOMAIN,
    dir,
    listen: { host: '127.0.0.1', port: 0 },
    certificates: { lifetime: '72h' },
  });
  const ca = await startCaServer({ config, logger });
  t.teardown(() => ca.close());
  t.match(
    logs,
    [{ level: 'error', msg: /root CA certificate \(bundle\.pem\) expires soon/, not_after: rootEnd.toISOString() }],
    'two days left: an error at startup, as for the intermediate',
  );
  const agent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => agent.close());
  const { csrPem } = await makeCsr({ spiffeId: ORDERS });
  const res = await request(`${ca.url}/v1/enroll`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: ca.createToken({ spiffe_id: ORDERS }).token, csr: csrPem }),
  });
  const issued = (await res.body.json()) as IssuedCredentials;
  t.equal(res.statusCode, 201);
  t.ok(
    Date.parse(issued.not_after) <= rootEnd.getTime(),
    `the leaf (${issued.not_after}) ends no later than the root (${rootEnd.toISOString()})`,
  );
  t.equal(issued.not_after, rootEnd.toISOString(), 'capped at the root’s end, not 72 h');
});

t.test('warden ca serve refuses an expired root or intermediate: exit 2, one line naming the file and the fix', async (t) => {
  const serve = (dir: string) => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'ca', 'serve', '-c', join(dir, CA_FILES.config)], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    return { code: r.status, stderr: r.stderr };
  };
  const expiredRoot = serve(await caDirWith(new Date(Date.now() - DAY), new Date(Date.now() + 300 * DAY)));
  t.equal(expiredRoot.code, 2, 'an expired root: exit 2 (it used to start)');
  t.match(expiredRoot.stderr, /bundle\.pem: the root that signed intermediate\.crt expired at .*root rotation/);
  t.equal(expiredRoot.stderr.trim().split('\n').length, 1, 'one line');
  const expiredIntermediate = serve(await caDirWith(new Date(Date.now() + 3000 * DAY), new Date(Date.now() - DAY)));
  t.equal(expiredIntermediate.code, 2, 'an expired intermediate: exit 2');
  t.match(expiredIntermediate.stderr, /intermediate\.crt expired at .*make a new intermediate/);
  t.equal(expiredIntermediate.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('warden ca init: the intermediate never outlives the root', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-init-')), 'ca');
  const init = await initCa({ trustDomain: TRUST_DOMAIN, dir, rootLifetimeDays: 30, intermediateLifetimeDays: 365 });
  const root = new x509.X509Certificate(init.rootPem);
  const intermediate = new x509.X509Certificate(readFileSync(join(dir, CA_FILES.intermediateCert), 'utf8'));
  t.ok(intermediate.notAfter <= root.notAfter, 'capped at the root’s end');
});
