/**
 * The phantom-token path against a real OpenID provider (oidc-provider): opaque tokens are
 * introspected (RFC 7662) with each client authentication method, the backend receives a minted
 * JWT it can verify with the sidecar's JWKS, concurrent misses coalesce into one IdP call, a
 * revocation takes effect after the cache's max_ttl, and cached tokens ride through an IdP outage.
 */
import t from 'tap';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { Agent } from 'undici';
import { startDemoIdp, type DemoIdp } from '../../src/dev/demo-idp.js';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend, type TestBackend } from '../support/backend.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { fetchText, oneConnectionClient, testAgent } from '../support/clients.js';
import { startTestSidecar, testConfigYaml, type Teardown } from '../support/sidecar.js';
import { enrollWorkload } from '../support/workload.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function idpUnderTest(t: Teardown, options: Parameters<typeof startDemoIdp>[0] = {}): Promise<DemoIdp> {
  const idp = await startDemoIdp(options);
  t.teardown(() => idp.close());
  return idp;
}

function tokensConfig(
  idp: DemoIdp,
  extra: Record<string, unknown> = {},
  client: 'basic' | 'post' | 'privateKeyJwt' = 'basic',
  keyFile?: string,
) {
  const c = idp.introspectionClients;
  const introspection =
    client === 'privateKeyJwt'
      ? { client_id: c.privateKeyJwt.clientId, auth_method: 'private_key_jwt', private_key: keyFile, private_key_kid: c.privateKeyJwt.kid }
      : {
          client_id: c[client].clientId,
          client_secret: c[client].clientSecret,
          auth_method: client === 'basic' ? 'client_secret_basic' : 'client_secret_post',
        };
  return {
    service: { name: 'orders' },
    tokens: {
      issuers: [{ id: 'demo', issuer: idp.issuer, audience: [idp.audience], introspection, jwt: { typ: 'at+jwt' } }],
      mint: { audience: 'orders-backend' },
      ...extra,
    },
    routes: [
      { id: 'read', path: '/echo', scopes: { any_of: ['orders:read', 'orders:write'] } },
      { id: 'write', path: '/write', scopes: { all_of: ['orders:write'] } },
    ],
  };
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const lastAuth = (backend: TestBackend) => String(backend.requests.at(-1)?.headers.authorization ?? '');

t.test('opaque token → the backend receives a minted JWT that verifies with the sidecar JWKS', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const s = await startTestSidecar(
    t,
    backend.url,
    tokensConfig(idp, { mint: { audience: 'orders-backend', claims: { idp_token_type: 'token_type' } } }),
  );
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());

  const issued = await idp.issueToken({ scope: 'orders:read' });
  const res = await fetchText(`${s.url}/echo`, agent, bearer(issued.accessToken));
  t.equal(res.status, 200);
  const auth = lastAuth(backend);
  t.match(auth, /^Bearer /);
  const minted = auth.slice(7);
  t.notOk(JSON.stringify(backend.requests.at(-1)?.headers).includes(issued.accessToken), 'the opaque token never reaches the backend');

  const jwks = createRemoteJWKSet(new URL(`${s.adminUrl}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(minted, jwks, {
    issuer: 'urn:warden:orders',
    audience: 'orders-backend',
    typ: 'at+jwt',
  });
  t.equal(protectedHeader.alg, 'ES256');
  t.equal(payload.client_id, 'demo-client');
  t.equal(payload.sub, 'client:demo-client', 'client_credentials tokens have no sub: the client, in a namespace of its own');
  t.equal(payload.idp, idp.issuer, 'the IdP that vouched for the caller');
  t.equal(payload.scope, 'orders:read');
  t.equal(payload.idp_token_type, 'Bearer', 'claim mapping copies a source claim');
  const sourceExp = Math.floor(Date.now() / 1000) + issued.expiresIn;
  t.ok((payload.exp as number) <= sourceExp, 'exp ≤ the source token exp');
  t.ok((payload.exp as number) - (payload.iat as number) <= 300, 'exp ≤ 5 min after iat');

  const denied = await fetchText(`${s.url}/write`, agent, bearer(issued.accessToken));
  t.equal(denied.status, 403, 'orders:read does not grant the write route');
  t.equal(denied.headers['www-authenticate'], 'Bearer realm="orders", error="insufficient_scope", scope="orders:write"');

  const junk = await fetchText(`${s.url}/echo`, agent, bearer('not-a-token-the-idp-issued'));
  t.equal(junk.status, 401);
  t.equal(junk.json().code, 'ERR_AUTHN_TOKEN_INACTIVE');
  t.ok(s.events.some((e) => e.name === 'warden.authn.token_inactive' && e['warden.rule'] === 'introspection.active'));

  t.equal(s.sidecar.metrics.registry.getSingleMetric('warden_token_cache_total') !== undefined, true, 'cache metrics registered');
});

t.test('100 concurrent requests with one new token make exactly one introspection call', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  idp.setIntrospectionDelay(100); // keep the first call in flight while the others arrive
  const s = await startTestSidecar(t, backend.url, tokensConfig(idp));
  const h2 = testAgent(s.ca, { h2: true, connections: 2 });
  const h1 = testAgent(s.ca, { connections: 50 });
  t.teardown(() => Promise.all([h2.close(), h1.close()]));
  const { accessToken } = await idp.issueToken();
  idp.resetCounts();
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => fetchText(`${s.url}/echo`, i % 2 ? h2 : h1, bearer(accessToken)).then((r) => r.status)),
  );
  t.same([...new Set(results)], [200], 'all 100 succeed');
  t.equal(idp.introspectionCount, 1, 'one introspection call for 100 concurrent requests');
  await fetchText(`${s.url}/echo`, h1, bearer(accessToken));
  t.equal(idp.introspectionCount, 1, 'and none for later ones within the cache lifetime');
});

t.test('one kept-alive connection, several opaque tokens: each request is judged on its own token', async (t) => {
  // The sidecar remembers the hash of a connection's last token (token-hash.ts): it must never
  // stand in for another token on that connection, nor outlive a revocation.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const s = await startTestSidecar(t, backend.url, tokensConfig(idp));
  const { client, connects } = oneConnectionClient(t, s.url, s.ca);
  const call = async (path: string, token: string) => {
    const res = await client.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
    await res.body.text();
    const scope = res.statusCode === 200 ? String(decodeJwt(lastAuth(backend).slice(7)).scope) : undefined;
    return { status: res.statusCode, scope };
  };
  const reader = (await idp.issueToken({ scope: 'orders:read' })).accessToken;
  const writer = (await idp.issueToken({ scope: 'orders:write' })).accessToken;

  t.same(await call('/echo', reader), { status: 200, scope: 'orders:read' });
  t.same(await call('/write', reader), { status: 403, scope: undefined }, 'the reader on the write route');
  t.same(await call('/write', writer), { status: 200, scope: 'orders:write' }, 'another token');
  t.same(await call('/echo', 'not-a-token-the-idp-issued'), { status: 401, scope: undefined }, 'a junk token after a valid one');
  t.same(await call('/echo', `${writer}x`), { status: 401, scope: undefined }, 'the last valid token with one character more');
  t.same(await call('/echo', reader), { status: 200, scope: 'orders:read' }, 'back to the first token');
  const admin = new Agent();
  t.teardown(() => admin.close());
  const revoked = await fetchText(`${s.adminUrl}/tokens/revoke`, admin, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: reader }).toString(),
  });
  t.equal(revoked.status, 200, 'revoked on the admin listener');
  t.same(
    await call('/echo', reader),
    { status: 401, scope: undefined },
    'revoked through the sidecar, on the connection that last sent it',
  );
  t.equal(connects(), 1, 'every request went over one connection');
});

t.test('each client authentication method works against the real IdP', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const { accessToken } = await idp.issueToken();
  const keyFile = join(mkdtempSync(join(tmpdir(), 'warden-pkjwt-')), 'key.pem');
  writeFileSync(keyFile, idp.introspectionClients.privateKeyJwt.privateKeyPem);
  for (const method of ['basic', 'post', 'privateKeyJwt'] as const) {
    const s = await startTestSidecar(t, backend.url, tokensConfig(idp, {}, method, keyFile));
    const agent = testAgent(s.ca);
    const res = await fetchText(`${s.url}/echo`, agent, bearer(accessToken));
    await agent.close();
    t.equal(res.status, 200, `${method}: introspection succeeded`);
  }
});

t.test('a token revoked at the IdP is refused once the cache entry expires (max_ttl)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const s = await startTestSidecar(t, backend.url, tokensConfig(idp, { cache: { max_ttl: '700ms' } }));
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const { accessToken } = await idp.issueToken();
  t.equal((await fetchText(`${s.url}/echo`, agent, bearer(accessToken))).status, 200);
  await idp.revoke(accessToken);
  t.equal(
    (await fetchText(`${s.url}/echo`, agent, bearer(accessToken))).status,
    200,
    'still cached right after the revocation (bounded by max_ttl)',
  );
  await sleep(800);
  const after = await fetchText(`${s.url}/echo`, agent, bearer(accessToken));
  t.equal(after.status, 401, 'refused after max_ttl');
  t.equal(after.json().code, 'ERR_AUTHN_TOKEN_INACTIVE');
});

t.test('IdP down: cached tokens keep working until their expiry, new ones get 503', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t, { accessTokenTtlSeconds: 3 });
  const s = await startTestSidecar(
    t,
    backend.url,
    tokensConfig(idp, {
      cache: { max_ttl: '300ms' },
      idp: { grace: '1h', timeouts: { connect: '500ms', response: '500ms' } },
      leeway: '0s',
    }),
  );
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const cached = await idp.issueToken();
  const fresh = await idp.issueToken();
  t.equal((await fetchText(`${s.url}/echo`, agent, bearer(cached.accessToken))).status, 200);
  await idp.close();
  await sleep(400); // past max_ttl: the entry is stale, the IdP is gone
  const during = await fetchText(`${s.url}/echo`, agent, bearer(cached.accessToken));
  t.equal(during.status, 200, 'a cached token is served within the grace window while the IdP is down');
  const refused = await fetchText(`${s.url}/echo`, agent, bearer(fresh.accessToken));
  t.equal(refused.status, 503, 'a token never seen cannot be checked: 503, not 401');
  t.equal(refused.json().code, 'ERR_IDP_UNAVAILABLE');
  t.ok(refused.headers['retry-after']);
  await sleep(3000); // the cached token's own exp has passed
  const expired = await fetchText(`${s.url}/echo`, agent, bearer(cached.accessToken));
  t.not(expired.status, 200, `after its exp the cached token is not served (${expired.status})`);
});

t.test('mTLS caller: the minted token names the calling workload (act) and binds its certificate (cnf)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const { ca } = await startCaUnderTest(t);
  const server = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`, ['localhost']);
  const caller = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`);
  const s = await startTestSidecar(t, backend.url, {
    ...tokensConfig(idp),
    listeners: {
      inbound: { tls: { cert: server.certFile, key: server.keyFile, client_certificates: 'request', client_ca: server.bundleFile } },
    },
  });
  const agent = new Agent({ connect: { ca: server.bundlePem, cert: caller.certPem, key: caller.keyPem, servername: 'localhost' } });
  t.teardown(() => agent.close());
  const { accessToken } = await idp.issueToken();
  const res = await fetchText(`https://localhost:${s.port}/echo`, agent, bearer(accessToken));
  t.equal(res.status, 200);
  const claims = decodeJwt(lastAuth(backend).slice(7));
  t.same(claims.act, { sub: caller.spiffeId });
  const der = new X509Certificate(readFileSync(caller.certFile)).raw;
  t.same(claims.cnf, { 'x5t#S256': createHash('sha256').update(der).digest('base64url') });
});

