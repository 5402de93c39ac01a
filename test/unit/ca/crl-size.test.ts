/**
 * CRLs of a size a mesh can reach (adversarial.md: one workload renewing in a loop, then `revoke
 * --id`): past ~125 000 entries the builder spread every entry into one call (`tlv(0x30,
 * ...entries)`), V8 threw RangeError (Maximum call stack size exceeded) and no CRL was signed any
 * more — revocation stopped for the whole mesh. The DER builder is held to 300 000 entries (about
 * what a sidecar reads within its 16 MiB answer limit) and read back by the sidecar's reader; the
 * whole signed path (the store, the signature, the sidecar's verification) to 130 000, past the old
 * limit, because signing 300 000 takes ~7 s on the shared 2-core machine. Times are printed, not
 * asserted (docs/ca.md, "CRL size").
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { certificateList, tbsCertList, type CrlEntry } from '../../../src/ca/crl-der.js';
import { createCrlPublisher } from '../../../src/ca/crl.js';
import { loadCaMaterial } from '../../../src/ca/layout.js';
import { openCaStore } from '../../../src/ca/store.js';
import { ANSWER_LIMITS } from '../../../src/mesh/ca-client.js';
import { verifyCrl } from '../../../src/mesh/crl-check.js';
import { readCrl } from '../../../src/net/crl-reader.js';
import { createRevocationList } from '../../../src/mesh/revocation-list.js';
import { testCaMaterial } from '../../support/ca-harness.js';

const REASON_NAMES = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'];

/** `n` distinct random serials (16 octets, positive, as the CA draws them: src/ca/pki.ts randomSerial). */
function serials(n: number): string[] {
  const bytes = randomBytes(16 * n);
  const out = new Set<string>();
  for (let i = 0; i < n; i++) {
    bytes[16 * i] = 0x10 + ((bytes[16 * i] as number) % 0x70);
    out.add(bytes.toString('hex', 16 * i, 16 * i + 16));
  }
  if (out.size !== n) throw new Error('a serial drawn twice: run again');
  return [...out];
}

t.test('the DER builder: 300 000 entries, read back whole by the sidecar within its answer limit', async (t) => {
  const { intermediate } = await loadCaMaterial((await testCaMaterial()).dir);
  const revokedAt = new Date('2031-05-06T07:08:09Z');
  const all = serials(300_000);
  // The CA's worst case per entry: every one with a reason extension (keyCompromise).
  const entries: CrlEntry[] = all.map((serial, i) => ({ serial, revokedAt, reason: i % 7 === 0 ? 0 : 1 }));
  let started = performance.now();
  const tbs = tbsCertList({
    issuer: intermediate.subjectName.toArrayBuffer(),
    thisUpdate: revokedAt,
    nextUpdate: new Date(revokedAt.getTime() + 600_000),
    extensions: [],
    entries,
  });
  const built = performance.now() - started;
  const der = certificateList(tbs, Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]));
  started = performance.now();
  const view = readCrl(der);
  const read = performance.now() - started;
  t.comment(`300 000 entries: built in ${Math.round(built)} ms, ${der.length} bytes; read by the sidecar in ${Math.round(read)} ms`);
  t.ok(der.length < ANSWER_LIMITS.crl, `${der.length} bytes fit the sidecar's CRL answer limit (${ANSWER_LIMITS.crl})`);
  t.equal(view.serials.length, 300_000, 'the sidecar reads every entry');
  t.equal(view.serials[0], all[0]);
  t.equal(view.serials[299_999], all[299_999]);
  t.ok(view.tbs.equals(tbs), 'the signed bytes are the TBS built');
});

t.test('the signed CRL from the store: 130 000 revocations (past the ~125 000 that overflowed the stack)', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const store = openCaStore(':memory:');
  t.teardown(() => store.close());
  const now = Date.now();
  const all = serials(130_000);
  store.transaction(() => {
    all.forEach((serial, i) => {
      store.insertCertificate({
        serial,
        spiffe_id: 'spiffe://example.test/ns/flood/sa/renewer',
        kind: 'renew',
        not_before: now - 60_000,
        not_after: now + 86_400_000,
        pem: 'not needed for the CRL',
        issued_at: now - 60_000,
        key_id: serial,
      });
      store.insertRevocation({ serial, reason: REASON_NAMES[i % 4] as string, revoked_at: now - 1_000 });
    });
  });
  const publisher = createCrlPublisher({ store, ...material, nextUpdateMs: 600_000, now: () => now });
  const started = performance.now();
  const der = await publisher.refresh();
  t.comment(`130 000 revocations: signed in ${Math.round(performance.now() - started)} ms, ${der.length} bytes`);
  const view = readCrl(der);
  t.ok(verifyCrl(view, material.intermediatePem), 'the sidecar verifies its signature');
  const list = createRevocationList();
  list.update(view);
  t.equal(list.size, 130_000, 'and holds every serial');
  t.ok(list.isRevoked(all[129_999] as string));
  t.equal((await publisher.currentWithEtag()).der, der, 'served from the cache');
});
