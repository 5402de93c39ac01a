/** The CA database: its durability settings and the queries revocation relies on. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { createCaDatabase, openCaStore } from '../../../src/ca/store.js';

t.test(
  'every commit is synced (synchronous = FULL in WAL mode): a revocation the admin was told about survives a power loss',
  async (t) => {
    const path = join(mkdtempSync(join(tmpdir(), 'warden-ca-store-')), 'ca.db');
    createCaDatabase(path, 'example.test');
    // The store's connection, caught on its way through pragma(): the setting is per connection.
    const connections: Database.Database[] = [];
    const proto = Database.prototype;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- restored below, called with its own `this`
    const original = proto.pragma;
    proto.pragma = function (this: Database.Database, source: string, options?: Database.PragmaOptions) {
      connections.push(this);
      return original.call(this, source, options);
    };
    t.teardown(() => void (proto.pragma = original));
    const store = openCaStore(path);
    t.teardown(() => store.close());
    proto.pragma = original;
    const db = connections[0];
    t.equal(db?.pragma('journal_mode', { simple: true }), 'wal', 'WAL mode');
    // 2 = FULL; 1 = NORMAL, which in WAL mode syncs only at checkpoints.
    t.equal(db?.pragma('synchronous', { simple: true }), 2, 'synchronous = FULL');
  },
);

t.test(
  'the trust domain stamp: a database from before it is stamped on first open, unless its rows are of another trust domain',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-ca-stamp-'));
    /** A schema-4 database (before the stamp) whose ledger holds the admin certificate of `trustDomain`. */
    const before = (name: string, trustDomain: string) => {
      const path = join(dir, name);
      createCaDatabase(path, trustDomain);
      const db = new Database(path);
      db.exec(`DROP TRIGGER certificates_revoked; DROP INDEX certificates_unrevoked_by_not_after; ALTER TABLE certificates DROP COLUMN revoked;
                DROP TABLE ca_meta; DROP INDEX certificates_by_not_after; DROP INDEX tokens_by_expiry; PRAGMA user_version = 4;`);
      db.prepare(
        `INSERT INTO certificates (serial, spiffe_id, kind, not_before, not_after, pem, issued_at, key_id) VALUES ('01', ?, 'admin', 0, 1, '', 0, 'k')`,
      ).run(`spiffe://${trustDomain}/warden/admin`);
      db.close();
      return path;
    };
    const stamp = (path: string) => {
      const db = new Database(path, { readonly: true });
      t.teardown(() => db.close());
      return db.prepare(`SELECT value FROM ca_meta WHERE key = 'trust_domain'`).pluck().get();
    };

    const legacy = before('legacy.db', 'example.test');
    t.throws(
      () => openCaStore(legacy, { trustDomain: 'other.test' }),
      { message: /legacy\.db: this CA database holds identities of trust domain "example\.test", not this CA's "other\.test"/ },
      'another trust domain’s rows: refused, and not stamped with the wrong domain',
    );
    const version = () => {
      const db = new Database(legacy, { readonly: true });
      try {
        return db.pragma('user_version', { simple: true });
      } finally {
        db.close();
      }
    };
    t.equal(version(), 4, 'nor migrated: its own, older CA would refuse a newer schema');
    openCaStore(legacy, { trustDomain: 'example.test' }).close();
    t.equal(stamp(legacy), 'example.test', 'its own CA stamps it on first open');
    t.throws(() => openCaStore(legacy, { trustDomain: 'other.test' }), {
      message: /legacy\.db: this CA database belongs to trust domain "example\.test", not this CA's "other\.test"/,
    });
    openCaStore(legacy, { trustDomain: 'example.test' }).close();
    t.pass('and opens again for it');
    // A look-alike trust domain (a prefix of the other) is not the same.
    t.throws(() => openCaStore(before('prefix.db', 'example.test'), { trustDomain: 'example.te' }), {
      message: /holds identities of trust domain "example\.test"/,
    });
  },
);
