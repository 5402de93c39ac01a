/**
 * The CA's SQLite database (better-sqlite3, WAL): the certificate ledger, bootstrap tokens (SHA-256
 * only, with a public id; revocable), revocations, the audit log, the CRL number and the trust domain
 * it belongs to. Schema changes are migrations keyed by the `user_version` pragma; statements are
 * prepared once. Times are epoch milliseconds.
 */
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { WardenError } from '../errors.js';
import { refuseForeignDirectory, refuseForeignFile } from './file-ownership.js';

export type CertificateKind = 'enroll' | 'renew' | 'server' | 'admin';

export interface CertificateRow {
  serial: string;
  spiffe_id: string;
  kind: CertificateKind;
  not_before: number;
  not_after: number;
  pem: string;
  issued_at: number;
  /** SHA-256 of the SubjectPublicKeyInfo. */
  key_id: string;
  /** The certificate a renewal was authenticated with (null for an enrollment, and rows from before schema 3). */
  parent_serial?: string | null;
}

export interface CertificateWithStatus extends CertificateRow {
  revoked_at: number | null;
  reason: string | null;
}

export interface TokenRow {
  /** Public handle (16 hex digits) for listing and revoking; unrelated to the token or its hash. */
  id: string;
  sha256: string;
  spiffe_id: string;
  /** JSON array of DNS names. */
  dns_names: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  /** Set by `warden ca token revoke` or `warden ca revoke --id`: the token enrolls nothing any more. */
  revoked_at: number | null;
  /** The certificate the token paid for, and its key id: set with used_at (null before schema 4). */
  serial?: string | null;
  key_id?: string | null;
}

export interface RevocationRow {
  serial: string;
  reason: string;
  revoked_at: number;
}

export interface AuditEntry {
  action: string;
  actor: string;
  subject?: string | undefined;
  outcome: 'ok' | 'refused' | 'failed';
  detail?: string | undefined;
}

export interface CertificateFilter {
  spiffeId?: string | undefined;
  status?: 'valid' | 'revoked' | 'expired' | undefined;
  now: number;
}

