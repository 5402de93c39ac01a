/** Bootstrap tokens: stored hashed, single-use, expiring, with distinct failures. */
import t from 'tap';
import { openCaStore } from '../../../src/ca/store.js';
import { createTokens, hashToken } from '../../../src/ca/tokens.js';
import { ORDERS } from '../../support/ca-harness.js';

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
  tokens.consume(grant);
  t.equal(
    code(() => tokens.check(token)),
    'ERR_CA_TOKEN_USED',
  );
  t.equal(
    code(() => tokens.consume(grant)),
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
    code(() => tokens.consume(lateGrant)),
    'ERR_CA_TOKEN_EXPIRED',
    'expired while the certificate was being signed',
  );
});
