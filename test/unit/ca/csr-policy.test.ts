/** CSR checks: proof of possession, accepted keys, names within the grant. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkCsr, namesWithinGrant } from '../../../src/ca/csr-policy.js';
import { x509 } from '../../../src/ca/pki.js';
import { makeCsr, ORDERS } from '../../support/ca-harness.js';

async function code(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'ok';
  } catch (err) {
    return (err as { code: string }).code;
  }
}

t.test('accepted keys: P-256, P-384, Ed25519, RSA-2048; RSA-1024 refused', async (t) => {
  for (const key of ['p256', 'p384', 'ed25519', 'rsa2048'] as const) {
    const csr = await checkCsr((await makeCsr({ key, spiffeId: ORDERS })).csrPem);
    t.match(csr.keyType, key === 'rsa2048' ? 'rsa' : key === 'p256' ? 'ec-p256' : key === 'p384' ? 'ec-p384' : 'ed25519', key);
    t.same(csr.uris, [ORDERS]);
  }
  const weak = await makeCsr({ key: 'rsa1024' });
  t.equal(await code(checkCsr(weak.csrPem)), 'ERR_CA_KEY_REJECTED', 'RSA-1024 refused');
});

t.test('not PEM, not PKCS#10, or a signature that does not verify → ERR_CA_CSR_INVALID', async (t) => {
  t.equal(await code(checkCsr(undefined)), 'ERR_CA_CSR_INVALID');
  t.equal(await code(checkCsr('hello')), 'ERR_CA_CSR_INVALID');
  t.equal(await code(checkCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n')), 'ERR_CA_CSR_INVALID');
  // Tamper with the last byte of the signature.
  const { csrPem } = await makeCsr({ spiffeId: ORDERS });
  const der = Buffer.from(new x509.Pkcs10CertificateRequest(csrPem).rawData);
  der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  t.equal(await code(checkCsr(tampered)), 'ERR_CA_CSR_INVALID', 'bad signature');
});

t.test('names: the granted SPIFFE ID and DNS names only', async (t) => {
  const grant = { spiffeId: ORDERS, dnsNames: ['orders.shop', 'orders'] };
  const ok = await checkCsr((await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] })).csrPem);
  t.same(namesWithinGrant(ok, grant), ['orders.shop']);
  const noSan = await checkCsr((await makeCsr()).csrPem);
  t.same(namesWithinGrant(noSan, grant), [], 'no SAN: the CA puts the granted SPIFFE ID alone');
  for (const [what, options] of [
    ['another SPIFFE ID', { spiffeId: 'spiffe://example.test/ns/shop/sa/payments' }],
    ['a DNS name not granted', { spiffeId: ORDERS, dnsNames: ['payments.shop'] }],
    ['an IP SAN', { spiffeId: ORDERS, ipAddresses: ['10.0.0.1'] }],
  ] as const) {
    const csr = await checkCsr((await makeCsr(options)).csrPem);
    t.equal(await code(() => namesWithinGrant(csr, grant)), 'ERR_CA_IDENTITY_MISMATCH', what);
  }
});

t.test('one EC key, compressed or uncompressed point in the CSR: the same keyId (renewal compares it)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-csr-'));
  const key = join(dir, 'key.pem');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  writeFileSync(key, (await makeCsr()).keyPem);
  const uncompressed = await checkCsr(openssl('req', '-new', '-key', key, '-subj', '/CN=w'));
  openssl('ec', '-in', key, '-conv_form', 'compressed', '-out', `${key}.c`);
  const compressed = await checkCsr(openssl('req', '-new', '-key', `${key}.c`, '-subj', '/CN=w'));
  t.not(Buffer.from(compressed.publicKey.rawData).length, Buffer.from(uncompressed.publicKey.rawData).length, 'other SPKI bytes');
  t.equal(compressed.keyId, uncompressed.keyId, 'the same key id');
  t.equal(
    uncompressed.keyId,
    createHash('sha256').update(Buffer.from(uncompressed.publicKey.rawData)).digest('hex'),
    'unchanged for the usual form',
  );
});

t.test(
  'a P-256 key written with explicit curve parameters: ERR_CA_KEY_REJECTED naming the fix, not "signature cannot be checked"',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-csr-'));
    const key = join(dir, 'key.pem');
    const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    writeFileSync(key, (await makeCsr()).keyPem);
    openssl('ec', '-in', key, '-param_enc', 'explicit', '-out', `${key}.x`);
    const explicit = openssl('req', '-new', '-key', `${key}.x`, '-subj', '/CN=w');
    await t.rejects(
      checkCsr(explicit),
      { code: 'ERR_CA_KEY_REJECTED', rule: 'csr.key.explicit_curve', detail: /explicit curve parameters.*named curve/ },
      'refused as a key the CA does not accept',
    );
    t.ok(await checkCsr(openssl('req', '-new', '-key', key, '-subj', '/CN=w')), 'the same key with its named curve: accepted');
  },
);
