/** The minted tokens' key ring: rotation publishes the new key and keeps the old one until its tokens are gone. */
import t from 'tap';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
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
