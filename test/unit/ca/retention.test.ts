/**
 * Ledger retention (src/ca/retention.ts) over a real CA database: what leaves it after
 * database.keep_expired, what stays, and that a large backlog goes in batches that let requests through.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { startRetention } from '../../../src/ca/retention.js';
import Database from 'better-sqlite3';
import { createCaDatabase, openCaStore, PRUNE_CERTIFICATES, type CaStore } from '../../../src/ca/store.js';
import { createLogger } from '../../../src/telemetry/logger.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 11, 3);
const ID = 'spiffe://example.test/ns/shop/sa/orders';

function freshStore(t: Test): CaStore {
  const path = join(mkdtempSync(join(tmpdir(), 'warden-ca-retention-')), 'ca.db');
  createCaDatabase(path, 'example.test');
  const store = openCaStore(path);
  t.teardown(() => store.close());
  return store;
}

function certificate(store: CaStore, serial: string, notAfter: number, extra: { key?: string; parent?: string } = {}): void {
  store.insertCertificate({
    serial,
    spiffe_id: ID,
    kind: extra.parent === undefined ? 'enroll' : 'renew',
    not_before: notAfter - DAY,
    not_after: notAfter,
    pem: '-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n',
    issued_at: notAfter - DAY,
    key_id: extra.key ?? `key-${serial}`,
    parent_serial: extra.parent ?? null,
  });
}

/** `rows` certificates that expired 100 days before NOW, serials `prefix` + six hex digits. */
function expiredBacklog(store: CaStore, rows: number, prefix: string): void {
  store.transaction(() => {
    for (let i = 0; i < rows; i++) certificate(store, `${prefix}${i.toString(16).padStart(6, '0')}`, NOW - 100 * DAY);
  });
}

