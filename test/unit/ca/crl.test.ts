/**
 * The CRL builder (src/ca/crl-der.ts, src/ca/crl.ts): the same bytes as @peculiar/x509's generator,
 * a 5 000-entry CRL that OpenSSL and the library read whole, and its ETag. No timing assertions: the
 * measured speed-up is in docs/ca.md ("CRL size").
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { createCrlPublisher, etagMatches } from '../../../src/ca/crl.js';
import { tbsCertList, type CrlEntry } from '../../../src/ca/crl-der.js';
import { loadCaMaterial } from '../../../src/ca/layout.js';
import { EC_P256, randomSerial, x509 } from '../../../src/ca/pki.js';
import { createCaDatabase, openCaStore, type CaStore } from '../../../src/ca/store.js';
import { CRL_MAX_SKEW_MS } from '../../../src/net/clock-skew.js';
import { crlOrderProblem, verifyCrl } from '../../../src/mesh/crl-check.js';
import { readCrl } from '../../../src/net/crl-reader.js';
import { createRevocationList } from '../../../src/mesh/revocation-list.js';
import { testCaMaterial } from '../../support/ca-harness.js';

/** Parse limits for a large CRL (asn1js allows 10 000 nodes by default: ~1 250 entries). */
const BIG = { berOptions: { maxNodes: Infinity } };
const REASON_NAMES = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'] as const;
const REASON_CODES = [0, 1, 4, 5];

/** The signed part of a CRL, as the library encoded it. */
function tbsOf(crl: x509.X509Crl): ArrayBuffer {
  const tbs = AsnConvert.parse(crl.rawData, CertificateList, BIG).tbsCertListRaw;
  if (!tbs) throw new Error('no TBSCertList');
  return tbs;
}

/** Offset of the first differing byte, -1 when equal (a hex diff of 70 kB is unreadable). */
function firstDifference(a: Uint8Array, b: ArrayBuffer): number {
  const other = new Uint8Array(b);
  for (let i = 0; i < Math.max(a.length, other.length); i++) if (a[i] !== other[i]) return i;
  return -1;
}

t.test('tbsCertList: byte for byte what X509CrlGenerator signs', async (t) => {
  const { intermediate, intermediateKey } = await loadCaMaterial((await testCaMaterial()).dir);
  const thisUpdate = new Date('2031-05-06T07:08:09.123Z');
  // Edge serials (high bit set, leading zeros, odd length, zero) and a date past 2049 (GeneralizedTime);
  // 1 500 entries make the entry list long enough for a three-octet length.
  const serials = ['80', '00ff01', 'abc', '0', '7f', ...Array.from({ length: 1495 }, randomSerial)];
  const entries: CrlEntry[] = serials.map((serial, i) => ({
    serial,
    revokedAt: new Date(i === 3 ? Date.UTC(2051, 0, 2, 3, 4, 5) : thisUpdate.getTime() - i * 1_001),
    reason: REASON_CODES[i % 4] as number,
  }));
  const extensions = [
    new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x02, 0x00, 0x80])),
    new x509.AuthorityKeyIdentifierExtension(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ?? ''),
  ];
  const library = await x509.X509CrlGenerator.create({
    issuer: intermediate.subjectName,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 600_000),
    signingAlgorithm: EC_P256,
    signingKey: intermediateKey,
    extensions,
    entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, reason: e.reason })),
  });
  const ours = tbsCertList({
    issuer: intermediate.subjectName.toArrayBuffer(),
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 600_000),
    extensions: extensions.map((e) => e.rawData),
    entries,
  });
  t.equal(firstDifference(ours, tbsOf(library)), -1, 'same bytes');

  const empty = { issuer: intermediate.subjectName.toArrayBuffer(), thisUpdate, nextUpdate: thisUpdate, extensions: [] };
  const libraryEmpty = await x509.X509CrlGenerator.create({
    ...empty,
    issuer: intermediate.subjectName,
    signingAlgorithm: EC_P256,
    signingKey: intermediateKey,
  });
  t.equal(firstDifference(tbsCertList({ ...empty, entries: [] }), tbsOf(libraryEmpty)), -1, 'no entries, no extensions');
  t.throws(
    () => tbsCertList({ ...empty, entries: [entries[0] as CrlEntry, { ...(entries[0] as CrlEntry), serial: '0080' }] }),
    /already in the CRL/,
  );
});

