/**
 * A reload that lowers `tokens.mint.ttl` keeps the signing key published until the tokens it signed
 * under the longer ttl have expired (+ leeway). Red-team round 14, finding 2: ttl 1h -> 1m with
 * key_rotation 90s; the key that signed a 1 h token was retired on the new 1 min lifetime and left
 * the JWKS ~3 min after the reload, and the backend refused the token (ERR_JWKS_NO_MATCHING_KEY)
 * with 57 min left.
 *
 * The sidecar runs in this process; its clock (Date.now) is moved forward instead of waiting the
 * 90 s rotations out. A ring rotates on its own timer, set from Date.now when the ring is built: a
 * reload that changes `tokens` builds the ring again, and one past the rotation's time rotates at once.
 */
import t from 'tap';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, testConfigYaml } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const realNow = Date.now.bind(Date);
let skewMs = 0;
Date.now = () => realNow() + skewMs;
t.teardown(() => {
  Date.now = realNow;
});
const now = () => Math.floor(Date.now() / 1000);

t.test('a reload that lowers mint.ttl: the 1 h token minted before verifies against the JWKS until its exp', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const config = (ttl: string) => ({
    service: { name: 'orders' },
    tokens: {
      issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['orders-api'], jwt: { algorithms: ['ES256'], typ: 'at+jwt' } }],
      leeway: '30s',
      mint: { audience: 'orders-backend', ttl, key_rotation: '90s' },
    },
    routes: [{ id: 'orders', path: '/echo', scopes: { all_of: ['orders:read'] } }],
  });
  const s = await startTestSidecar(t, backend.url, config('1h'));
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const external = await idp.sign({
    sub: 'carol',
    scope: 'orders:read',
    aud: 'orders-api',
    iss: idp.issuer,
    iat: now(),
    exp: now() + 2 * 3600,
  });
  const minted = async () => {
    const at = backend.requests.length;
    t.equal((await fetchText(`${s.url}/echo`, agent, { headers: { authorization: `Bearer ${external}` } })).status, 200, 'served');
    return String(backend.requests[at]?.headers.authorization ?? '').slice('Bearer '.length);
  };
  const jwksUrl = new URL(`${s.adminUrl}/.well-known/jwks.json`);
  // A backend that fetches the JWKS now (one started since, or refetching for a newer kid).
  const verifyNow = (jwt: string) =>
    jwtVerify(jwt, createRemoteJWKSet(jwksUrl), { audience: 'orders-backend', typ: 'at+jwt', algorithms: ['ES256'] });
  const publishedKids = async () => (await fetchText(jwksUrl.href, agent)).json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
  const reload = async (ttl: string) => {
    const text = await testConfigYaml(backend.url, config(ttl));
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), `reloaded with mint.ttl ${ttl}`);
  };
  /** Moves the clock to `at` s after the start and reloads; the ring, past its rotation time, rotates. */
  const rotateAt = async (at: number, ttl: string) => {
    const signing = decodeProtectedHeader(await minted()).kid;
    skewMs = at * 1000;
    await reload(ttl);
    for (let i = 0; i < 100 && decodeProtectedHeader(await minted()).kid === signing; i++) await new Promise((r) => setTimeout(r, 20));
    t.not(decodeProtectedHeader(await minted()).kid, signing, `rotated at t+${at}s`);
  };

  const longToken = await minted();
  const { exp, iat } = decodeJwt(longToken) as { exp: number; iat: number };
  t.equal(exp - iat, 3600, 'minted under mint.ttl 1h');
  t.equal(await minted(), longToken, 'reused from the minted-token cache before the reload');
  const signer = decodeProtectedHeader(longToken).kid as string;
  await t.resolves(verifyNow(longToken), 'verifies');

  await reload('1m');
  const afterReload = await minted();
  t.not(afterReload, longToken, 'the cache is not carried over a reload that changes tokens: a new token');
  t.ok((decodeJwt(afterReload).exp as number) - now() <= 60, 'on the new 1 min ttl');
  t.equal(decodeProtectedHeader(afterReload).kid, signer, 'signed by the same key (the ring is kept)');

  // Rotations at t+91 s (the signer retired) and t+200 s (before the fix, it then left the JWKS:
  // retired on 1 min + 30 s leeway). Each reload alternates the ttl so that `tokens` changes.
  await rotateAt(91, '61s');
  await t.resolves(verifyNow(longToken), 't+91s: the retired key is published');
  await rotateAt(200, '1m');
  t.ok((await publishedKids()).includes(signer), 't+200s: the key that signed the 1 h token is still in the JWKS');
  await t.resolves(verifyNow(longToken), `t+200s: the 1 h token (${exp - now()} s left) still verifies`);
  await rotateAt(3000, '61s');
  await t.resolves(verifyNow(longToken), `t+3000s: still verifies (${exp - now()} s left)`);

  // Once it has expired (+ the 30 s leeway), the key goes.
  await rotateAt(exp - iat + 31, '1m');
  t.notOk((await publishedKids()).includes(signer), 'gone once exp + leeway has passed');
});
