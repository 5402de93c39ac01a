/** The minted tokens' key ring: rotation publishes the new key and keeps the old one until its tokens are gone. */
import t from 'tap';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { createMinter } from '../../../src/identity/minter.js';
import { principalOf, type IssuerPolicy } from '../../../src/identity/principal.js';
import { createSigningKeys, PUBLISH_AHEAD_MS } from '../../../src/identity/signing-keys.js';

const kids = (json: string) => (JSON.parse(json) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

t.test('rotation keeps the retired key in the JWKS until its tokens have expired', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 300, leeway: 0 });
  t.teardown(() => keys.stop());
  const first = keys.current();
  const [signing, upcoming] = kids(keys.jwksJson());
  t.equal(signing, first.kid, 'the current key first');
  t.not(upcoming, first.kid, 'and the next one, published before it signs');
  t.match(JSON.parse(keys.jwksJson()), { keys: [{ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' }] });
  t.notOk('d' in (JSON.parse(keys.jwksJson()) as { keys: Record<string, unknown>[] }).keys[0]!, 'no private part is published');

  const oldToken = await new SignJWT({ n: 1 })
    .setProtectedHeader({ alg: 'ES256', kid: first.kid })
    .setExpirationTime('5m')
    .sign(first.privateKey);
  await keys.rotate();
  const second = keys.current();
  t.not(second.kid, first.kid, 'a new key signs from now on');
  t.equal(second.kid, upcoming, 'the key published as the next one');
  const afterRotation = kids(keys.jwksJson());
  t.equal(afterRotation.length, 3, 'current, next and retired');
  t.same([afterRotation[0], afterRotation[2]], [second.kid, first.kid], 'the retired key is still published');
  const jwks = createLocalJWKSet(JSON.parse(keys.jwksJson()) as Parameters<typeof createLocalJWKSet>[0]);
  t.ok(await jwtVerify(oldToken, jwks), 'a token signed before the rotation still verifies');

  await new Promise((r) => setTimeout(r, 350));
  await keys.rotate(); // publishing happens on rotation (and on a timer between rotations)
  const published = kids(keys.jwksJson());
  t.notOk(published.includes(first.kid), 'the first key is gone once its tokens (300 ms life) have expired');
  t.ok(published.includes(second.kid), 'the second key stays: its tokens may still be valid');
});

t.test('a key never signs before it was published: a verifier holding the last JWKS knows it', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 300_000, leeway: 0 });
  t.teardown(() => keys.stop());
  for (let i = 0; i < 3; i++) {
    const held = createLocalJWKSet(JSON.parse(keys.jwksJson()) as Parameters<typeof createLocalJWKSet>[0]);
    await keys.rotate();
    const key = keys.current();
    const token = await new SignJWT({ i }).setProtectedHeader({ alg: 'ES256', kid: key.kid }).setExpirationTime('5m').sign(key.privateKey);
    await t.resolves(jwtVerify(token, held), `rotation ${i + 1}: the new key was in the JWKS before`);
  }
});

t.test('a ring built from another (a reload) keeps its keys and its schedule', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 300_000, leeway: 0 });
  t.teardown(() => keys.stop());
  await keys.rotate();
  const state = keys.state();
  const rebuilt = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 60_000, leeway: 5_000 }, state);
  t.teardown(() => rebuilt.stop());
  t.equal(rebuilt.current().kid, keys.current().kid, 'the same key signs');
  t.same(kids(rebuilt.jwksJson()), kids(keys.jwksJson()), 'the same keys are published, the retired one included');
  t.equal(rebuilt.state().rotatedAt, state.rotatedAt, 'the next rotation stays where it was');
});

t.test('rotations are at least PUBLISH_AHEAD_MS apart, however short rotate_every is', async (t) => {
  // Two rings asked to rotate every second, one last rotated PUBLISH_AHEAD_MS − 0.5 s ago, the
  // other PUBLISH_AHEAD_MS − 5 s ago: only the first may rotate within the next 1.5 s. With the
  // floor gone, both would rotate at once (their last rotation is far more than a second ago).
  const seed = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 60_000, leeway: 0 });
  seed.stop();
  const options = { rotateEvery: 1_000, tokenLifetime: 60_000, leeway: 0 };
  const due = await createSigningKeys(options, { ...seed.state(), rotatedAt: Date.now() - PUBLISH_AHEAD_MS + 500 });
  const notDue = await createSigningKeys(options, { ...seed.state(), rotatedAt: Date.now() - PUBLISH_AHEAD_MS + 5_000 });
  t.teardown(() => {
    due.stop();
    notDue.stop();
  });
  const first = seed.state().current.kid;
  for (let i = 0; i < 30 && due.current().kid === first; i++) await new Promise((r) => setTimeout(r, 100));
  t.not(due.current().kid, first, `rotated once PUBLISH_AHEAD_MS (${PUBLISH_AHEAD_MS} ms) had passed since the last rotation`);
  t.equal(notDue.current().kid, first, 'not before: a key signs only after it has been published that long');
});

/** A ring clock the test moves (the rotation timer never fires: rotations are by hand). */
function testClock() {
  const clock = { ms: Date.now() };
  return { clock, now: () => clock.ms };
}