t.test('configurable header, reload keeps the caches', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const cfg = tokensConfig(idp, { mint: { header: 'x-internal-token', jwks_path: '/.well-known/jwks.json' } });
  const s = await startTestSidecar(t, backend.url, cfg);
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const { accessToken } = await idp.issueToken();
  t.equal(
    (
      await fetchText(`${s.url}/echo`, agent, {
        headers: { authorization: `Bearer ${accessToken}`, 'x-internal-token': 'forged', x_internal_token: 'forged' },
      })
    ).status,
    200,
  );
  const seen = backend.requests.at(-1)?.headers ?? {};
  t.notOk(seen.authorization, 'no Authorization header reaches the backend');
  // CGI and WSGI backends read X_Internal_Token as the minted token's header (HTTP_X_INTERNAL_TOKEN).
  t.notOk('x_internal_token' in seen, "the minted header's underscored spelling is dropped");
  t.match(
    String(seen['x-internal-token']),
    /^[\w-]+\.[\w-]+\.[\w-]+$/,
    'the bare minted JWT in the configured header (a forged one is replaced)',
  );
  t.equal(decodeProtectedHeader(String(seen['x-internal-token'])).typ, 'at+jwt');

  const count = idp.introspectionCount;
  const text = await testConfigYaml(backend.url, { ...cfg, routes: [...cfg.routes, { id: 'extra', path: '/extra' }] });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), 'reloaded');
  t.equal((await fetchText(`${s.url}/echo`, agent, bearer(accessToken))).status, 200);
  t.equal(idp.introspectionCount, count, 'a reload that keeps `tokens` keeps the introspection cache');
});

