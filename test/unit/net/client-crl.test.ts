/** listeners.inbound.tls.client_crl's reader: what it accepts, what it refuses, and how it keys a revocation. */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ClientCrlError, issuerKeyOf, readClientCrl, staleCrls } from '../../../src/net/client-crl.js';
import { makeCa, makeCrl } from '../../support/openssl-pki.js';

const rsa = makeCa('/CN=RSA CA/O=Example', 'rsa');
const ec = makeCa('/CN=EC CA/O=Example', 'ec');
const ed = makeCa('/CN=Ed CA', 'ed25519');
const bundle = Buffer.from(rsa.certPem + ec.certPem + ed.certPem);
const key = (pem: string) => issuerKeyOf(new X509Certificate(pem));
const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ClientCrlError) return err.message;
    throw err;
  }
  return 'accepted';
};

t.test('RSA, ECDSA and Ed25519 CRLs, PEM (both headers) and DER; revocations keyed by issuer and serial', async (t) => {
  const pem = Buffer.concat([makeCrl(rsa, ['1001', '0a']), makeCrl(ec, ['1001']), makeCrl(ed, [])]);
  const crl = readClientCrl('f', pem, bundle);
  t.same(
    crl.crls.map((c) => [c.issuer, c.revoked]),
    [
      ['CN=RSA CA, O=Example', 2],
      ['CN=EC CA, O=Example', 1],
      ['CN=Ed CA', 0],
    ],
  );
  t.ok(crl.revokes(key(rsa.certPem), '1001'));
  t.ok(crl.revokes(key(rsa.certPem), 'a'), 'serials canonical (leading zeros dropped)');
  t.ok(crl.revokes(key(ec.certPem), '1001'));
  t.notOk(crl.revokes(key(ed.certPem), '1001'), 'the same serial of another issuer');
  t.notOk(crl.revokes(undefined, '1001'), 'an issuer not in client_ca');
  t.equal(crl.secondsPastNextUpdate(), 0);

  const bare = Buffer.from(
    makeCrl(ec, ['7'])
      .toString()
      .replace(/X509 CRL/g, 'CRL'),
  );
  t.ok(readClientCrl('f', bare, bundle).revokes(key(ec.certPem), '7'), '-----BEGIN CRL-----');
  t.ok(readClientCrl('f', makeCrl(rsa, ['7'], { der: true }), bundle).revokes(key(rsa.certPem), '7'), 'DER');
});

t.test('refused: a CRL of a CA not in client_ca, of another key under a known name, damaged, twice one CA, not a CRL', async (t) => {
  t.match(
    refusal(() => readClientCrl('f', makeCrl(makeCa('/CN=Stranger'), []), bundle)),
    /^the CRL: its issuer is no CA certificate of client_ca/,
  );
  t.match(
    refusal(() => readClientCrl('f', makeCrl(makeCa('/CN=EC CA/O=Example', 'ec'), []), bundle)),
    /^the CRL: its signature does not verify with the key of "CN=EC CA, O=Example"/,
  );
  const der = makeCrl(rsa, ['1001'], { der: true });
  const flipped = Buffer.from(der);
  flipped[flipped.length - 5] = (flipped[flipped.length - 5] as number) ^ 1;
  t.match(
    refusal(() => readClientCrl('f', flipped, bundle)),
    /its signature does not verify/,
    'a signature bit changed',
  );
  t.match(
    refusal(() => readClientCrl('f', der.subarray(0, 100), bundle)),
    /^the CRL: unreadable CRL: /,
    'cut short',
  );
  const two = Buffer.concat([makeCrl(ec, []), makeCrl(ec, ['1'])]);
  t.match(
    refusal(() => readClientCrl('f', two, bundle)),
    /^CRL 2 of 2: a second CRL of CA "CN=EC CA, O=Example"/,
  );
  t.match(
    refusal(() => readClientCrl('f', Buffer.from(rsa.certPem), bundle)),
    /^holds no CRL/,
    'a certificate, not a CRL',
  );
  t.match(
    refusal(() => readClientCrl('f', Buffer.from('hello'), bundle)),
    /neither PEM .* nor a DER CRL/,
  );
  t.match(
    refusal(() => readClientCrl('f', Buffer.alloc(0), bundle)),
    /the file is empty/,
  );
  const cut = makeCrl(ec, [])
    .toString()
    .replace(/-----END X509 CRL-----\n$/, '');
  t.match(
    refusal(() => readClientCrl('f', Buffer.from(cut), bundle)),
    /1 of its 1 CRL blocks are damaged/,
  );
});

t.test('past its nextUpdate: accepted, and said stale; dated in the future: refused', async (t) => {
  const crl = readClientCrl('f', makeCrl(ec, ['1'], { nextUpdate: Date.now() - 60_000 }), bundle);
  t.equal(staleCrls(crl).length, 1);
  t.ok(crl.secondsPastNextUpdate() >= 60);
  const now = Date.now() - 2 * 86_400_000; // as if this host's clock were two days behind
  t.match(
    refusal(() => readClientCrl('f', makeCrl(ec, []), bundle, now)),
    /is dated in the future/,
  );
});

t.test('a CRL whose issuer is in client_ca but not marked a CA (an X.509 v1 certificate) is refused saying so', async (t) => {
  const ca = makeCa('/CN=Old CA', 'ec');
  // The same name and key, re-made as an X.509 v1 certificate: no extensions, so no basicConstraints.
  const csr = join(ca.dir, 'v1.csr');
  const v1 = join(ca.dir, 'v1.crt');
  execFileSync('openssl', ['req', '-new', '-key', ca.keyFile, '-subj', ca.subject, '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-signkey', ca.keyFile, '-days', '3', '-out', v1], { stdio: 'ignore' });
  t.equal(new X509Certificate(readFileSync(v1)).ca, false, 'Node does not take it for a CA');
  t.match(
    refusal(() => readClientCrl('clients.crl', makeCrl(ca, []), readFileSync(v1))),
    /^the CRL: its issuer is in client_ca but is not a CA certificate \(X\.509 v1, which has no basicConstraints\): reissue/,
  );
  t.match(
    refusal(() => readClientCrl('clients.crl', makeCrl(ca, []), bundle)),
    /^the CRL: its issuer is no CA certificate of client_ca/,
    'absent: as before',
  );
});
