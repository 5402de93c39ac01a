/** The CA database: its durability settings and the queries revocation relies on. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { openCaStore } from '../../../src/ca/store.js';

t.test(
  'every commit is synced (synchronous = FULL in WAL mode): a revocation the admin was told about survives a power loss',
  async (t) => {
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
    const store = openCaStore(join(mkdtempSync(join(tmpdir(), 'warden-ca-store-')), 'ca.db'));
    t.teardown(() => store.close());
    proto.pragma = original;
    const db = connections[0];
    t.equal(db?.pragma('journal_mode', { simple: true }), 'wal', 'WAL mode');
    // 2 = FULL; 1 = NORMAL, which in WAL mode syncs only at checkpoints.
    t.equal(db?.pragma('synchronous', { simple: true }), 2, 'synchronous = FULL');
  },
);
