import t from 'tap';
import { webcrypto } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa } from '../../../src/ca/init.js';
import { loadCaMaterial, type CaMaterial } from '../../../src/ca/layout.js';
import { EC_P256, x509 } from '../../../src/ca/pki.js';
import type { CaClient } from '../../../src/mesh/ca-client.js';
import { verifyCrl } from '../../../src/mesh/crl-check.js';
import { readCrl } from '../../../src/net/crl-reader.js';
import { createTrustRefresher } from '../../../src/mesh/trust-refresh.js';
import { startCaUnderTest, testCaMaterial, TRUST_DOMAIN } from '../../support/ca-harness.js';
import { request, Agent } from 'undici';

/** A CRL signed by `ca`'s intermediate, with a CRL number (DER INTEGER, one octet) when given one. */
async function crlOf(
  ca: CaMaterial,
  options: { thisUpdate?: Date; number?: number; more?: x509.Extension[]; revoked?: string[] } = {},
): Promise<Buffer> {
  const { number, thisUpdate = new Date(), more = [], revoked = [] } = options;
  // With a nextUpdate, as the CA makes them (@peculiar/x509 misreads the fields after a missing one).
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.intermediate.subjectName,
    signingAlgorithm: EC_P256,
    signingKey: ca.intermediateKey,
    entries: revoked.map((serialNumber) => ({ serialNumber, revocationDate: thisUpdate })),
    extensions: [...(number === undefined ? [] : [new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x01, number]))]), ...more],
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 3600_000),
  });
  return Buffer.from(crl.rawData);
}

/** Refreshes the CRL once from a CA that serves `der` and says it signs with `intermediatePem`. */
async function refreshOnce(der: Buffer, intermediatePem: string, ours: string, bundlePem: string, initialCrl?: Buffer) {
  const client = {
    crl: async () => der,
    crlSince: async () => ({ changed: true, der, etag: undefined }),
    intermediate: async () => intermediatePem,
    bundle: async () => bundlePem,
  } as unknown as CaClient;
  const applied: Buffer[] = [];
  const signers: string[] = [];
  const failures: unknown[] = [];
  const refresher = createTrustRefresher({
    client,
    intervals: { bundle: 60_000, crl: 60_000 },
    issuers: () => [ours],
    currentBundle: () => bundlePem,
    initialCrl,
    onBundle: () => {},
    onCrl: (crl, signer) => (applied.push(crl.der), signers.push(signer)),
    onFailure: (_what, err) => failures.push(err),
  });
  await refresher.refreshNow();
  refresher.stop();
  return { applied, signers, failures };
}

t.test('root rotation: a CRL signed by the CA’s new intermediate is applied only when it chains to the bundle', async (t) => {
  const old = await loadCaMaterial((await testCaMaterial()).dir);
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-next-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const next = await loadCaMaterial(dir);
  const der = await crlOf(next);

  const rotated = await refreshOnce(der, next.intermediatePem, old.intermediatePem, old.bundlePem + next.bundlePem);
  t.same(rotated.failures, [], 'both roots trusted: nothing refused');
  t.same(rotated.applied, [der], 'the CRL of the new intermediate is applied, our certificate still from the old one');
  t.same(rotated.signers, [next.intermediatePem], 'with its signer, to be saved beside it');

  const stranger = await refreshOnce(der, next.intermediatePem, old.intermediatePem, old.bundlePem);
  t.same(stranger.applied, [], 'a signer that does not chain to the trust bundle: not applied');
  t.match(stranger.failures, [{ code: 'ERR_MESH_CRL_REFUSED', message: /not signed by an issuing CA that chains to the trust bundle/ }]);

  const forger = await webcrypto.subtle.generateKey(EC_P256, false, ['sign', 'verify']);
  const forgedCrl = await crlOf({ ...next, intermediateKey: forger.privateKey });
  const forged = await refreshOnce(forgedCrl, next.intermediatePem, old.intermediatePem, old.bundlePem + next.bundlePem);
  t.same(forged.applied, [], 'the new intermediate’s name with another key: not applied');
});

t.test('a CRL is applied only when our issuing CA signed it', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const agent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => agent.close());
  const der = Buffer.from(await (await request(`${ca.url}/v1/crl`, { dispatcher: agent })).body.arrayBuffer());
  t.ok(verifyCrl(readCrl(der), ca.intermediatePem), 'the CA’s own CRL verifies against its intermediate');
  t.notOk(verifyCrl(readCrl(der), ca.rootPem), 'not against another certificate');
  const keys = await webcrypto.subtle.generateKey(EC_P256, false, ['sign', 'verify']);
  const issuer = new x509.X509Certificate(ca.intermediatePem);
  const forged = await x509.X509CrlGenerator.create({
    issuer: issuer.subject,
    signingAlgorithm: EC_P256,
    signingKey: keys.privateKey,
    entries: [],
  });
  t.notOk(verifyCrl(readCrl(Buffer.from(forged.rawData)), ca.intermediatePem), 'a CRL with the right name but another key is refused');
});

