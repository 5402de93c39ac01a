/** Bootstrap tokens: stored hashed, single-use, expiring, revocable, with distinct failures; the tokens table's migration. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { openCaStore } from '../../../src/ca/store.js';
import { createTokens, hashToken } from '../../../src/ca/tokens.js';
import { ORDERS } from '../../support/ca-harness.js';

const ISSUED = { serial: '01', keyId: 'k' };

function setup() {
  const store = openCaStore(':memory:');
  let now = 1_700_000_000_000;
  const tokens = createTokens(store, () => now);
  return { store, tokens, advance: (ms: number) => (now += ms) };
}

t.test('a token is 32 random bytes base64url; only its SHA-256 is stored', async (t) => {
  const { store, tokens } = setup();
  t.teardown(() => store.close());
  const created = tokens.create({ spiffeId: ORDERS, dnsNames: ['Orders.Shop'], ttlMs: 3_600_000 });
  t.match(created.token, /^[A-Za-z0-9_-]{43}$/);
  t.same(created.dns_names, ['orders.shop']);
  t.equal(created.expires_at, new Date(1_700_000_000_000 + 3_600_000).toISOString());
  const row = store.findToken(hashToken(created.token));
  t.equal(row?.spiffe_id, ORDERS);
  t.notOk(JSON.stringify(row).includes(created.token), 'the token itself is nowhere in the row');
  t.not(tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 1000 }).token, created.token);
});

t.test('distinct failures: missing, unknown, used, expired', async (t) => {
  const { store, tokens, advance } = setup();
  t.teardown(() => store.close());
  const code = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      return (err as { code: string }).code;
    }
  };
  t.equal(
    code(() => tokens.check(undefined)),
    'ERR_CA_TOKEN_MISSING',
  );
  t.equal(
    code(() => tokens.check('')),
    'ERR_CA_TOKEN_MISSING',
  );
  t.equal(
    code(() => tokens.check('x'.repeat(43))),
    'ERR_CA_TOKEN_UNKNOWN',
    'well-formed but never issued',
  );
  t.equal(
    code(() => tokens.check('not a token; DROP TABLE tokens')),
    'ERR_CA_TOKEN_UNKNOWN',
    'malformed',
  );

  const { token } = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  const grant = tokens.check(token);
  t.equal(grant.spiffeId, ORDERS);
  t.equal(
    code(() => tokens.check(token)),
    'ok',
    'checking does not consume',
  );
  tokens.consume(grant, ISSUED);
  t.equal(
    code(() => tokens.check(token)),
    'ERR_CA_TOKEN_USED',
  );
  t.equal(
    code(() => tokens.consume(grant, ISSUED)),
    'ERR_CA_TOKEN_USED',
    'a second consume (concurrent enrollment) loses',
  );

  const late = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  const lateGrant = tokens.check(late.token);
  advance(60_000);
  t.equal(
    code(() => tokens.check(late.token)),
    'ERR_CA_TOKEN_EXPIRED',
  );
  t.equal(
    code(() => tokens.consume(lateGrant, ISSUED)),
    'ERR_CA_TOKEN_EXPIRED',
    'expired while the certificate was being signed',
  );
});

t.test('revoked: answered as unknown (the rule says revoked); by id or identity, only tokens still usable', async (t) => {
  const { store, tokens, advance } = setup();
  t.teardown(() => store.close());
  const refusal = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      const { code, rule, detail, attributes } = err as { code: string; rule?: string; detail?: string; attributes?: object };
      return { code, rule, detail, attributes };
    }
  };
  const CART = 'spiffe://example.test/ns/shop/sa/cart';
  const a = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  const b = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  const used = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  const short = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 1_000 });
  const cart = tokens.create({ spiffeId: CART, dnsNames: [], ttlMs: 60_000 });
  t.match(a.id, /^[0-9a-f]{16}$/);
  t.equal(new Set([a, b, used, short, cart].map((x) => x.id)).size, 5, 'ids are distinct');
  t.notOk(
    [a.token, hashToken(a.token)].some((v) => v.includes(a.id)),
    'the id is neither the token nor its hash',
  );
  tokens.consume(tokens.check(used.token), ISSUED);
  const grantB = tokens.check(b.token);
  advance(1_000);

  t.same(store.revokeTokens({ id: a.id }, 1_700_000_001_000), [a.id]);
  t.same(store.revokeTokens({ id: a.id }, 1_700_000_001_000), [], 'already revoked');
  t.same(
    refusal(() => tokens.check(a.token)),
    { code: 'ERR_CA_TOKEN_UNKNOWN', rule: 'ca.token.revoked', detail: undefined, attributes: { 'warden.spiffe.id': ORDERS } },
    'the answer of a token never issued (no detail); rule and SPIFFE ID for the event and audit row only',
  );
  t.same(store.revokeTokens({ spiffeId: ORDERS }, 1_700_000_001_000), [b.id], 'used, expired and revoked ones are left as they are');
  t.same(
    refusal(() => tokens.consume(grantB, ISSUED)),
    { code: 'ERR_CA_TOKEN_UNKNOWN', rule: 'ca.token.revoked', detail: undefined, attributes: { 'warden.spiffe.id': ORDERS } },
    'checked before the revocation, consumed after it: refused',
  );
  t.equal(tokens.check(cart.token).spiffeId, CART, 'another identity’s token is untouched');
  t.same(
    store.listTokens({ spiffeId: ORDERS }).map((r) => [r.id, r.used_at !== null, r.revoked_at !== null]),
    [
      [a.id, false, true],
      [b.id, false, true],
      [used.id, true, false],
      [short.id, false, false],
    ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    'listed (same creation time: by id)',
  );
  t.equal(store.listTokens({}).length, 5);
  t.equal(store.findTokenById(cart.id)?.spiffe_id, CART);
  t.ok(store.tokensCreatedFor(CART));
  t.notOk(store.tokensCreatedFor(CART.toUpperCase()));
});

t.test('a version-1 database (no token ids): migrated; its tokens get ids, stay usable and can be revoked', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'warden-ca-v1-')), 'ca.db');
  // The tokens table and version as warden wrote them before token revocation.
  const old = new Database(path);
  old.exec(`CREATE TABLE certificates (serial TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, kind TEXT NOT NULL, not_before INTEGER NOT NULL,
              not_after INTEGER NOT NULL, pem TEXT NOT NULL, issued_at INTEGER NOT NULL, key_id TEXT NOT NULL);
            CREATE INDEX certificates_by_spiffe_id ON certificates (spiffe_id, not_after);
            CREATE TABLE tokens (sha256 TEXT PRIMARY KEY, spiffe_id TEXT NOT NULL, dns_names TEXT NOT NULL, created_at INTEGER NOT NULL,
              expires_at INTEGER NOT NULL, used_at INTEGER);
            CREATE TABLE revocations (serial TEXT PRIMARY KEY REFERENCES certificates (serial), reason TEXT NOT NULL, revoked_at INTEGER NOT NULL);
            CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, subject TEXT,
              outcome TEXT NOT NULL, detail TEXT);
            CREATE TABLE crl_state (id INTEGER PRIMARY KEY CHECK (id = 1), number INTEGER NOT NULL);
            INSERT INTO crl_state (id, number) VALUES (1, 7);
            PRAGMA user_version = 1;`);
  const far = Date.now() + 3_600_000;
  const insert = old.prepare(`INSERT INTO tokens VALUES (?, ?, '[]', ?, ?, NULL)`);
  const [kept, spare] = ['k'.repeat(43), 's'.repeat(43)];
  insert.run(hashToken(kept), ORDERS, Date.now(), far);
  insert.run(hashToken(spare), ORDERS, Date.now(), far);
  old.close();

  const store = openCaStore(path);
  t.teardown(() => store.close());
  const tokens = createTokens(store);
  const rows = store.listTokens({ spiffeId: ORDERS });
  t.equal(rows.length, 2);
  t.ok(
    rows.every((r) => /^[0-9a-f]{16}$/.test(r.id) && r.revoked_at === null),
    'each old token got an id',
  );
  t.equal(tokens.check(kept).spiffeId, ORDERS, 'an old token still enrolls');
  t.same(store.revokeTokens({ id: store.findToken(hashToken(spare))!.id }, Date.now()), [store.findToken(hashToken(spare))!.id]);
  t.throws(() => tokens.check(spare), { code: 'ERR_CA_TOKEN_UNKNOWN', rule: 'ca.token.revoked' }, 'and a revoked one does not');
  t.equal(store.nextCrlNumber(), 8, 'the rest of the database as it was');
  t.ok(tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 1000 }).id, 'new tokens too');
});

t.test('a used token records the certificate it paid for (for a retried enrollment); revoked or unrecorded: nothing', async (t) => {
  const { store, tokens, advance } = setup();
  t.teardown(() => store.close());
  const { token } = tokens.create({ spiffeId: ORDERS, dnsNames: ['orders.shop'], ttlMs: 60_000 });
  t.equal(tokens.spent(token), undefined, 'unused: not spent');
  tokens.consume(tokens.check(token), { serial: 'abc123', keyId: 'key-1' });
  t.same(
    tokens.spent(token),
    { spiffeId: ORDERS, dnsNames: ['orders.shop'], serial: 'abc123', keyId: 'key-1' },
    'in the same write as used_at',
  );
  advance(120_000);
  t.equal(tokens.spent(token)?.serial, 'abc123', 'still after the token expired: the certificate bounds the retry');
  t.equal(tokens.spent('A'.repeat(43)), undefined, 'an unknown token');
  t.equal(tokens.spent(42), undefined, 'not a token');
  const old = tokens.create({ spiffeId: ORDERS, dnsNames: [], ttlMs: 60_000 });
  t.ok(store.consumeToken(hashToken(old.token), advance(0), { serial: '', keyId: '' }), 'used with nothing recorded');
  t.equal(tokens.spent(old.token), undefined, 'used before schema 4 (no serial recorded): nothing to send again');
});