export interface CaStore {
  insertCertificate(row: CertificateRow): void;
  getCertificate(serial: string): CertificateWithStatus | undefined;
  listCertificates(filter: CertificateFilter): CertificateWithStatus[];
  /** Whether the CA ever issued a certificate to this SPIFFE ID (exact match). */
  issuedTo(spiffeId: string): boolean;
  /** Serials of a SPIFFE ID that are neither expired nor revoked. */
  activeSerialsOf(spiffeId: string, now: number): string[];
  /** How many certificates of a SPIFFE ID are neither expired nor revoked, and when the first of them expires. */
  activeCountOf(spiffeId: string, now: number): { count: number; firstExpiry: number | null };
  /** The not-after of the identity's valid certificate `offset` places after the first to expire (0: the first). */
  activeExpiryAt(spiffeId: string, now: number, offset: number): number | undefined;
  /** Certificates renewed from `serial`, and from those, on down: neither expired nor revoked. */
  activeDescendantsOf(serial: string, now: number): string[];
  /** Serials of certificates for this key (SHA-256 of its SubjectPublicKeyInfo) that are neither expired nor revoked. */
  activeSerialsWithKey(keyId: string, now: number): string[];
  /** Whether a certificate for this key (SHA-256 of its SubjectPublicKeyInfo) was revoked as keyCompromise. */
  isCompromisedKey(keyId: string): boolean;
  /** False when the serial was already revoked. */
  insertRevocation(row: RevocationRow): boolean;
  /** Revocations of certificates not expired at `now`: the CRL's entries (crl.ts passes a time some minutes back). */
  unexpiredRevocations(now: number): RevocationRow[];
  insertToken(row: TokenRow): void;
  findToken(sha256: string): TokenRow | undefined;
  findTokenById(id: string): TokenRow | undefined;
  /** Every token (of one SPIFFE ID), newest first. */
  listTokens(filter: { spiffeId?: string | undefined }): TokenRow[];
  /** Whether a token was ever created for this SPIFFE ID (exact match). */
  tokensCreatedFor(spiffeId: string): boolean;
  /**
   * Marks an unused, unexpired, unrevoked token used by the certificate `issued` (its serial and key
   * id, for a retried enrollment whose answer was lost); false when another request got there first,
   * it expired or was revoked.
   */
  consumeToken(sha256: string, now: number, issued: { serial: string; keyId: string }): boolean;
  /** Revokes the tokens still usable (unused, unexpired, unrevoked) of one token id or SPIFFE ID; their ids. */
  revokeTokens(which: { id: string } | { spiffeId: string }, now: number): string[];
  audit(entry: AuditEntry): void;
  auditLog(limit: number): (AuditEntry & { time: number })[];
  /**
   * The next CRL number, written before it is returned: one more than the last, and at least
   * `atLeast` (crl.ts passes the time in milliseconds, so that a new or restored database never
   * numbers a CRL below one it published before).
   */
  nextCrlNumber(atLeast?: number): number;
  /** How far the revocations go: their number and the highest rowid (rowids only grow: the CA never deletes one). */
  revocationMark(): { count: number; lastRowid: number };
  /**
   * The highest revocation rowid (0: none): one index lookup, read on every GET /v1/crl to tell
   * whether a revocation was committed since the cached CRL was made — by this process or another
   * sharing the database. Rowids only grow (revocations are never deleted), so a new one changes it.
   */
  lastRevocationRowid(): number;
  /** The CRL number last handed out (0: none yet). */
  lastCrlNumber(): number;
  /**
   * The database's own random id (ca_meta `database_id`): a copy restored from a backup has the id of
   * the original, another database another id. Undefined for a database made before it was stamped.
   */
  databaseId(): string | undefined;
  /** Stamps a database that has no id yet with a new one; returns the id. */
  stampDatabaseId(): string;
  /**
   * Deletes at most `limit` certificates that expired before `before` and were never revoked, and at
   * most `limit` bootstrap tokens that expired before it (a used one only once its certificate has
   * too); how many of each went. Revoked certificates
   * stay: their rows carry the revocation and the key a keyCompromise refuses again.
   * Found by a partial index of the unrevoked ones (migration 7): the revoked rows are never read.
   */
  pruneExpired(before: number, limit: number): { certificates: number; tokens: number };
  /** The newest time any row records (an issuance, an audit row, a token's creation); undefined when empty. */
  newestRecord(): number | undefined;
  /** The time retention last pruned by (retention.ts), never the raw clock; undefined before its first pass. */
  retentionMark(): number | undefined;
  setRetentionMark(ms: number): void;
  /** Runs `fn` in one IMMEDIATE transaction (all or nothing, writers serialised). */
  transaction<T>(fn: () => T): T;
  close(): void;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE certificates (
     serial TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('enroll', 'renew', 'server', 'admin')),
     not_before INTEGER NOT NULL,
     not_after INTEGER NOT NULL,
     pem TEXT NOT NULL,
     issued_at INTEGER NOT NULL,
     key_id TEXT NOT NULL
   );
   CREATE INDEX certificates_by_spiffe_id ON certificates (spiffe_id, not_after);
   CREATE TABLE tokens (
     sha256 TEXT PRIMARY KEY,
     spiffe_id TEXT NOT NULL,
     dns_names TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at INTEGER
   );
   CREATE TABLE revocations (
     serial TEXT PRIMARY KEY REFERENCES certificates (serial),
     reason TEXT NOT NULL,
     revoked_at INTEGER NOT NULL
   );
   CREATE TABLE audit (
     id INTEGER PRIMARY KEY,
     time INTEGER NOT NULL,
     action TEXT NOT NULL,
     actor TEXT NOT NULL,
     subject TEXT,
     outcome TEXT NOT NULL,
     detail TEXT
   );
   CREATE TABLE crl_state (id INTEGER PRIMARY KEY CHECK (id = 1), number INTEGER NOT NULL);
   INSERT INTO crl_state (id, number) VALUES (1, 0);`,
  // 2: tokens get a public id (list, revoke) and can be revoked. Tokens of a version-1 database get
  // a random id here; they stay usable as before.
  `ALTER TABLE tokens ADD COLUMN id TEXT;
   ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
   UPDATE tokens SET id = lower(hex(randomblob(8)));
   CREATE UNIQUE INDEX tokens_by_id ON tokens (id);
   CREATE INDEX tokens_by_spiffe_id ON tokens (spiffe_id, created_at);`,
  // 3: a renewal records the certificate it renewed, so that revoking a leaked one (keyCompromise)
  // reaches what a thief renewed from it; keys are looked up to refuse a compromised one again.
  `ALTER TABLE certificates ADD COLUMN parent_serial TEXT;
   CREATE INDEX certificates_by_parent ON certificates (parent_serial);
   CREATE INDEX certificates_by_key ON certificates (key_id);`,
  // 4: a used token records the certificate it paid for and that certificate's key: an enrollment
  // retried with the same token and key (its answer was lost) gets that certificate again.
  `ALTER TABLE tokens ADD COLUMN serial TEXT;
   ALTER TABLE tokens ADD COLUMN key_id TEXT;`,
  // 5: what the database belongs to. `trust_domain` is stamped when the database is made, or when a
  // CA first opens one made before (stampTrustDomain): a CA of another trust domain whose
  // database.path named this database started on it and issued this domain's IDs under its own keys.
  `CREATE TABLE ca_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // 6: expired rows leave the ledger after database.keep_expired (retention.ts), found by expiry.
  `CREATE INDEX certificates_by_not_after ON certificates (not_after);
   CREATE INDEX tokens_by_expiry ON tokens (expires_at);`,
  // 7: certificates carry whether they are revoked (kept by a trigger on revocations, whoever
  // writes them), so that pruning finds the unrevoked expired ones by a partial index: by expiry
  // alone it read every revoked expired row, kept for good, before each batch (a first pass beside
  // 1 M of them ~16 min; a cursor past them still blocked the CA for 1.7 s at each start).
  `ALTER TABLE certificates ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
   UPDATE certificates SET revoked = 1 WHERE serial IN (SELECT serial FROM revocations);
   CREATE TRIGGER certificates_revoked AFTER INSERT ON revocations
     BEGIN UPDATE certificates SET revoked = 1 WHERE serial = NEW.serial; END;
   CREATE INDEX certificates_unrevoked_by_not_after ON certificates (not_after) WHERE revoked = 0;`,
];

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  // A database this warden never set up but that holds tables is another application's: adopting it
  // (creating the CA's tables inside) hid a wrong database.path instead of saying so.
  const tables = db.prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`).all();
  if (version === 0 && tables.length > 0) {
    throw new Error(
      `${db.name} is not a Warden CA database (it holds ${tables
        .slice(0, 5)
        .map((t) => t.name)
        .join(', ')}): point database.path at this CA's file, or at a new one`,
    );
  }
  if (version > MIGRATIONS.length) {
    throw new Error(`${db.name} has schema version ${version}, newer than this warden (${MIGRATIONS.length}); upgrade warden`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * Deletes up to ? certificates expired before ? and never revoked. `revoked = 0` picks the partial
 * index of migration 7; the revocations table itself still decides (a row whose flag a damaged
 * database lost is kept all the same). Exported for the test that checks its query plan.
 */
export const PRUNE_CERTIFICATES = `DELETE FROM certificates WHERE rowid IN (
  SELECT c.rowid FROM certificates c WHERE c.revoked = 0 AND c.not_after < ?
    AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial) LIMIT ?)`;

const WITH_STATUS = `SELECT c.*, r.revoked_at AS revoked_at, r.reason AS reason FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`;

/**
 * How long a write waits for another process's lock (a backup, an sqlite3 shell) before SQLITE_BUSY.
 * better-sqlite3 waits synchronously, holding up every other request of the CA meanwhile; the CA's
 * own writes never contend (one connection). 1 s rides out a checkpoint or a backup step; a longer
 * hold is answered 503 ERR_CA_STORE_UNAVAILABLE (server.ts) rather than freezing the CA for 5 s a write.
 */
export const BUSY_TIMEOUT_MS = 1_000;

export interface OpenCaStoreOptions {
  /**
   * The trust domain of the CA opening the database: a database stamped with another is refused, one
   * not stamped yet (made before schema 5) is stamped with it — unless its ledger or tokens already
   * name identities of another trust domain. Tests of the store alone leave it out.
   */
  trustDomain?: string | undefined;
}

/**
 * The database's trust domain against the CA's: stamps a database that has none, throws when they
 * differ. Two CA directories of one trust domain may share a database (a root rotation,
 * docs/mesh-identity.md#root-rotation); two trust domains never.
 */
function stampTrustDomain(db: Database.Database, trustDomain: string): void {
  const stamped = db.prepare<[], string>(`SELECT value FROM ca_meta WHERE key = 'trust_domain'`).pluck().get();
  const refuse = (theirs: string, how: string) =>
    new Error(
      `${db.name}: this CA database ${how} trust domain "${theirs}", not this CA's "${trustDomain}" (trust_domain): database.path names another CA's database; point it at this CA's own (one database is shared only by the CA directories of one trust domain, in a root rotation)`,
    );
  if (stamped !== undefined) {
    if (stamped !== trustDomain) throw refuse(stamped, 'belongs to');
    return;
  }
  // A database from before the stamp: its rows say whose it is (the admin certificate is recorded
  // at the first start, tokens and certificates carry their SPIFFE IDs).
  const prefix = `spiffe://${trustDomain}/`;
  const foreign = db
    .prepare<{ prefix: string }, string>(
      `SELECT spiffe_id FROM certificates WHERE substr(spiffe_id, 1, length(@prefix)) != @prefix
       UNION ALL SELECT spiffe_id FROM tokens WHERE substr(spiffe_id, 1, length(@prefix)) != @prefix LIMIT 1`,
    )
    .pluck()
    .get({ prefix });
  if (foreign !== undefined) throw refuse(/^spiffe:\/\/([^/]*)/.exec(foreign)?.[1] ?? foreign, 'holds identities of');
  db.prepare(`INSERT INTO ca_meta (key, value) VALUES ('trust_domain', ?)`).run(trustDomain);
}

/**
 * A CA database that is not there is refused, never made anew: the database is the CA's memory of
 * revocations and spent tokens, and a new one — on a volume not mounted, or a relative
 * database.path resolved from a moved ca.yaml — forgot them all without a word (a revoked
 * certificate could not be revoked again: 404; its CRL numbering began again). `warden ca init`
 * makes it (createCaDatabase); only an explicit `warden ca serve --create-database` makes it later.
 */
function missingDatabase(path: string): Error {
  return new Error(
    `${path}: the CA database is missing; starting on a new, empty one would lose every revocation and spent token it held (revoked certificates would be trusted again): restore it from a backup (docs/ca.md#backup-and-restore) or correct database.path — only for a CA directory made by an older warden ca init that never served, start once with warden ca serve --create-database`,
  );
}

/**
 * Whether the database file is there, having checked that no other user could have made or changed
 * it: its directory, the file (a symbolic link is refused) and SQLite's -wal and -shm files beside it
 * (file-ownership.ts says who counts as another user). A database another user can write is one they
 * can add bootstrap tokens to, or remove revocations from.
 */
function checkedDatabaseFile(path: string): boolean {
  if (!refuseForeignDirectory(dirname(path), 'directory of the CA database')) return false;
  const there = refuseForeignFile(path, 'CA database');
  for (const suffix of ['-wal', '-shm']) refuseForeignFile(`${path}${suffix}`, `CA database's ${suffix} file`);
  return there;
}

/**
 * Makes a new CA database at `path` (a file that must not exist: created exclusively, mode 0600),
 * with the schema and the trust domain stamp. `warden ca init` calls it; `warden ca serve
 * --create-database` too, for a CA directory made before init made the database.
 */
export function createCaDatabase(path: string, trustDomain: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  refuseForeignDirectory(dirname(path), 'directory of the CA database');
  try {
    // `wx`: never over a database already there (nor through a symbolic link put in its place).
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    throw Object.assign(
      new Error(
        `${path}: a CA database is already there, and is not replaced: start without --create-database (it is for a CA directory that has none)`,
        { cause: err },
      ),
      { code: 'EEXIST' },
    );
  }
  try {
    const store = openCaStore(path, { trustDomain });
    store.stampDatabaseId();
    store.close();
  } catch (err) {
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
    throw err;
  }
}

/**
 * Refuses a database that fails SQLite's full integrity check. quick_check (and no check at all, as
 * before) passes an index whose entries disagree with its table: a revocations index missing a
 * serial made the revoked certificate look valid to every lookup (the CRL reads the table and still
 * listed it, while renewal and admin calls went through the index and let it renew). The full check
 * compares every index with its table; it reads the whole file once, at start: ~1 s for 100 000
 * certificates (150 MB) in the page cache, 3.6 s from disk (docs/ca.md). No repair is attempted:
 * REINDEX would rebuild the index from the table, and the table may be the damaged side.
 */
function refuseDamaged(db: Database.Database, path: string): void {
  let problems: string[];
  try {
    problems = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
  } catch (err) {
    // A page too damaged to walk stops the check itself (SQLITE_CORRUPT); anything else (I/O, a lock) is not damage.
    if (!/^SQLITE_(CORRUPT|NOTADB)/.test(String((err as { code?: unknown }).code))) throw err;
    problems = [(err as Error).message];
  }
  if (problems.length === 1 && problems[0] === 'ok') return;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
  throw new WardenError('ERR_CA_DATABASE_DAMAGED', {
    detail: `${path}: the CA database is damaged: integrity_check says "${problems[0]}"${more}; it is not served, since a damaged table or index can hide revocations (a revoked certificate would renew): stop every process using it, keep the file for analysis, and restore the database from a backup (docs/ca.md#backup-and-restore; then revoke again what was revoked since), or salvage it with sqlite3 ${path} ".recover" | sqlite3 NEW.db, check what it lost and point database.path at NEW.db`,
  });
}

export function openCaStore(path: string, options: OpenCaStoreOptions = {}): CaStore {
  const memory = path === ':memory:';
  if (!memory && !checkedDatabaseFile(path)) throw missingDatabase(path);
  let db: Database.Database;
  try {
    // fileMustExist: should the file go between the check above and here, SQLite fails rather than make one.
    db = new Database(path, { fileMustExist: !memory });
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.pragma('foreign_keys = ON');
    // FULL, not NORMAL: in WAL mode NORMAL syncs only at checkpoints, so the last commits before a
    // power loss or kernel crash can vanish — a revocation or a spent token the admin was told about.
    // The CA writes rarely (an issuance, a revocation), so one fsync per commit costs nothing that matters.
    db.pragma('synchronous = FULL');
  } catch (err) {
    // SQLite says "file is not a database" without naming the file.
    throw new Error(
      `${path}: cannot open the CA database (${(err as Error).message}); restore it from a backup (docs/ca.md) or check database.path`,
      {
        cause: err,
      },
    );
  }
  try {
    // Before anything is written: migrating a damaged file could spread the damage.
    refuseDamaged(db, path);
    // One transaction: a database refused as another trust domain's is left as it was, not migrated
    // to a schema its own (older) CA would then refuse as "newer than this warden".
    db.transaction(() => {
      migrate(db);
      if (options.trustDomain !== undefined) stampTrustDomain(db, options.trustDomain);
    })();
  } catch (err) {
    db.close();
    throw err;
  }

  const s = {
    insertCertificate: db.prepare<[CertificateRow]>(
      `INSERT INTO certificates (serial, spiffe_id, kind, not_before, not_after, pem, issued_at, key_id, parent_serial)
       VALUES (@serial, @spiffe_id, @kind, @not_before, @not_after, @pem, @issued_at, @key_id, @parent_serial)`,
    ),
    getCertificate: db.prepare<[string], CertificateWithStatus>(`${WITH_STATUS} WHERE c.serial = ?`),
    list: db.prepare<{ spiffe_id: string | null; status: string | null; now: number }, CertificateWithStatus>(
      `${WITH_STATUS}
       WHERE (@spiffe_id IS NULL OR c.spiffe_id = @spiffe_id)
         AND (@status IS NULL
              OR (@status = 'revoked' AND r.serial IS NOT NULL)
              OR (@status = 'expired' AND r.serial IS NULL AND c.not_after <= @now)
              OR (@status = 'valid' AND r.serial IS NULL AND c.not_after > @now))
       ORDER BY c.issued_at DESC, c.serial`,
    ),
    issuedTo: db.prepare<[string], number>(`SELECT 1 FROM certificates WHERE spiffe_id = ? LIMIT 1`).pluck(),
    activeOf: db
      .prepare<[string, number], string>(
        `SELECT c.serial FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial
         WHERE c.spiffe_id = ? AND c.not_after > ? AND r.serial IS NULL`,
      )
      .pluck(),
    // certificates_by_spiffe_id (spiffe_id, not_after) bounds the scan to the identity's unexpired rows.
    activeCountOf: db.prepare<[string, number], { count: number; firstExpiry: number | null }>(
      `SELECT count(*) AS count, min(c.not_after) AS firstExpiry FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial
       WHERE c.spiffe_id = ? AND c.not_after > ? AND r.serial IS NULL`,
    ),
    activeExpiryAt: db
      .prepare<[string, number, number], number>(
        `SELECT c.not_after FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial
         WHERE c.spiffe_id = ? AND c.not_after > ? AND r.serial IS NULL ORDER BY c.not_after LIMIT 1 OFFSET ?`,
      )
      .pluck(),
    activeDescendants: db
      .prepare<{ serial: string; now: number }, string>(
        // UNION, not UNION ALL: a cycle (none can be issued) would end rather than loop.
        `WITH RECURSIVE lineage(serial) AS (
           SELECT serial FROM certificates WHERE parent_serial = @serial
           UNION SELECT c.serial FROM certificates c JOIN lineage l ON c.parent_serial = l.serial)
         SELECT c.serial FROM lineage l JOIN certificates c ON c.serial = l.serial
         LEFT JOIN revocations r ON r.serial = c.serial
         WHERE r.serial IS NULL AND c.not_after > @now ORDER BY c.issued_at, c.serial`,
      )
      .pluck(),
    activeWithKey: db
      .prepare<[string, number], string>(
        `SELECT c.serial FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial
         WHERE c.key_id = ? AND c.not_after > ? AND r.serial IS NULL ORDER BY c.issued_at, c.serial`,
      )
      .pluck(),
    compromisedKey: db
      .prepare<[string], number>(
        `SELECT 1 FROM certificates c JOIN revocations r ON r.serial = c.serial WHERE c.key_id = ? AND r.reason = 'keyCompromise' LIMIT 1`,
      )
      .pluck(),
    insertRevocation: db.prepare<[RevocationRow]>(
      `INSERT INTO revocations (serial, reason, revoked_at) VALUES (@serial, @reason, @revoked_at) ON CONFLICT (serial) DO NOTHING`,
    ),
    unexpiredRevocations: db.prepare<[number], RevocationRow>(
      `SELECT r.serial, r.reason, r.revoked_at FROM revocations r JOIN certificates c ON c.serial = r.serial
       WHERE c.not_after > ? ORDER BY r.revoked_at`,
    ),
    insertToken: db.prepare<[TokenRow]>(
      `INSERT INTO tokens (id, sha256, spiffe_id, dns_names, created_at, expires_at, used_at, revoked_at)
       VALUES (@id, @sha256, @spiffe_id, @dns_names, @created_at, @expires_at, @used_at, @revoked_at)`,
    ),
    findToken: db.prepare<[string], TokenRow>(`SELECT * FROM tokens WHERE sha256 = ?`),
    findTokenById: db.prepare<[string], TokenRow>(`SELECT * FROM tokens WHERE id = ?`),
    listTokens: db.prepare<{ spiffe_id: string | null }, TokenRow>(
      `SELECT * FROM tokens WHERE (@spiffe_id IS NULL OR spiffe_id = @spiffe_id) ORDER BY created_at DESC, id`,
    ),
    tokensCreatedFor: db.prepare<[string], number>(`SELECT 1 FROM tokens WHERE spiffe_id = ? LIMIT 1`).pluck(),
    consumeToken: db.prepare<{ sha256: string; now: number; serial: string; key_id: string }>(
      `UPDATE tokens SET used_at = @now, serial = @serial, key_id = @key_id
       WHERE sha256 = @sha256 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > @now`,
    ),
    revokeTokens: db
      .prepare<{ id: string | null; spiffe_id: string | null; now: number }, string>(
        `UPDATE tokens SET revoked_at = @now
         WHERE (@id IS NULL OR id = @id) AND (@spiffe_id IS NULL OR spiffe_id = @spiffe_id)
           AND (@id IS NOT NULL OR @spiffe_id IS NOT NULL)
           AND used_at IS NULL AND revoked_at IS NULL AND expires_at > @now
         RETURNING id`,
      )
      .pluck(),
    audit: db.prepare<{ time: number; action: string; actor: string; subject: string | null; outcome: string; detail: string | null }>(
      `INSERT INTO audit (time, action, actor, subject, outcome, detail) VALUES (@time, @action, @actor, @subject, @outcome, @detail)`,
    ),
    auditLog: db.prepare<[number], AuditEntry & { time: number }>(
      `SELECT time, action, actor, subject, outcome, detail FROM audit ORDER BY id DESC LIMIT ?`,
    ),
    nextCrlNumber: db.prepare<[number], { number: number }>(
      `UPDATE crl_state SET number = max(number + 1, ?) WHERE id = 1 RETURNING number`,
    ),
    lastCrlNumber: db.prepare<[], number>(`SELECT number FROM crl_state WHERE id = 1`).pluck(),
    revocationMark: db.prepare<[], { count: number; lastRowid: number }>(
      `SELECT count(*) AS count, coalesce(max(rowid), 0) AS lastRowid FROM revocations`,
    ),
    lastRevocationRowid: db.prepare<[], number>(`SELECT coalesce(max(rowid), 0) FROM revocations`).pluck(),
    databaseId: db.prepare<[], string>(`SELECT value FROM ca_meta WHERE key = 'database_id'`).pluck(),
    pruneCertificates: db.prepare<[number, number]>(PRUNE_CERTIFICATES),
    // A used token stays while the certificate it paid for does: an enrollment whose answer was lost
    // is answered again (the same certificate) for as long as that certificate is valid.
    pruneTokens: db.prepare<{ before: number; limit: number }>(
      `DELETE FROM tokens WHERE rowid IN (
         SELECT t.rowid FROM tokens t WHERE t.expires_at < @before
           AND (t.serial IS NULL OR NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = t.serial AND c.not_after >= @before))
         LIMIT @limit)`,
    ),
    newestRecord: db
      .prepare<[], number | null>(
        `SELECT max(t) FROM (SELECT max(issued_at) AS t FROM certificates UNION ALL SELECT max(time) FROM audit
                             UNION ALL SELECT max(created_at) FROM tokens)`,
      )
      .pluck(),
    retentionMark: db.prepare<[], string>(`SELECT value FROM ca_meta WHERE key = 'retention_mark'`).pluck(),
    setRetentionMark: db.prepare<[string]>(
      `INSERT INTO ca_meta (key, value) VALUES ('retention_mark', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    ),
    stampDatabaseId: db.prepare(
      `INSERT INTO ca_meta (key, value) VALUES ('database_id', lower(hex(randomblob(16)))) ON CONFLICT (key) DO NOTHING`,
    ),
  };

  return {
    insertCertificate: (row) => void s.insertCertificate.run({ ...row, parent_serial: row.parent_serial ?? null }),
    getCertificate: (serial) => s.getCertificate.get(serial),
    listCertificates: (f) => s.list.all({ spiffe_id: f.spiffeId ?? null, status: f.status ?? null, now: f.now }),
    issuedTo: (spiffeId) => s.issuedTo.get(spiffeId) !== undefined,
    activeSerialsOf: (spiffeId, now) => s.activeOf.all(spiffeId, now),
    activeCountOf: (spiffeId, now) => s.activeCountOf.get(spiffeId, now) ?? { count: 0, firstExpiry: null },
    activeExpiryAt: (spiffeId, now, offset) => s.activeExpiryAt.get(spiffeId, now, offset),
    activeDescendantsOf: (serial, now) => s.activeDescendants.all({ serial, now }),
    activeSerialsWithKey: (keyId, now) => s.activeWithKey.all(keyId, now),
    isCompromisedKey: (keyId) => s.compromisedKey.get(keyId) !== undefined,
    insertRevocation: (row) => s.insertRevocation.run(row).changes === 1,
    unexpiredRevocations: (now) => s.unexpiredRevocations.all(now),
    insertToken: (row) => void s.insertToken.run(row),
    findToken: (sha256) => s.findToken.get(sha256),
    findTokenById: (id) => s.findTokenById.get(id),
    listTokens: (f) => s.listTokens.all({ spiffe_id: f.spiffeId ?? null }),
    tokensCreatedFor: (spiffeId) => s.tokensCreatedFor.get(spiffeId) !== undefined,
    consumeToken: (sha256, now, issued) => s.consumeToken.run({ sha256, now, serial: issued.serial, key_id: issued.keyId }).changes === 1,
    revokeTokens: (which, now) =>
      s.revokeTokens.all({ id: 'id' in which ? which.id : null, spiffe_id: 'spiffeId' in which ? which.spiffeId : null, now }).sort(),
    audit: (e) =>
      void s.audit.run({
        time: Date.now(),
        action: e.action,
        actor: e.actor,
        subject: e.subject ?? null,
        outcome: e.outcome,
        detail: e.detail ?? null,
      }),
    auditLog: (limit) => s.auditLog.all(limit),
    nextCrlNumber: (atLeast = 0) => (s.nextCrlNumber.get(Math.floor(atLeast)) as { number: number }).number,
    lastCrlNumber: () => s.lastCrlNumber.get() ?? 0,
    revocationMark: () => s.revocationMark.get() as { count: number; lastRowid: number },
    lastRevocationRowid: () => s.lastRevocationRowid.get() ?? 0,
    databaseId: () => s.databaseId.get(),
    stampDatabaseId: () => {
      s.stampDatabaseId.run();
      return s.databaseId.get() as string;
    },
    newestRecord: () => s.newestRecord.get() ?? undefined,
    retentionMark: () => {
      const value = Number(s.retentionMark.get());
      return Number.isFinite(value) && value > 0 ? value : undefined;
    },
    setRetentionMark: (ms) => void s.setRetentionMark.run(String(Math.floor(ms))),
    pruneExpired: (before, limit) =>
      db
        .transaction(() => ({
          certificates: s.pruneCertificates.run(before, limit).changes,
          tokens: s.pruneTokens.run({ before, limit }).changes,
        }))
        .immediate(),
    transaction: (fn) => db.transaction(fn).immediate(),
    close: () => db.close(),
  };
}