t.test('a reload that changes `tokens` keeps the signing keys: tokens minted before still verify, and what is minted after', async (t) => {
  // A backend verifying as docs/tokens.md shows (jose's remote JWKS: no refetch within 30 s of the
  // last): a new key ring at each such reload dropped the old key and signed with an unpublished
  // one, and every request got the backend's 401 (docs/adversarial.md 187).
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const cfg = tokensConfig(idp);
  const s = await startTestSidecar(t, backend.url, cfg);
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const jwks = createRemoteJWKSet(new URL(`${s.adminUrl}/.well-known/jwks.json`));
  const verify = (jwt: string) => jwtVerify(jwt, jwks, { audience: 'orders-backend', typ: 'at+jwt', algorithms: ['ES256'] });

  const first = await idp.issueToken({ scope: 'orders:read' });
  t.equal((await fetchText(`${s.url}/echo`, agent, bearer(first.accessToken))).status, 200);
  const before = lastAuth(backend).slice(7);
  t.ok(await verify(before), 'verifies (the backend fetched the JWKS now)');

  for (const leeway of ['6s', '7s']) {
    const text = await testConfigYaml(backend.url, { ...cfg, tokens: { ...cfg.tokens, leeway } });
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), `reloaded with leeway ${leeway}`);
    const next = await idp.issueToken({ scope: 'orders:read' });
    t.equal((await fetchText(`${s.url}/echo`, agent, bearer(next.accessToken))).status, 200);
    const after = lastAuth(backend).slice(7);
    t.not(after, before, 'a token minted after the reload');
    t.equal(decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid, 'signed with the same key');
    await t.resolves(verify(after), 'verifies with the JWKS the backend holds');
    await t.resolves(verify(before), 'the token minted before the reload still verifies');
  }
  const published = (await fetchText(`${s.adminUrl}/.well-known/jwks.json`, agent)).json<{ keys: { kid: string }[] }>().keys;
  t.ok(
    published.some((k) => k.kid === decodeProtectedHeader(before).kid),
    'the JWKS still lists the key',
  );
});

