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
    { issuer: 'urn:warden:orders', audience: 'orders', ttl: 300_000, claims: {}, maxEntries: 10, maxBytes: 1e6, maxTokenBytes: 8192 },
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

  // RFC 7519 allows a non-integer NumericDate; some backends parse exp as an integer (red team 27c).
  const fractional = principalOf({ sub: 'erin', aud: 'orders', exp: now + 100.75 }, policy, 'introspection', 'cc'.repeat(32));
  const floored = decodeJwt((await minter.tokenFor(fractional, unverifiedPeer as never)) as string).exp as number;
  t.ok(Number.isInteger(floored), `a source exp of now + 100.75: minted exp ${floored} is an integer`);
  t.equal(floored, now + 100, "the source token's exp, rounded down: never later than it");
  // Within the last second of a fractional exp, the minted token would end as it is issued.
  const lastSecond = principalOf({ sub: 'finn', aud: 'orders', exp: now + 0.5 }, policy, 'jwt', 'dd'.repeat(32));
  if (Math.floor(Date.now() / 1000) === now)
    t.match(
      minter.tokenFor(lastSecond, unverifiedPeer as never),
      { code: 'ERR_AUTHN_TOKEN_EXPIRED', rule: 'mint.exp' },
      'its last second: 401',
    );

  const lapsed = principalOf({ sub: 'bob', aud: 'orders', exp: now - 10 }, policy, 'jwt', 'bb'.repeat(32));
  t.equal(checkPrincipal(lapsed, policy, Date.now() / 1000, 30), undefined, 'accepted by authn within the 30 s leeway');
  const refused = minter.tokenFor(lapsed, unverifiedPeer as never);
  t.ok(refused instanceof WardenError, 'no token minted');
  t.match(refused, { code: 'ERR_AUTHN_TOKEN_EXPIRED', status: 401, rule: 'mint.exp' });
  t.equal(events.filter((e) => e === 'warden.token.minted').length, 2, 'only the first two were minted');
});

t.test('a minted token is reused only while its source says the same: a scope taken away is not minted on', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  let minted = 0;
  const minter = createMinter(
    {
      issuer: 'urn:warden:orders',
      audience: 'orders',
      ttl: 300_000,
      claims: { tenant: 'org' },
      maxEntries: 10,
      maxBytes: 1e6,
      maxTokenBytes: 8192,
    },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit: () => void minted++ } as never },
  );
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const hash = 'cc'.repeat(32);
  // Each call builds a new principal for the same token, as a new introspection answer does.
  const answer = (claims: Record<string, unknown>) =>
    principalOf(
      { sub: 'carol', aud: 'orders', exp, scope: 'orders:read orders:admin', org: { id: 7 }, ...claims },
      policy,
      'introspection',
      hash,
    );
  const mint = async (claims: Record<string, unknown> = {}) =>
    decodeJwt((await minter.tokenFor(answer(claims), unverifiedPeer as never)) as string);

  const first = await mint();
  t.equal(first.scope, 'orders:read orders:admin');
  t.same(first.tenant, { id: 7 });
  t.equal((await mint()).jti, first.jti, 'the same answer again (another object): the cached token');
  t.equal(minted, 1);

  const narrowed = await mint({ scope: 'orders:read' });
  t.equal(narrowed.scope, 'orders:read', 'the IdP took orders:admin away: a new token without it');
  t.not(narrowed.jti, first.jti);
  t.equal((await mint({ scope: 'orders:read' })).jti, narrowed.jti, 'and that one is reused from then on');
  t.not((await mint({ scope: 'orders:read', org: { id: 8 } })).jti, narrowed.jti, 'a mapped claim changed: a new token');
  t.not((await mint({ scope: 'orders:read', org: { id: 8 }, sub: 'dave' })).sub, 'carol', 'the subject changed: a new token');
  const soon = Math.floor(Date.now() / 1000) + 100; // before the 300 s the token it has ends
  const shorter = await mint({ scope: 'orders:read', org: { id: 8 }, sub: 'dave', exp: soon });
  t.equal(shorter.exp, soon, 'an earlier exp: a new token that ends with it');
  t.equal(minted, 5);
});

t.test('the minted token says which IdP vouched, keeps a delegated token’s actors, and never makes a client a user', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  const minter = createMinter(
    { issuer: 'urn:warden:orders', audience: 'orders', ttl: 300_000, claims: {}, maxEntries: 10, maxBytes: 1e6, maxTokenBytes: 8192 },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit() {} } as never },
  );
  const partner: IssuerPolicy = { ...policy, id: 'partner', issuer: 'https://partner.test' };
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const mint = async (claims: Record<string, unknown>, issuer = policy, hash = 'dd'.repeat(32), peer: object = unverifiedPeer) =>
    decodeJwt((await minter.tokenFor(principalOf({ aud: 'orders', exp, ...claims }, issuer, 'jwt', hash), peer as never)) as string);

  const corpAlice = await mint({ sub: 'alice' });
  const partnerAlice = await mint({ sub: 'alice' }, partner, 'ee'.repeat(32));
  t.equal(corpAlice.idp, 'https://idp.test');
  t.equal(partnerAlice.idp, 'https://partner.test', "alice of one IdP is told apart from another's");

  const client = await mint({ client_id: 'alice' }, policy, 'ff'.repeat(32));
  t.equal(client.sub, 'client:alice', 'client credentials: the client in a namespace of its own, not the user alice');
  t.equal(client.client_id, 'alice');

  const delegated = await mint({ sub: 'alice', act: { sub: 'svc-x' } }, policy, '11'.repeat(32));
  t.same(delegated.act, { sub: 'svc-x' }, 'the delegating service stays the actor');
  const peer = { verified: true, sha256: 'ab'.repeat(32), spiffeId: 'spiffe://td/ns/shop/sa/frontend' };
  const viaWorkload = await mint({ sub: 'alice', act: { sub: 'svc-x' } }, policy, '22'.repeat(32), peer);
  t.same(viaWorkload.act, { sub: peer.spiffeId, act: { sub: 'svc-x' } }, 'the calling workload is the current actor, prior ones nest');
  const bogusAct = await mint({ sub: 'alice', act: 'svc-x' }, policy, '33'.repeat(32));
  t.equal(bogusAct.act, undefined, 'an act that names no actor is not copied');
});

