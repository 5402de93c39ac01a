/** The minted tokens' key ring: rotation publishes the new key and keeps the old one until its tokens are gone. */
import t from 'tap';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { createSigningKeys } from '../../../src/identity/signing-keys.js';

const kids = (json: string) => (JSON.parse(json) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

t.test('rotation keeps the retired key in the JWKS until its tokens have expired', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 3_600_000, tokenLifetime: 300, leeway: 0 });
  t.teardown(() => keys.stop());
  const first = keys.current();
  t.same(kids(keys.jwksJson()), [first.kid], 'one key at start');
  t.match(JSON.parse(keys.jwksJson()), { keys: [{ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' }] });
  t.notOk('d' in (JSON.parse(keys.jwksJson()) as { keys: Record<string, unknown>[] }).keys[0]!, 'no private part is published');

  const oldToken = await new SignJWT({ n: 1 })
    .setProtectedHeader({ alg: 'ES256', kid: first.kid })
    .setExpirationTime('5m')
    .sign(first.privateKey);
  await keys.rotate();
  const second = keys.current();
  t.not(second.kid, first.kid, 'a new key signs from now on');
  t.same(kids(keys.jwksJson()), [second.kid, first.kid], 'the retired key is still published');
  const jwks = createLocalJWKSet(JSON.parse(keys.jwksJson()) as Parameters<typeof createLocalJWKSet>[0]);
  t.ok(await jwtVerify(oldToken, jwks), 'a token signed before the rotation still verifies');

  await new Promise((r) => setTimeout(r, 350));
  await keys.rotate(); // publishing happens on rotation (and on a timer between rotations)
  const published = kids(keys.jwksJson());
  t.notOk(published.includes(first.kid), 'the first key is gone once its tokens (300 ms life) have expired');
  t.ok(published.includes(second.kid), 'the second key stays: its tokens may still be valid');
});
