/**
 * The minted-token cache keeps what a minted token says, not the caller token it came from: each
 * entry held the whole principal (every claim of the introspection answer or JWT payload) while
 * counting only the minted JWT's bytes, so `tokens.cache.max_bytes` did not bound it — 400 tokens
 * whose IdP answer carried a 900 KB unmapped claim grew a sidecar by 350 MiB, and with a 256 MiB
 * heap it died of OOM (red team 29, finding 1). Measured: the heap retained after minting for
 * principals nothing else holds any more.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { decodeJwt } from 'jose';
import { createMinter } from '../../../src/identity/minter.js';
import { principalOf, type IssuerPolicy } from '../../../src/identity/principal.js';
import { createSigningKeys } from '../../../src/identity/signing-keys.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const policy: IssuerPolicy = { id: 'corp', issuer: 'https://idp.test', audience: ['orders'], anyAudience: false, tokenTypes: [] };
const unverifiedPeer = { verified: false } as const;

t.test('a minted entry does not keep the caller token’s unmapped claims alive', async (t) => {
  const keys = await createSigningKeys({ rotateEvery: 86_400_000, tokenLifetime: 300_000, leeway: 30_000 });
  t.teardown(() => keys.stop());
  const minter = createMinter(
    // The defaults but for the claim mapping: 10 000 entries, 16 MiB.
    {
      issuer: 'urn:warden:orders',
      audience: 'orders',
      ttl: 300_000,
      claims: { tenant: 'org' },
      maxEntries: 10_000,
      maxBytes: 16 << 20,
      maxTokenBytes: 8192,
    },
    keys,
    { metrics: { cache() {}, idpCall() {} }, events: { emit() {} } as never },
  );
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const TOKENS = 64;
  // 1 MiB of profile per answer, neither mapped nor minted (random: a repeated pattern is one shared string)
  const CLAIM = 1 << 20;
  // As an IdP's answer is read: parsed from JSON, so on the heap (a long Buffer.toString is external).
  const parsedProfile = () => JSON.parse(`{"profile":"${randomBytes(CLAIM / 2).toString('hex')}"}`) as Record<string, unknown>;
  const answer = (i: number) =>
    principalOf(
      {
        sub: `user${i}`,
        aud: 'orders',
        exp,
        scope: 'orders:read',
        org: { id: i },
        act: { sub: 'svc', note: 'y'.repeat(64) },
        ...parsedProfile(),
      },
      policy,
      'introspection',
      i.toString(16).padStart(64, '0'),
    );

  gc();
  const before = process.memoryUsage().heapUsed;
  const first: string[] = [];
  for (let i = 0; i < TOKENS; i++) first.push((await minter.tokenFor(answer(i), unverifiedPeer as never)) as string);
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  const mib = (n: number) => (n / (1 << 20)).toFixed(1);
  t.ok(grown < 8 << 20, `${TOKENS} minted tokens from ${mib(TOKENS * CLAIM)} MiB of unmapped claims retain ${mib(grown)} MiB (< 8)`);

  // The cache still works as before: the same answer again (a new object, as a re-check gives) is
  // the cached token; a mapped claim, the actors or the scope changed is a new one.
  const again = (await minter.tokenFor(answer(3), unverifiedPeer as never)) as string;
  t.equal(decodeJwt(again).jti, decodeJwt(first[3] as string).jti, 'the same answer again: the cached token');
  const changed = (claims: Record<string, unknown>) =>
    principalOf(
      { sub: 'user5', aud: 'orders', exp, scope: 'orders:read', org: { id: 5 }, act: { sub: 'svc', note: 'y'.repeat(64) }, ...claims },
      policy,
      'introspection',
      (5).toString(16).padStart(64, '0'),
    );
  const jtiOf = async (claims: Record<string, unknown>) =>
    decodeJwt((await minter.tokenFor(changed(claims), unverifiedPeer as never)) as string).jti;
  t.equal(await jtiOf({}), decodeJwt(first[5] as string).jti, 'an unmapped claim changed (profile gone): the cached token');
  const actor = await jtiOf({ act: { sub: 'svc-2' } });
  t.not(actor, decodeJwt(first[5] as string).jti, 'another actor: a new token');
  const mapped = await jtiOf({ act: { sub: 'svc-2' }, org: { id: 6 } });
  t.not(mapped, actor, 'a mapped claim changed: a new token');
  t.equal(await jtiOf({ act: { sub: 'svc-2' }, org: { id: 6 }, note: 'z' }), mapped, 'and reused from then on');
  t.not(await jtiOf({ act: { sub: 'svc-2' }, org: { id: 6 }, scope: 'orders:write' }), mapped, 'the scope changed: a new token');
  t.not(
    await jtiOf({ act: { sub: 'svc-2' }, org: null, scope: 'orders:write' }),
    mapped,
    'a mapped claim null (minted as null): a new token',
  );
});