t.test('the actor chain is copied canonically; a SPIFFE ID as actor needs the verified workload in front of it', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  const minter = createMinter(
    { issuer: 'urn:warden:orders', audience: 'orders', ttl: 300_000, claims: {}, maxEntries: 100, maxBytes: 1e6, maxTokenBytes: 8192 },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit() {} } as never },
  );
  const exp = Math.floor(Date.now() / 1000) + 3600;
  let n = 0;
  const principal = (act: unknown) =>
    principalOf({ sub: 'alice', aud: 'orders', exp, act }, policy, 'introspection', (++n).toString(16).padStart(64, '0'));
  const workload = { verified: true, sha256: 'ab'.repeat(32), spiffeId: 'spiffe://example.test/ns/shop/sa/frontend' };
  const certNoSpiffe = { verified: true, sha256: 'cd'.repeat(32) };
  const mint = async (act: unknown, peer: object = unverifiedPeer) => {
    const out = await minter.tokenFor(principal(act), peer as never);
    return out instanceof WardenError ? { code: out.code, status: out.status, rule: out.rule } : decodeJwt(out).act;
  };

  // Only sub and the nested act: the IdP's other members are not the minted token's to state.
  const extras = {
    sub: 'svc',
    iss: 'x',
    scope: 'orders:admin',
    cnf: { 'x5t#S256': 'AAAA' },
    act: { sub: 'svc-0', may_act: { sub: 'root' } },
  };
  t.same(await mint(extras), { sub: 'svc', act: { sub: 'svc-0' } }, 'extra members of act are dropped, at every level');
  t.same(await mint({ sub: 'svc', act: 'not-an-actor' }), { sub: 'svc' }, 'the chain ends at an act naming no actor');
  t.same(await mint(extras, workload), { sub: workload.spiffeId, act: { sub: 'svc', act: { sub: 'svc-0' } } }, 'nested under the workload');

  // A SPIFFE ID as the (outermost) prior actor: what this sidecar writes for a verified workload.
  const claimed = { sub: 'spiffe://example.test/ns/shop/sa/c', scope: 'orders:admin' };
  const refused = { code: 'ERR_AUTHN_TOKEN_INVALID', status: 401, rule: 'token.act' };
  t.same(await mint(claimed), refused, 'no certificate: refused');
  t.same(await mint({ sub: 'SPIFFE://example.test/ns/shop/sa/c' }), refused, 'the scheme in any case');
  for (const sub of [
    ' spiffe://example.test/x',
    '\tspiffe://example.test/x',
    '\u0000spiffe://example.test/x',
    '\u00a0spiffe://example.test/x',
    '\u3000Spiffe://example.test/x',
    'spi\ufb00e://example.test/x',
    '\uff53piffe://example.test/x',
    'spiffe\uff1a//example.test/x',
  ])
    t.same(await mint({ sub }), refused, `${escape(JSON.stringify(sub))}: after blanks a backend may trim, in any case a backend may fold`);
  t.same(await mint(claimed, certNoSpiffe), refused, 'a verified certificate without a SPIFFE ID puts no workload in front: refused');
  t.same(
    await mint(claimed, workload),
    { sub: workload.spiffeId, act: { sub: claimed.sub } },
    'a verified workload: the IdP’s chain nests inside its actor',
  );
  t.same(
    await mint({ sub: 'svc', act: { sub: claimed.sub } }),
    { sub: 'svc', act: { sub: claimed.sub } },
    'only the outermost actor speaks for the caller',
  );
  t.same(await mint({ sub: 'spiffe-like-svc' }), { sub: 'spiffe-like-svc' }, 'not a SPIFFE ID');
});

t.test('a minted token over maxTokenBytes is refused, naming the claim, and not cached', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  const events: string[] = [];
  const minter = createMinter(
    { issuer: 'urn:warden:orders', audience: 'orders', ttl: 300_000, claims: {}, maxEntries: 10, maxBytes: 1e6, maxTokenBytes: 2048 },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit: (name: string) => void events.push(name) } as never },
  );
  const exp = Math.floor(Date.now() / 1000) + 600;
  const scope = Array.from({ length: 200 }, (_, i) => `orders:read${i}`).join(' ');
  const large = principalOf({ sub: 'alice', aud: 'orders', exp, scope }, policy, 'introspection', 'dd'.repeat(32));
  for (const attempt of ['first', 'again']) {
    const refused = await minter.tokenFor(large, unverifiedPeer as never);
    t.ok(refused instanceof WardenError, `${attempt}: refused`);
    t.match(refused, {
      code: 'ERR_MINTED_TOKEN_TOO_LARGE',
      status: 431,
      rule: 'mint.max_bytes',
      detail: /more than tokens\.mint\.max_bytes \(2048\): its claim "scope" alone is \d+ bytes, 200 scopes/,
    });
  }
  t.same(events, [], 'none was minted (nor cached)');
  const small = principalOf({ sub: 'alice', aud: 'orders', exp, scope: 'orders:read' }, policy, 'introspection', 'ee'.repeat(32));
  t.type(await minter.tokenFor(small, unverifiedPeer as never), 'string', 'a token under the bound is minted');
});
