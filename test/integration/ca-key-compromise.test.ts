/**
 * keyCompromise revokes the key, not one certificate: a key certified twice (a spare token) left the
 * sibling certificate valid, off the CRL and renewable to a fresh key.
 */
import Database from 'better-sqlite3';
import t from 'tap';
import { Agent, request } from 'undici';
import type { IssuedCredentials } from '../../src/ca/api.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { x509 } from '../../src/ca/pki.js';
import { makeCsr, ORDERS, postToCa, startCaUnderTest, type TestCsr } from '../support/ca-harness.js';

type Reply = { status: number; body: IssuedCredentials & { code?: string; rule?: string } };

const post = (url: string, body: unknown, connect: { ca: string; cert?: string; key?: string }) =>
  postToCa<Reply['body']>(url, body, connect);

t.test('revoke --serial C1 --reason keyCompromise: every certificate of that key, and their renewals, go', async (t) => {
  const { ca, dbPath } = await startCaUnderTest(t);
  const k = await makeCsr({ spiffeId: ORDERS });
  const enroll = async (csr: TestCsr) =>
    (await post(`${ca.url}/v1/enroll`, { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: csr.csrPem }, { ca: ca.rootPem })).body;
  const renew = async (holder: IssuedCredentials, keyPem: string, csr: TestCsr) =>
    post(`${ca.url}/v1/renew`, { csr: csr.csrPem }, { ca: ca.rootPem, cert: holder.certificate + holder.chain, key: keyPem });
  const c1 = await enroll(k);
  const c2 = await enroll(k); // the same key K, a second token
  const fresh = await makeCsr({ spiffeId: ORDERS });
  const c2renewed = (await renew(c2, k.keyPem, fresh)).body;
  const other = await enroll(await makeCsr({ spiffeId: ORDERS })); // another key of the identity: untouched
  t.ok(c1.serial && c2.serial && c2renewed.serial && other.serial, 'four certificates');

  const result = await ca.revoke({ serial: c1.serial, reason: 'keyCompromise' });
  t.same([...result.revoked].sort(), [c1.serial, c2.serial, c2renewed.serial].sort(), 'C1, its sibling C2 (same key) and what C2 renewed');
  const status = Object.fromEntries(ca.list({ spiffe_id: ORDERS }).map((c) => [c.serial, c.status]));
  t.same(
    [status[c1.serial], status[c2.serial], status[c2renewed.serial], status[other.serial]],
    ['revoked', 'revoked', 'revoked', 'valid'],
  );
  const anonymous = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => anonymous.close());
  const crlRes = await request(`${ca.url}/v1/crl`, { dispatcher: anonymous });
  const crl = new x509.X509Crl(Buffer.from(await crlRes.body.arrayBuffer()));
  const listed = new Set(crl.entries.map((e) => canonicalSerial(e.serialNumber)));
  t.ok(listed.has(c2.serial), 'the sibling is on the CRL');
  t.ok(listed.has(c2renewed.serial), 'and its renewal');

  t.match(
    await renew(c2, k.keyPem, await makeCsr({ spiffeId: ORDERS })),
    { status: 403, body: { code: 'ERR_CA_CERT_REVOKED' } },
    'C2 renews no more',
  );

  // A certificate of the key the revocation missed (here: its row deleted by hand) is still refused at renewal.
  const db = new Database(dbPath);
  db.prepare('DELETE FROM revocations WHERE serial = ?').run(c2.serial);
  db.close();
  t.match(
    await renew(c2, k.keyPem, await makeCsr({ spiffeId: ORDERS })),
    { status: 403, body: { code: 'ERR_CA_CERT_REVOKED', detail: /key .* revoked as compromised/ } },
    'client authentication refuses a certificate whose key was revoked as compromised',
  );
});

t.test('revoke --serial with another reason: the one certificate only', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const k = await makeCsr({ spiffeId: ORDERS });
  const enroll = async () =>
    (await post(`${ca.url}/v1/enroll`, { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: k.csrPem }, { ca: ca.rootPem })).body;
  const c1 = await enroll();
  const c2 = await enroll();
  t.same((await ca.revoke({ serial: c1.serial, reason: 'superseded' })).revoked, [c1.serial]);
  t.equal(ca.list({ spiffe_id: ORDERS }).find((c) => c.serial === c2.serial)?.status, 'valid');
});