t.test('CRL order: by CRL number; a CRL dated in the future is refused and blocks nothing', async (t) => {
  const ca = await loadCaMaterial((await testCaMaterial()).dir);
  const now = Date.now();
  const refresh = (der: Buffer, inForce?: Buffer) => refreshOnce(der, ca.intermediatePem, ca.intermediatePem, ca.bundlePem, inForce);
  const at = (offset: number, number?: number) => crlOf(ca, { thisUpdate: new Date(now + offset), number });

  const ahead = await refresh(await at(3600_000, 7));
  t.same(ahead.applied, [], 'thisUpdate an hour ahead (CA clock stepped): not applied');
  t.match(ahead.failures, [{ code: 'ERR_MESH_CRL_REFUSED', message: /dated in the future/ }]);
  t.same((await refresh(await at(60_000, 7))).failures, [], 'a minute ahead is clock skew: applied');

  // One persisted by an earlier run (before future dates were refused) is no obstacle to the next number.
  const next = await at(0, 8);
  const afterFuture = await refresh(next, await at(3600_000, 7));
  t.same(afterFuture.failures, [], 'the next CRL number after a future-dated CRL: nothing refused');
  t.same(afterFuture.applied, [next], 'and applied');

  const replay = await refresh(await at(1000, 6), await at(0, 7));
  t.same(replay.applied, [], 'a lower CRL number is refused, whatever its date');
  t.match(replay.failures, [{ code: 'ERR_MESH_CRL_REFUSED', message: /number 6.*older.*number 7/ }]);
});

t.test('CRL order: at the number in force only the same CRL passes (a CA restored from a backup reissuing it)', async (t) => {
  const ca = await loadCaMaterial((await testCaMaterial()).dir);
  const refresh = (der: Buffer, inForce?: Buffer) => refreshOnce(der, ca.intermediatePem, ca.intermediatePem, ca.bundlePem, inForce);
  const inForce = await crlOf(ca, { number: 7, revoked: ['1001', '1002'] });
  // Number 7 again, signed later, without the revocation of 1002: it would un-revoke it.
  const reissued = await crlOf(ca, { number: 7, revoked: ['1001'], thisUpdate: new Date(Date.now() + 1000) });
  const fewer = await refresh(reissued, inForce);
  t.same(fewer.applied, [], 'the same number with other content is not applied');
  t.match(fewer.failures, [{ code: 'ERR_MESH_CRL_REFUSED', message: /number of the one in force \(7\) but other content/ }]);
  const more = await refresh(await crlOf(ca, { number: 7, revoked: ['1001', '1002', '1003'] }), inForce);
  t.same(more.applied, [], 'not even with more entries: one number, one list');
  const same = await refresh(Buffer.from(inForce), inForce);
  t.same(same.failures, [], 'the same CRL again is no failure');
  const next = await crlOf(ca, { number: 8, revoked: ['1001'] });
  t.same((await refresh(next, inForce)).applied, [next], 'the next number is applied, whatever it lists');
});

t.test('a CRL our CA signed with a critical extension the sidecar does not process is refused, the one in force kept', async (t) => {
  const ca = await loadCaMaterial((await testCaMaterial()).dir);
  const inForce = await crlOf(ca, { number: 7 });
  // A delta CRL (RFC 5280 §5.2.4, critical) lists only what changed since its base: read as the whole list, it would un-revoke the rest.
  const delta = await crlOf(ca, { number: 8, more: [new x509.Extension('2.5.29.27', true, new Uint8Array([0x02, 0x01, 7]))] });
  const { applied, failures } = await refreshOnce(delta, ca.intermediatePem, ca.intermediatePem, ca.bundlePem, inForce);
  t.same(applied, [], 'not applied');
  t.match(failures, [{ code: 'ERR_MESH_CRL_REFUSED', message: /extension 2\.5\.29\.27 is critical/ }]);
  const plain = await crlOf(ca, { number: 8, more: [new x509.Extension('2.5.29.27', false, new Uint8Array([0x02, 0x01, 7]))] });
  t.same(
    (await refreshOnce(plain, ca.intermediatePem, ca.intermediatePem, ca.bundlePem, inForce)).applied,
    [plain],
    'the same extension not critical: applied',
  );
});
