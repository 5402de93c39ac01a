/** The issued X.509-SVID (DESIGN §6) and the CA hierarchy from initCa, checked by the library and by OpenSSL. */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { checkCsr } from '../../../src/ca/csr-policy.js';
import { createIssuer } from '../../../src/ca/issuer.js';
import { CA_FILES, loadCaMaterial } from '../../../src/ca/layout.js';
import { x509 } from '../../../src/ca/pki.js';
import { initCa, CaExistsError } from '../../../src/ca/init.js';
import { makeCsr, ORDERS, testCaMaterial, TRUST_DOMAIN } from '../../support/ca-harness.js';

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });

t.test('initCa: root and intermediate shapes, 0600 keys, fingerprint, refuses to overwrite', async (t) => {
  const init = await testCaMaterial();
  const root = new x509.X509Certificate(readFileSync(join(init.dir, CA_FILES.rootCert), 'utf8'));
  const intermediate = new x509.X509Certificate(readFileSync(join(init.dir, CA_FILES.intermediateCert), 'utf8'));
  t.equal(init.fingerprint, `sha256:${createHash('sha256').update(Buffer.from(root.rawData)).digest('hex')}`);
  t.match(init.fingerprint, /^sha256:[0-9a-f]{64}$/);
  const rootBc = root.getExtension(x509.BasicConstraintsExtension);
  t.ok(rootBc?.ca && rootBc.critical, 'root CA:true critical');
  const rootKu = root.getExtension(x509.KeyUsagesExtension);
  t.equal(rootKu?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  t.ok(rootKu?.critical);
  t.ok(root.notAfter.getTime() - Date.now() > 9.9 * 365 * 86_400_000, 'root ~10 years');
  const bc = intermediate.getExtension(x509.BasicConstraintsExtension);
  t.equal(bc?.pathLength, 0, 'intermediate pathLen 0');
  t.equal(
    intermediate.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
    'intermediate AKI = root SKI',
  );
  for (const key of [CA_FILES.rootKey, CA_FILES.intermediateKey, CA_FILES.adminKey]) {
    t.equal(statSync(join(init.dir, key)).mode & 0o777, 0o600, `${key} is 0600`);
  }
  t.equal(readFileSync(join(init.dir, CA_FILES.bundle), 'utf8'), init.rootPem, 'bundle.pem = the root');
  t.match(openssl('verify', '-CAfile', join(init.dir, CA_FILES.rootCert), join(init.dir, CA_FILES.intermediateCert)), /: OK/);
  await t.rejects(initCa({ trustDomain: TRUST_DOMAIN, dir: init.dir }), CaExistsError, 'never overwrites');
});

t.test('initCa with a passphrase: keys encrypted, load needs the passphrase', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-enc-')), 'ca');
  await initCa({ trustDomain: 'enc.test', dir, passphrase: 'correct horse battery' });
  t.match(readFileSync(join(dir, CA_FILES.intermediateKey), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  await t.rejects(loadCaMaterial(dir), /is encrypted: give the passphrase/);
  await t.rejects(loadCaMaterial(dir, 'wrong passphrase'), /does not decrypt/);
  const material = await loadCaMaterial(dir, 'correct horse battery');
  t.equal(material.trustDomain, 'enc.test');
});

t.test('issued SVID: one URI SAN, digitalSignature critical, EKU server+client, CA:false, AKI/SKI, validity ≤ issuer', async (t) => {
  const init = await testCaMaterial();
  const material = await loadCaMaterial(init.dir);
  const backdateMs = 5 * 60_000;
  const issuer = createIssuer({ ...material, trustDomain: TRUST_DOMAIN, lifetimeMs: 24 * 3_600_000, backdateMs });
  const csr = await checkCsr((await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] })).csrPem);
  const before = Date.now();
  const issued = await issuer.issue({ publicKey: csr.publicKey, spiffeId: ORDERS, dnsNames: ['orders.shop'], use: 'workload' });
  const cert = new x509.X509Certificate(issued.pem);

  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  t.same(
    san?.names.items.filter((n) => n.type === 'url').map((n) => n.value),
    [ORDERS],
    'exactly one URI SAN',
  );
  t.same(
    san?.names.items.filter((n) => n.type === 'dns').map((n) => n.value),
    ['orders.shop'],
  );
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  t.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
  t.ok(ku?.critical, 'key usage critical');
  t.same(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages, [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  t.ok(bc && !bc.ca && bc.critical, 'CA:false critical');
  t.equal(
    cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    material.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  t.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId, 'SKI');
  t.ok(cert.notBefore.getTime() <= before - backdateMs + 1000, 'not-before backdated');
  t.ok(cert.notAfter <= material.intermediate.notAfter, 'not-after ≤ issuer');
  t.match(issued.serial, /^[1-7][0-9a-f]{31}$/, '16-byte positive serial');
  t.equal(cert.serialNumber.toLowerCase(), issued.serial);

  const dir = mkdtempSync(join(tmpdir(), 'warden-leaf-'));
  writeFileSync(join(dir, 'leaf.pem'), issued.pem);
  const text = openssl('x509', '-in', join(dir, 'leaf.pem'), '-text', '-noout');
  t.match(text, new RegExp(`URI:${ORDERS.replace(/[/.]/g, '\\$&')}`));
  t.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
  t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  t.match(text, /Public Key Algorithm: id-ecPublicKey[\s\S]*NIST CURVE: P-256/);
  t.match(
    openssl(
      'verify',
      '-CAfile',
      join(init.dir, CA_FILES.rootCert),
      '-untrusted',
      join(init.dir, CA_FILES.intermediateCert),
      join(dir, 'leaf.pem'),
    ),
    /leaf\.pem: OK/,
  );
});

t.test('lifetime is capped at the intermediate not-after; RSA keys also get keyEncipherment', async (t) => {
  const init = await testCaMaterial();
  const material = await loadCaMaterial(init.dir);
  const issuer = createIssuer({ ...material, trustDomain: TRUST_DOMAIN, lifetimeMs: 5 * 365 * 86_400_000, backdateMs: 0 });
  const csr = await checkCsr((await makeCsr({ key: 'rsa2048' })).csrPem);
  const issued = await issuer.issue({ publicKey: csr.publicKey, spiffeId: ORDERS, use: 'workload', rsa: true });
  t.equal(issued.notAfter.getTime(), material.intermediate.notAfter.getTime(), 'capped');
  t.equal(
    issued.certificate.getExtension(x509.KeyUsagesExtension)?.usages,
    x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
  );
});

t.test('an intermediate that has expired, or has less than a minute left, issues nothing (no already-expired certificates)', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const end = material.intermediate.notAfter.getTime();
  const at = (time: number) =>
    createIssuer({ ...material, trustDomain: TRUST_DOMAIN, lifetimeMs: 24 * 3_600_000, backdateMs: 0, now: () => time });
  const csr = await checkCsr((await makeCsr({ spiffeId: ORDERS })).csrPem);
  const request = { publicKey: csr.publicKey, spiffeId: ORDERS, use: 'workload' as const };
  for (const [when, time] of [
    ['after its end', end + 3_600_000],
    ['at its end', end],
    ['30 s before its end', end - 30_000],
  ] as const) {
    await t.rejects(
      at(time).issue(request),
      { code: 'ERR_CA_ISSUER_EXPIRED', status: 503, detail: /issuing CA certificate .*expire/ },
      `refused ${when}`,
    );
  }
  const last = await at(end - 120_000).issue(request);
  t.equal(last.notAfter.getTime(), end, 'two minutes before its end: issued, capped at its end');
});

t.test('a root ending before the intermediate caps every certificate, and under a minute of it left issues nothing', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const rootEnd = new Date(Math.floor((Date.now() + 3_600_000) / 1000) * 1000);
  const issuingRoot = { notAfter: rootEnd } as x509.X509Certificate;
  const at = (time: number) =>
    createIssuer({ ...material, issuingRoot, trustDomain: TRUST_DOMAIN, lifetimeMs: 24 * 3_600_000, backdateMs: 0, now: () => time });
  const csr = await checkCsr((await makeCsr({ spiffeId: ORDERS })).csrPem);
  const request = { publicKey: csr.publicKey, spiffeId: ORDERS, use: 'workload' as const };
  t.equal(at(Date.now()).notAfter.getTime(), rootEnd.getTime(), 'the chain ends with the root');
  t.equal((await at(Date.now()).issue(request)).notAfter.getTime(), rootEnd.getTime(), 'a 24 h certificate ends with the root');
  await t.rejects(
    at(rootEnd.getTime() - 30_000).issue(request),
    { code: 'ERR_CA_ISSUER_EXPIRED', detail: /root CA certificate is about to expire/ },
    '30 s before the root ends: refused, naming the root',
  );
});
