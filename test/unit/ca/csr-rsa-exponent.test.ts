/**
 * RSA public exponents: odd, 3 ≤ e < 2^32 (csr.key.rsa_exponent). Any size was certified: a 3072-bit
 * modulus may carry a 3072-bit e (with a small d), and every handshake such a certificate makes cost
 * its peers an RSA verify ~100× the usual one (red-team round 27, F3).
 */
import { generatePrimeSync, webcrypto } from 'node:crypto';
import t from 'tap';
import { checkCsr } from '../../../src/ca/csr-policy.js';
import { x509 } from '../../../src/ca/pki.js';
import { ORDERS, postToCa, startCaUnderTest } from '../../support/ca-harness.js';

const b64u = (x: bigint) => {
  let hex = x.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, 'hex').toString('base64url');
};
const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
const modinv = (a: bigint, m: bigint) => {
  let [r0, r1, s0, s1] = [a, m, 1n, 0n];
  while (r1) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
};

const ALG = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };

/**
 * A CSR for an RSA key of `bits` with public exponent `e`, or (`'big'`) with a 160-bit d and the e
 * that goes with it: as large as the modulus (the probe of the report, probe/bige.mjs).
 */
async function rsaCsr(bits: number, e: bigint | 'big', spiffeId = ORDERS): Promise<{ pem: string; eBits: number }> {
  for (;;) {
    const p = generatePrimeSync(bits / 2, { bigint: true });
    const q = generatePrimeSync(bits / 2, { bigint: true });
    const n = p * q;
    const phi = (p - 1n) * (q - 1n);
    let pub: bigint;
    let d: bigint;
    if (e === 'big') {
      d = BigInt(`0x${Buffer.from(webcrypto.getRandomValues(new Uint8Array(20))).toString('hex')}`) | 1n;
      if (gcd(d, phi) !== 1n) continue;
      pub = modinv(d, phi);
    } else {
      if (gcd(e, phi) !== 1n) continue;
      pub = e;
      d = modinv(e, phi);
    }
    const jwk = { kty: 'RSA', n: b64u(n), e: b64u(pub), d: b64u(d), p: b64u(p), q: b64u(q) };
    const full = { ...jwk, dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(modinv(q, p)) };
    const privateKey = await webcrypto.subtle.importKey('jwk', full, ALG, true, ['sign']);
    const publicKey = await webcrypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, ALG, true, ['verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=workload',
      keys: { privateKey, publicKey },
      signingAlgorithm: ALG,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
    });
    return { pem: csr.toString('pem'), eBits: pub.toString(2).length };
  }
}

async function verdict(pem: string): Promise<string> {
  try {
    await checkCsr(pem);
    return 'accepted';
  } catch (err) {
    const e = err as { code: string; rule?: string };
    return `${e.code} ${e.rule ?? ''}`.trim();
  }
}

const REFUSED = 'ERR_CA_KEY_REJECTED csr.key.rsa_exponent';

t.test('RSA public exponents: odd, 3 ≤ e < 2^32 accepted; larger refused with csr.key.rsa_exponent', async (t) => {
  const big = await rsaCsr(3072, 'big');
  t.ok(big.eBits > 3000, `the big-e key's e has ${big.eBits} bits (over 3000)`);
  t.equal(await verdict(big.pem), REFUSED, 'RSA-3072 with a 3072-bit e: refused');
  t.equal(await verdict((await rsaCsr(2048, 2n ** 32n + 15n)).pem), REFUSED, 'e = 2^32 + 15: refused');
  t.equal(await verdict((await rsaCsr(2048, 2n ** 64n + 13n)).pem), REFUSED, 'e = 2^64 + 13: refused');
  t.equal(await verdict((await rsaCsr(2048, 65537n)).pem), 'accepted', 'e = 65537 (every generator’s): accepted');
  t.equal(await verdict((await rsaCsr(2048, 3n)).pem), 'accepted', 'e = 3 (old generators, some HSMs): accepted');
  t.equal(await verdict((await rsaCsr(2048, 2n ** 32n - 5n)).pem), 'accepted', 'e = 2^32 − 5: accepted');
});

t.test('the CA answers an enrollment with a big-e key 400 ERR_CA_KEY_REJECTED and issues nothing', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const big = await rsaCsr(3072, 'big');
  const answer = await postToCa<{ code?: string; detail?: string }>(
    `${ca.url}/v1/enroll`,
    { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: big.pem },
    { ca: ca.rootPem },
  );
  t.equal(answer.status, 400);
  t.match(answer.body, { code: 'ERR_CA_KEY_REJECTED', detail: /public exponent/ });
  t.equal(ca.list({ spiffe_id: ORDERS }).length, 0, 'nothing issued');
});
