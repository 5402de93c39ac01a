/**
 * Revoking the CA's own server certificate was answered "revoked" and changed nothing: the CA kept
 * presenting it until its scheduled re-issue (sidecars do not check the CA's certificate against the
 * CRL). Now the CA re-issues it, with a new key, before the revocation is answered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import t from 'tap';
import { canonicalSerial } from '../../src/net/serial.js';
import { makeCsr, ORDERS, postToCa, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';

/** The serial and public key of the certificate the CA presents to a new connection. */
function presented(port: number, ca: string): Promise<{ serial: string; publicKey: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerX509Certificate()!;
      resolve({ serial: canonicalSerial(cert.serialNumber), publicKey: cert.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
      socket.end();
    });
    socket.once('error', reject);
  });
}

t.test('revoking the server certificate by serial (admin API): the CA presents a new one, with a new key, at once', async (t) => {
  const { ca, dir } = await startCaUnderTest(t);
  const before = await presented(ca.port, ca.rootPem);
  const row = ca.list({}).find((c) => c.kind === 'server');
  t.equal(row?.serial, before.serial, 'the ledger records the certificate presented');

  const admin = { ca: ca.rootPem, cert: readFileSync(join(dir, 'admin.crt'), 'utf8'), key: readFileSync(join(dir, 'admin.key'), 'utf8') };
  const answer = await postToCa<{ revoked: string[] }>(
    `${ca.url}/v1/admin/revocations`,
    { serial: before.serial, reason: 'keyCompromise' },
    admin,
  );
  t.match(answer, { status: 200, body: { revoked: [before.serial] } });

  const after = await presented(ca.port, ca.rootPem);
  t.not(after.serial, before.serial, 'the revoked certificate is no longer presented');
  t.not(after.publicKey, before.publicKey, 'a new key');
  const servers = Object.fromEntries(
    ca
      .list({})
      .filter((c) => c.kind === 'server')
      .map((c) => [c.serial, c.status]),
  );
  t.same(servers, { [before.serial]: 'revoked', [after.serial]: 'valid' }, 'the new one is in the ledger, valid');

  // The CA works on as before: an enrollment through the new certificate.
  const enrolled = await postToCa(
    `${ca.url}/v1/enroll`,
    { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem },
    { ca: ca.rootPem },
  );
  t.equal(enrolled.status, 201);
});

t.test('revoking the CA identity (--id spiffe://DOMAIN/warden/ca) re-issues too; revoking a workload does not', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const first = await presented(ca.port, ca.rootPem);
  const workload = await postToCa<{ serial: string }>(
    `${ca.url}/v1/enroll`,
    { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem },
    { ca: ca.rootPem },
  );
  await ca.revoke({ serial: workload.body.serial });
  t.equal((await presented(ca.port, ca.rootPem)).serial, first.serial, 'another revocation leaves the server certificate alone');

  t.same((await ca.revoke({ spiffe_id: `spiffe://${TRUST_DOMAIN}/warden/ca` })).revoked, [first.serial]);
  const second = await presented(ca.port, ca.rootPem);
  t.not(second.serial, first.serial, 'a new server certificate');
  t.equal(ca.list({}).find((c) => c.serial === second.serial)?.status, 'valid');
});