function token(store: CaStore, id: string, expiresAt: number): void {
  store.insertToken({
    id,
    sha256: `sha-${id}`,
    spiffe_id: ID,
    dns_names: '[]',
    created_at: expiresAt - HOUR,
    expires_at: expiresAt,
    used_at: null,
    revoked_at: null,
  });
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

t.test('expired rows past keep_expired go; recent, unexpired and revoked ones stay; one audit row says so', async (t) => {
  const store = freshStore(t);
  certificate(store, 'aa01', NOW - 40 * DAY); // expired 40 days ago: goes
  certificate(store, 'aa02', NOW - 31 * DAY, { parent: 'aa01' }); // 31 days: goes
  certificate(store, 'aa03', NOW - 29 * DAY, { parent: 'aa02' }); // 29 days: inside keep_expired
  certificate(store, 'aa04', NOW + HOUR, { parent: 'aa03' }); // valid
  certificate(store, 'aa05', NOW - 400 * DAY, { key: 'leaked' }); // expired long ago, but revoked
  store.insertRevocation({ serial: 'aa05', reason: 'keyCompromise', revoked_at: NOW - 401 * DAY });
  token(store, '0000000000000001', NOW - 31 * DAY); // expired, past keep: goes
  token(store, '0000000000000002', NOW - 2 * DAY); // expired recently: stays
  token(store, '0000000000000003', NOW + HOUR); // usable: stays

  const { logger, lines } = capture();
  const retention = startRetention(store, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  t.teardown(() => retention.stop());
  t.same(await retention.pruneNow(), { certificates: 2, tokens: 1 });

  const left = store
    .listCertificates({ now: NOW })
    .map((c) => c.serial)
    .sort();
  t.same(left, ['aa03', 'aa04', 'aa05'], 'the certificates expired over 30 days ago and never revoked are gone');
  t.ok(store.isCompromisedKey('leaked'), 'a key revoked as compromised is still refused: its row stays, however old');
  t.same(
    store.unexpiredRevocations(0).map((r) => r.serial),
    ['aa05'],
    'and its revocation',
  );
  t.same(
    store
      .listTokens({})
      .map((row) => row.id)
      .sort(),
    ['0000000000000002', '0000000000000003'],
  );
  t.same(store.activeDescendantsOf('aa03', NOW), ['aa04'], 'the lineage of what is kept still holds');

  const audit = store.auditLog(5);
  t.equal(audit.length, 1);
  t.match(audit[0], {
    action: 'database.prune',
    actor: 'warden-ca',
    outcome: 'ok',
    detail: `2 certificates and 1 bootstrap tokens expired before ${new Date(NOW - 30 * DAY).toISOString()}`,
  });
  t.ok(
    lines.some((l) => l.includes('"certificates":2') && l.includes('expired ledger rows pruned')),
    'and a log line',
  );

  t.same(await retention.pruneNow(), { certificates: 0, tokens: 0 }, 'a second pass finds nothing');
  t.equal(store.auditLog(5).length, 1, 'and writes no audit row for nothing');
});

t.test('a backlog goes in batches, with the event loop let through between them', async (t) => {
  const store = freshStore(t);
  const rows = 1_700;
  expiredBacklog(store, rows, 'b');
  // Between two batches, did anything else get the event loop? A ticker re-queued with setImmediate
  // runs only if the pass yields; a pass deleting in one synchronous loop would never let it.
  let ticked = false;
  let stopTicking = false;
  const tick = () => {
    ticked = true;
    if (!stopTicking) setImmediate(tick);
  };
  const batches: boolean[] = [];
  const recording = {
    ...store,
    pruneExpired: (before: number, limit: number) => {
      batches.push(ticked);
      ticked = false;
      return store.pruneExpired(before, limit);
    },
  };
  const { logger } = capture();
  const retention = startRetention(recording, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  t.teardown(() => retention.stop());
  setImmediate(tick);
  const counts = await retention.pruneNow();
  stopTicking = true;
  t.same(counts, { certificates: rows, tokens: 0 }, 'every row counted once');
  t.equal(store.listCertificates({ now: NOW }).length, 0, 'every expired row went');
  t.equal(batches.length, 4, 'in batches of 500');
  t.same(batches.slice(1), [true, true, true], 'the event loop ran between each two batches');
});

t.test('revoked rows are never read to prune: a partial index of the unrevoked ones, kept by a trigger', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'warden-ca-retention-')), 'ca.db');
  createCaDatabase(path, 'example.test');
  let store = openCaStore(path);
  certificate(store, 'f001', NOW - 100 * DAY);
  certificate(store, 'f002', NOW - 100 * DAY);
  store.insertRevocation({ serial: 'f001', reason: 'superseded', revoked_at: NOW - 101 * DAY });
  store.close();
  // Made a schema-6 database holding a revoked and an unrevoked certificate: migration 7 flags the first.
  const raw = new Database(path);
  raw.exec(`DROP TRIGGER certificates_revoked; DROP INDEX certificates_unrevoked_by_not_after;
            ALTER TABLE certificates DROP COLUMN revoked; PRAGMA user_version = 6;`);
  raw.close();
  store = openCaStore(path);
  t.teardown(() => store.close());
  const db = new Database(path);
  t.teardown(() => db.close());
  const flag = (serial: string) => db.prepare(`SELECT revoked FROM certificates WHERE serial = ?`).pluck().get(serial);
  t.equal(flag('f001'), 1, 'migration 7 flags a certificate revoked before it');
  t.equal(flag('f002'), 0, '…and no other');
  certificate(store, 'f003', NOW - 100 * DAY);
  store.insertRevocation({ serial: 'f003', reason: 'keyCompromise', revoked_at: NOW - 99 * DAY });
  t.equal(flag('f003'), 1, 'a revocation written later flags its certificate (the trigger)');
  const plan = db
    .prepare(`EXPLAIN QUERY PLAN ${PRUNE_CERTIFICATES}`)
    .all(NOW, 500)
    .map((row) => (row as { detail: string }).detail)
    .join(' | ');
  t.match(plan, /USING (COVERING )?INDEX certificates_unrevoked_by_not_after/, `pruning reads the partial index (${plan})`);
  // A flag a damaged database lost: the revocations table still keeps the row.
  db.prepare(`UPDATE certificates SET revoked = 0 WHERE serial = 'f003'`).run();
  t.same(store.pruneExpired(NOW - 30 * DAY, 500), { certificates: 1, tokens: 0 }, 'only the unrevoked expired one goes');
  t.same(
    store
      .listCertificates({ now: NOW })
      .map((c) => c.serial)
      .sort(),
    ['f001', 'f003'],
    'the revoked ones stay, the one whose flag was lost too',
  );
});