t.test('a CRL of 5 000 revocations: every serial, reason and field, signed; OpenSSL agrees', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const revokedAt = Date.UTC(2030, 0, 1);
  const rows = Array.from({ length: 5000 }, (_, i) => ({
    serial: randomSerial(),
    reason: REASON_NAMES[i % 4] as string,
    revoked_at: revokedAt + i * 1000,
  }));
  let number = 41;
  const store = { unexpiredRevocations: () => rows, nextCrlNumber: () => ++number, lastRevocationRowid: () => 0 } as unknown as CaStore;
  const clock = revokedAt + 86_400_000;
  const publisher = createCrlPublisher({ store, ...material, nextUpdateMs: 600_000, now: () => clock });
  const { der, etag } = await publisher.currentWithEtag();

  const crl = new x509.X509Crl(der, BIG);
  t.ok(await crl.verify({ publicKey: material.intermediate }), 'signed by the intermediate');
  t.equal(crl.issuer, material.intermediate.subject);
  t.equal(crl.thisUpdate.getTime(), clock);
  t.equal(crl.nextUpdate?.getTime(), clock + 600_000);
  t.equal(readCrl(der).number, 42n);
  t.equal(
    crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    material.intermediate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  t.equal(crl.entries.length, 5000);
  const bySerial = new Map(crl.entries.map((e) => [e.serialNumber, e]));
  const wrong = rows.filter((r, i) => {
    const e = bySerial.get(r.serial);
    return !e || e.revocationDate.getTime() !== r.revoked_at || (e.reason ?? 0) !== REASON_CODES[i % 4];
  });
  t.same(wrong, [], 'every serial with its date and reason');

  const dir = mkdtempSync(join(tmpdir(), 'warden-crl-'));
  writeFileSync(join(dir, 'crl.der'), der);
  writeFileSync(join(dir, 'ca.pem'), material.intermediate.toString('pem'));
  const text = execFileSync(
    'openssl',
    ['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-CAfile', join(dir, 'ca.pem'), '-noout', '-text'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  t.match(text, /Version 2/);
  t.match(text, /X509v3 CRL Number:\s+42/);
  t.equal(text.match(/Serial Number:/g)?.length, 5000, 'OpenSSL lists all 5 000');
  t.equal(text.match(/Key Compromise/g)?.length, 1250);

  // The sidecar's side: past asn1js's default 10 000 nodes (~1 250 entries) it refused every CRL.
  t.ok(verifyCrl(readCrl(der), material.intermediatePem), 'the sidecar verifies it');
  const list = createRevocationList();
  list.update(readCrl(der));
  t.equal(list.size, 5000);
  t.ok(list.isRevoked((rows[4321] as { serial: string }).serial.toUpperCase()));

  t.equal((await publisher.currentWithEtag()).etag, etag, 'cached: same ETag');
  t.equal(await publisher.current(), der);
  await publisher.refresh();
  t.not((await publisher.currentWithEtag()).etag, etag, 'a new CRL, a new ETag');
});

t.test('etagMatches: lists, weak forms and *', async (t) => {
  t.ok(etagMatches('"a"', '"a"'));
  t.ok(etagMatches('"b", W/"a"', '"a"'));
  t.ok(etagMatches('*', '"a"'));
  t.ok(etagMatches(['"b"', '"a"'], '"a"'));
  t.notOk(etagMatches(undefined, '"a"'));
  t.notOk(etagMatches('"ab"', '"a"'));
  t.notOk(etagMatches('', '"a"'));
});

t.test(
  'a revoked certificate stays on the CRL past its expiry by the clock skew sidecars allow plus one period (defect 176)',
  async (t) => {
    const material = await loadCaMaterial((await testCaMaterial()).dir);
    const store = openCaStore(':memory:');
    t.teardown(() => store.close());
    const notAfter = Date.UTC(2031, 0, 1);
    const nextUpdateMs = 600_000;
    for (const [serial, endsAt] of [
      ['1a', notAfter],
      ['2b', notAfter + 3_600_000],
    ] as const) {
      store.insertCertificate({
        serial,
        spiffe_id: `spiffe://t/${serial}`,
        kind: 'enroll',
        not_before: 0,
        not_after: endsAt,
        pem: '',
        issued_at: 0,
        key_id: serial,
      });
      store.insertRevocation({ serial, reason: 'keyCompromise', revoked_at: notAfter - 60_000 });
    }
    const serialsAt = async (clock: number) =>
      [...readCrl(await createCrlPublisher({ store, ...material, nextUpdateMs, now: () => clock }).current()).serials].sort();
    t.same(await serialsAt(notAfter - 1), ['1a', '2b']);
    // A sidecar whose clock is up to CRL_MAX_SKEW_MS behind still takes 1a as valid: it must stay listed.
    t.same(await serialsAt(notAfter + 1), ['1a', '2b'], 'just past its expiry by the CA’s clock (before: dropped)');
    t.same(await serialsAt(notAfter + CRL_MAX_SKEW_MS), ['1a', '2b'], 'the whole skew later');
    t.same(await serialsAt(notAfter + CRL_MAX_SKEW_MS + nextUpdateMs - 1), ['1a', '2b'], 'and one CRL period more');
    t.same(await serialsAt(notAfter + CRL_MAX_SKEW_MS + nextUpdateMs + 1), ['2b'], 'then it goes');
  },
);

t.test('a failed signing is not tried again for twice what it cost: GETs get its error at once', async (t) => {
  const { intermediate, intermediateKey } = await loadCaMaterial((await testCaMaterial()).dir);
  let attempts = 0;
  let failing = true;
  // A store whose CRL number fails after 60 ms of work, as a large CRL's signing fails after seconds.
  const store = {
    unexpiredRevocations: () => [],
    lastRevocationRowid: () => 0,
    nextCrlNumber: () => {
      attempts++;
      const until = performance.now() + 60;
      while (performance.now() < until);
      if (failing) throw new Error('database refused the CRL number');
      return attempts;
    },
  } as unknown as CaStore;
  const publisher = createCrlPublisher({ store, intermediate, intermediateKey, nextUpdateMs: 600_000 });
  await t.rejects(publisher.current(), { code: 'ERR_INTERNAL' }, 'the first GET tries and fails');
  await t.rejects(publisher.current(), { code: 'ERR_INTERNAL' }, 'one right after gets the same error');
  t.equal(attempts, 1, 'without signing again');
  await new Promise((r) => setTimeout(r, 150));
  failing = false;
  t.ok((await publisher.current()).length > 0, 'after twice its cost, the next GET signs');
  t.equal(attempts, 2);
  await t.rejects(
    publisher.refresh().then(() => Promise.reject(new Error('no'))),
    /no/,
    'a refresh (a revocation) is never held back',
  );
});

t.test('CRL numbers never go back: a new database, a burst of revocations, a clock stepped back (row: lost database)', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const clock = { now: Date.UTC(2027, 0, 1) };
  const publisher = (store: CaStore) => createCrlPublisher({ store, ...material, nextUpdateMs: 600_000, now: () => clock.now });
  const lost = openCaStore(':memory:');
  t.teardown(() => lost.close());
  const before = publisher(lost);
  const burst: bigint[] = [];
  // Five revocations in one millisecond: five CRLs, each numbered above the last.
  for (let i = 0; i < 5; i++) burst.push(readCrl(await before.refresh()).number as bigint);
  t.same(
    burst.map((n, i) => (i === 0 ? 0n : n - (burst[i - 1] as bigint))),
    [0n, 1n, 1n, 1n, 1n],
    'one more each',
  );
  const inForce = readCrl(await before.current());

  clock.now -= 3_600_000;
  const stepped = readCrl(await before.refresh());
  t.ok((stepped.number as bigint) > (inForce.number as bigint), 'a clock stepped back an hour: still one more than the last');

  // The database is lost (or an older copy restored) and the CA starts on a new one a minute later.
  clock.now += 3_600_000 + 60_000;
  const fresh = openCaStore(':memory:');
  t.teardown(() => fresh.close());
  const after = readCrl(await publisher(fresh).current());
  t.ok(
    (after.number as bigint) > (stepped.number as bigint),
    `the new database's first CRL (number ${after.number}) is above the last one published (${stepped.number}); before: 1`,
  );
  t.equal(crlOrderProblem(after, stepped, clock.now), undefined, 'and a sidecar holding the last one applies it');
});

t.test('two publishers on one database (two CA processes): each lists the other’s revocations at once, signing only then', async (t) => {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const file = join(mkdtempSync(join(tmpdir(), 'warden-crl-shared-')), 'ca.db');
  createCaDatabase(file, 't');
  const storeOne = openCaStore(file);
  const storeTwo = openCaStore(file);
  t.teardown(() => (storeOne.close(), storeTwo.close()));
  let signings = 0;
  const counting = (store: CaStore): CaStore => ({
    ...store,
    nextCrlNumber: (atLeast?: number) => (signings++, store.nextCrlNumber(atLeast)),
  });
  const one = createCrlPublisher({ store: counting(storeOne), ...material, nextUpdateMs: 600_000 });
  const two = createCrlPublisher({ store: counting(storeTwo), ...material, nextUpdateMs: 600_000 });
  const revoke = (store: CaStore, serial: string) => {
    store.insertCertificate({
      serial,
      spiffe_id: `spiffe://t/${serial}`,
      kind: 'enroll',
      not_before: 0,
      not_after: Date.now() + 3_600_000,
      pem: '',
      issued_at: 0,
      key_id: serial,
    });
    store.insertRevocation({ serial, reason: 'keyCompromise', revoked_at: Date.now() });
  };
  const held = await two.currentWithEtag();
  t.same(readCrl(held.der).serials, [], 'CA#2 holds a CRL with no revocation');
  revoke(storeOne, '1a');
  const fromOne = readCrl(await one.refresh());
  signings = 0;
  const fromTwo = await two.currentWithEtag();
  t.same(readCrl(fromTwo.der).serials, ['1a'], 'CA#2 lists CA#1’s revocation on its next GET (before: for half its window it did not)');
  t.ok((readCrl(fromTwo.der).number as bigint) > (fromOne.number as bigint), 'numbered after CA#1’s, from the shared database');
  t.equal(signings, 1, 'one signing');
  t.equal((await two.currentWithEtag()).etag, fromTwo.etag, 'nothing changed since: the same CRL');
  t.equal(signings, 1, 'without signing');
  // Concurrent GETs after another revocation share one signing, not one each.
  revoke(storeOne, '2b');
  const answers = await Promise.all(Array.from({ length: 20 }, () => two.currentWithEtag()));
  t.equal(signings, 2, 'twenty GETs: one signing');
  t.ok(
    answers.every((a) => readCrl(a.der).serials.includes('2b')),
    'each answered with the CRL listing it',
  );
});