const mintingOptions = (ttl: number) => ({
  issuer: 'urn:warden:orders',
  audience: 'orders',
  ttl,
  claims: {},
  maxEntries: 10,
  maxBytes: 1e6,
  maxTokenBytes: 8192,
});
const mintingDeps = { metrics: { cache() {}, idpCall() {} }, events: { emit() {} } as never };
const unverifiedPeer = { verified: false } as never;
const policy: IssuerPolicy = { id: 'corp', issuer: 'https://idp.test', audience: ['orders'], anyAudience: false, tokenTypes: [] };

t.test(
  'a reload that lowers the token lifetime keeps the key until the tokens it signed under the longer one expire (+ leeway)',
  async (t) => {
    // Red-team round 14, finding 2: mint.ttl 1h -> 1m with key_rotation 90s; the key that signed a
    // 1 h token was retired on the new 1 min lifetime and left the JWKS ~3 min after the reload.
    const { clock, now } = testClock();
    const leeway = 30_000;
    const before = await createSigningKeys({ rotateEvery: 90_000, tokenLifetime: 3_600_000, leeway, now });
    before.stop();
    const sourceExp = Math.floor(Date.now() / 1000) + 7200;
    const p = principalOf({ sub: 'carol', aud: 'orders', exp: sourceExp }, policy, 'jwt', 'aa'.repeat(32));
    const token = (await createMinter(mintingOptions(3_600_000), before, mintingDeps).tokenFor(p, unverifiedPeer)) as string;
    const { exp } = decodeJwt(token) as { exp: number };
    const signer = decodeProtectedHeader(token).kid as string;

    // The reload: the same keys, a ring on the new lifetime.
    const keys = await createSigningKeys({ rotateEvery: 90_000, tokenLifetime: 60_000, leeway, now }, before.state());
    t.teardown(() => keys.stop());
    const shortMinter = createMinter(mintingOptions(60_000), keys, mintingDeps);
    const verifies = async () => {
      const jwks = createLocalJWKSet(JSON.parse(keys.jwksJson()) as Parameters<typeof createLocalJWKSet>[0]);
      return jwtVerify(token, jwks, { audience: 'orders', typ: 'at+jwt', currentDate: new Date(Math.min(clock.ms, exp * 1000 - 1)) }).then(
        () => true,
        () => false,
      );
    };
    // A key the new lifetime's tokens alone were signed with is still retired on that lifetime.
    let shortLived: { kid: string; retiredAt: number } | undefined;
    const missing: number[] = [];
    const end = exp * 1000 + leeway;
    let rotations = 0;
    while (clock.ms + 90_000 < end) {
      clock.ms += 90_000;
      await keys.rotate();
      rotations++;
      if (rotations === 1) {
        // The second key signs a 1 min token now, then is retired at the next rotation.
        const q = principalOf({ sub: 'dave', aud: 'orders', exp: sourceExp }, policy, 'jwt', 'bb'.repeat(32));
        const short = (await shortMinter.tokenFor(q, unverifiedPeer)) as string;
        shortLived = { kid: decodeProtectedHeader(short).kid as string, retiredAt: 0 };
      } else if (rotations === 2 && shortLived) shortLived.retiredAt = clock.ms;
      if (!kids(keys.jwksJson()).includes(signer) || !(await verifies())) missing.push((clock.ms - (end - leeway)) / 1000);
    }
    t.ok(rotations > 30, `${rotations} rotations over the token's hour`);
    t.same(missing, [], "the 1 h token's key is published, and the token verifies, after every rotation until its exp + leeway");
    t.ok(shortLived && shortLived.retiredAt > 0, 'a second key signed a 1 min token and was retired');
    t.notOk(
      kids(keys.jwksJson()).includes(shortLived!.kid),
      'a key that signed only 1 min tokens left long ago (ttl + leeway after its retirement)',
    );

    clock.ms = end - 1;
    await keys.rotate();
    t.ok(kids(keys.jwksJson()).includes(signer), 'still published 1 ms before exp + leeway');
    clock.ms = end;
    await keys.rotate();
    t.notOk(kids(keys.jwksJson()).includes(signer), 'gone at exp + leeway');
  },
);

t.test('a token the ring before a reload signs after the reload (a request in flight) keeps its key published too', async (t) => {
  const { clock, now } = testClock();
  const before = await createSigningKeys({ rotateEvery: 90_000, tokenLifetime: 3_600_000, leeway: 0, now });
  t.teardown(() => before.stop());
  // The reload takes the keys as they stand; the runtime before still finishes its requests.
  const keys = await createSigningKeys({ rotateEvery: 90_000, tokenLifetime: 60_000, leeway: 0, now }, before.state());
  t.teardown(() => keys.stop());
  const p = principalOf({ sub: 'erin', aud: 'orders', exp: Math.floor(Date.now() / 1000) + 7200 }, policy, 'jwt', 'cc'.repeat(32));
  const token = (await createMinter(mintingOptions(3_600_000), before, mintingDeps).tokenFor(p, unverifiedPeer)) as string;
  const signer = decodeProtectedHeader(token).kid as string;
  t.equal(signer, keys.current().kid, 'signed with the key the new ring carries');
  clock.ms += 90_000;
  await keys.rotate();
  clock.ms += 600_000;
  await keys.rotate();
  t.ok(kids(keys.jwksJson()).includes(signer), "10 min on, the new ring still publishes the key of the old ring's 1 h token");
});