t.test('stopped, no batch starts: the database may close under it', async (t) => {
  const store = freshStore(t);
  expiredBacklog(store, 1_200, 'c');
  const { logger } = capture();
  const retention = startRetention(store, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  const pass = retention.pruneNow();
  retention.stop();
  t.equal(await pass, undefined, 'the pass ends at the next batch');
  t.ok(store.listCertificates({ now: NOW }).length >= 200, 'leaving the rest for the next start');
});

t.test('a database that refuses the delete: a warning, and the next pass tries again', async (t) => {
  const store = freshStore(t);
  certificate(store, 'dd01', NOW - 100 * DAY);
  let fail = true;
  const failing = {
    ...store,
    pruneExpired: (before: number, limit: number) => {
      if (fail) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
      return store.pruneExpired(before, limit);
    },
  };
  const { logger, lines } = capture();
  const retention = startRetention(failing, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  t.teardown(() => retention.stop());
  t.equal(await retention.pruneNow(), undefined);
  t.ok(lines.some((l) => l.includes('could not be pruned') && l.includes('database is locked')));
  fail = false;
  t.same(await retention.pruneNow(), { certificates: 1, tokens: 0 });
});

t.test('a clock ahead of what the database has seen prunes nothing live (the red team: 40 days ahead deleted the ledger)', async (t) => {
  const store = freshStore(t);
  certificate(store, 'ee01', NOW + DAY); // live at the true time
  certificate(store, 'ee02', NOW - 40 * DAY); // expired long before: may go
  token(store, '00000000000000e1', NOW + 6 * DAY); // an unused token, usable for days
  t.equal(store.newestRecord(), NOW + 6 * DAY - HOUR, 'the newest time a row records (here the token created last)');
  let elapsed = 0;
  const { logger } = capture();
  const retention = startRetention(store, {
    keepMs: 30 * DAY,
    logger,
    newestRecord: NOW,
    now: () => NOW + 40 * DAY, // the CA's clock, 40 days ahead
    monotonic: () => elapsed,
    intervalMs: 3_600_000,
  });
  t.teardown(() => retention.stop());
  t.same(await retention.pruneNow(), { certificates: 1, tokens: 0 }, 'only what expired 30 days before the database last saw');
  t.same(
    store
      .listCertificates({ now: NOW })
      .map((c) => c.serial)
      .sort(),
    ['ee01'],
  );
  t.equal(store.listTokens({}).length, 1, 'the unused token stays');
  // Restarted, its clock still ahead, after it wrote rows stamped with that clock (the review):
  // the last pass's time is what the database vouches for, not those rows.
  retention.stop();
  certificate(store, 'ee03', NOW + 40 * DAY + DAY); // issued by the skewed CA
  const restarted = startRetention(store, {
    keepMs: 30 * DAY,
    logger,
    newestRecord: store.newestRecord(),
    now: () => NOW + 40 * DAY,
    monotonic: () => 0,
    intervalMs: 3_600_000,
  });
  t.teardown(() => restarted.stop());
  t.same(await restarted.pruneNow(), { certificates: 0, tokens: 0 }, 'a restart still ahead prunes nothing live either');
  // Time a process has really run counts (twice over, to catch up with downtime): 45 days on, the
  // live certificate has expired long ago.
  elapsed = 0;
  const later = startRetention(store, {
    keepMs: 30 * DAY,
    logger,
    now: () => NOW + 45 * DAY,
    monotonic: () => elapsed,
    intervalMs: 3_600_000,
  });
  t.teardown(() => later.stop());
  t.same(await later.pruneNow(), { certificates: 0, tokens: 0 }, 'a new process starts from the mark');
  elapsed = 23 * DAY;
  t.same(await later.pruneNow(), { certificates: 1, tokens: 1 }, 'then catches up at twice the time it runs');
});

t.test('a used token stays while the certificate it paid for is valid (a lost answer is answered again)', async (t) => {
  const store = freshStore(t);
  certificate(store, 'ff01', NOW + 60 * DAY); // a 90-day certificate, enrolled 30+ days ago
  token(store, '00000000000000f1', NOW - 31 * DAY);
  store.consumeToken('sha-00000000000000f1', NOW - 32 * DAY, { serial: 'ff01', keyId: 'key-ff01' });
  token(store, '00000000000000f2', NOW - 31 * DAY); // used for a certificate since expired and pruned
  store.consumeToken('sha-00000000000000f2', NOW - 32 * DAY, { serial: 'gone', keyId: 'k' });
  const { logger } = capture();
  const retention = startRetention(store, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  t.teardown(() => retention.stop());
  t.same(await retention.pruneNow(), { certificates: 0, tokens: 1 });
  t.same(
    store.listTokens({}).map((row) => row.id),
    ['00000000000000f1'],
    'the one whose certificate is valid stays',
  );
});

t.test('a pass stopped or failing midway still writes its audit row for what went', async (t) => {
  const store = freshStore(t);
  expiredBacklog(store, 1_200, 'aa');
  const { logger } = capture();
  const retention = startRetention(store, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  const pass = retention.pruneNow();
  retention.stop();
  await pass;
  t.match(store.auditLog(5), [
    { action: 'database.prune', detail: /^500 certificates and 0 bootstrap tokens expired before .* \(stopped before the end/ },
  ]);

  let calls = 0;
  const failing = {
    ...store,
    pruneExpired: (before: number, limit: number) => {
      if (++calls === 2) throw new Error('database is locked');
      return store.pruneExpired(before, limit);
    },
  };
  const again = startRetention(failing, { keepMs: 30 * DAY, logger, now: () => NOW, intervalMs: 3_600_000 });
  t.teardown(() => again.stop());
  t.equal(await again.pruneNow(), undefined);
  t.match(store.auditLog(1), [{ detail: /^500 certificates .*\(a batch failed/ }], 'the first batch, accounted for');
});
