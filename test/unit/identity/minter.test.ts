/**
 * The minter's bounds: a minted token never outlives its source token, and a source token already
 * past its exp (accepted within the leeway only) gets no minted token, which would be expired
 * before it was issued, but a clear 401.
 */
import t from 'tap';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { WardenError } from '../../../src/errors.js';
import { createMinter } from '../../../src/identity/minter.js';
import { checkPrincipal, principalOf, type IssuerPolicy } from '../../../src/identity/principal.js';
import { createSigningKeys } from '../../../src/identity/signing-keys.js';

const policy: IssuerPolicy = { id: 'corp', issuer: 'https://idp.test', audience: ['orders'], anyAudience: false, tokenTypes: [] };
const unverifiedPeer = { verified: false } as const;

t.test('minted tokens end no later than their source token; none for one past its exp', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  const events: string[] = [];
  const minter = createMinter(
    { issuer: 'urn:warden:orders', audience: 'orders', ttl: 300_000, claims: {}, maxEntries: 10, maxBytes: 1e6 },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit: (name: string) => void events.push(name) } as never },
  );
  const jwks = createLocalJWKSet(JSON.parse(keys.jwksJson()) as never);
  const now = Math.floor(Date.now() / 1000);

  const soon = principalOf({ sub: 'alice', aud: 'orders', exp: now + 60 }, policy, 'jwt', 'aa'.repeat(32));
  const jwt = await minter.tokenFor(soon, unverifiedPeer as never);
  t.type(jwt, 'string');
  t.equal(decodeJwt(jwt as string).exp, now + 60, "the source token's exp, not the 300 s ttl");
  await t.resolves(jwtVerify(jwt as string, jwks, { audience: 'orders', typ: 'at+jwt' }), 'the backend accepts it');

  const lapsed = principalOf({ sub: 'bob', aud: 'orders', exp: now - 10 }, policy, 'jwt', 'bb'.repeat(32));
  t.equal(checkPrincipal(lapsed, policy, Date.now() / 1000, 30), undefined, 'accepted by authn within the 30 s leeway');
  const refused = minter.tokenFor(lapsed, unverifiedPeer as never);
  t.ok(refused instanceof WardenError, 'no token minted');
  t.match(refused, { code: 'ERR_AUTHN_TOKEN_EXPIRED', status: 401, rule: 'mint.exp' });
  t.equal(events.filter((e) => e === 'warden.token.minted').length, 1, 'only the first was minted');
});