t.test('negative caching: off by default; when on, a replayed junk token costs one IdP call per period', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await idpUnderTest(t);
  const off = await startTestSidecar(t, backend.url, tokensConfig(idp));
  const on = await startTestSidecar(t, backend.url, tokensConfig(idp, { cache: { negative_ttl: '400ms', negative_max_entries: 10 } }));
  const agentOff = testAgent(off.ca);
  const agentOn = testAgent(on.ca);
  t.teardown(() => Promise.all([agentOff.close(), agentOn.close()]));
  idp.resetCounts();
  for (let i = 0; i < 3; i++) t.equal((await fetchText(`${off.url}/echo`, agentOff, bearer('junk-token'))).status, 401);
  t.equal(idp.introspectionCount, 3, 'off: every request asks the IdP');
  idp.resetCounts();
  for (let i = 0; i < 3; i++) t.equal((await fetchText(`${on.url}/echo`, agentOn, bearer('junk-token'))).status, 401);
  t.equal(idp.introspectionCount, 1, 'on: one call, then the remembered answer');
  await sleep(450);
  await fetchText(`${on.url}/echo`, agentOn, bearer('junk-token'));
  t.equal(idp.introspectionCount, 2, 'asked again after negative_ttl');
  // Bounded: 20 distinct junk tokens with room for 10 — all refused, memory capped by the LRU.
  for (let i = 0; i < 20; i++) t.equal((await fetchText(`${on.url}/echo`, agentOn, bearer(`junk-${i}`))).status, 401);
});
