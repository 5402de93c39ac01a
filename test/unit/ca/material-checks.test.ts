/**
 * A CA directory or database mixed up with another one is refused at start with the file named:
 * before, another CA's intermediate key (or intermediate) started "fine" and failed every
 * handshake, another application's SQLite file was adopted, and a corrupt one said only
 * "file is not a database". A missing one is refused too: only warden ca init makes one.
 */
import { copyFileSync, cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { initCa } from '../../../src/ca/init.js';
import { CA_FILES, loadCaMaterial } from '../../../src/ca/layout.js';
import { createCaDatabase, openCaStore } from '../../../src/ca/store.js';

const TD = 'example.test';

t.test('intermediate key and certificate from different CAs, or an intermediate of another root: refused', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'warden-ca-mix-'));
  const [a, b] = [join(base, 'a'), join(base, 'b')];
  await initCa({ trustDomain: TD, dir: a });
  await initCa({ trustDomain: TD, dir: b });
  t.ok(await loadCaMaterial(a), 'a CA directory as made loads');

  const wrongKey = join(base, 'wrong-key');
  cpSync(a, wrongKey, { recursive: true });
  copyFileSync(join(b, CA_FILES.intermediateKey), join(wrongKey, CA_FILES.intermediateKey));
  await t.rejects(loadCaMaterial(wrongKey), { message: /intermediate\.key is not the key of .*intermediate\.crt/ });

  const wrongPair = join(base, 'wrong-pair');
  cpSync(a, wrongPair, { recursive: true });
  for (const f of [CA_FILES.intermediateKey, CA_FILES.intermediateCert]) copyFileSync(join(b, f), join(wrongPair, f));
  await t.rejects(loadCaMaterial(wrongPair), { message: /intermediate\.crt is not signed by a root in .*bundle\.pem/ });
});

t.test('a database that is not this CA’s, or not a database: refused with its path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-ca-db-'));
  const foreign = join(dir, 'other-app.db');
  const other = new Database(foreign);
  other.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
  other.close();
  t.throws(() => openCaStore(foreign), { message: /other-app\.db is not a Warden CA database \(it holds users\)/ });

  const garbage = join(dir, 'garbage.db');
  writeFileSync(garbage, Buffer.alloc(8192, 0x61));
  t.throws(() => openCaStore(garbage), { message: /garbage\.db: cannot open the CA database \(file is not a database\)/ });

  t.throws(() => openCaStore(join(dir, 'new.db'), { trustDomain: TD }), {
    message: /new\.db: the CA database is missing; starting on a new, empty one would lose every revocation/,
  });
  createCaDatabase(join(dir, 'new.db'), TD);
  const again = openCaStore(join(dir, 'new.db'), { trustDomain: TD });
  t.ok(again, 'made by createCaDatabase (warden ca init), it opens as this CA’s');
  again.close();
});
