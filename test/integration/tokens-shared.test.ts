/**
 * Replicas sharing introspection answers and revocations through a real Redis: the IdP is asked
 * once per token for the whole fleet, a revocation through one replica is refused by every replica
 * at once, a revocation at the IdP is seen everywhere within revocation_lag, and a Redis outage
 * degrades to local caches without refusing good tokens.
 */
import t from 'tap';
import { request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('shared token state through Redis', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const config = {
    service: { name: 'orders' },
    tokens: {
      issuers: [demoIssuer(idp)],
      cache: { max_ttl: '60s' },
      shared: { redis: redis.url, prefix: `t${Date.now()}:`, revocation_lag: '600ms' },
    },
  };
  const a = await startTestSidecar(t, backend.url, config);
  const b = await startTestSidecar(t, backend.url, config);
  const agentA = testAgent(a.ca);
  const agentB = testAgent(b.ca);
  t.teardown(() => Promise.all([agentA.close(), agentB.close()]));
  const call = (s: typeof a, token: string) =>
    fetchText(`${s.url}/x`, s === a ? agentA : agentB, { headers: { authorization: `Bearer ${token}` } });

  await t.test('one IdP call per token for the whole fleet', async (t) => {
    const { accessToken } = await idp.issueToken();
    idp.resetCounts();
    t.equal((await call(a, accessToken)).status, 200);
    t.equal((await call(b, accessToken)).status, 200);
    t.equal(idp.introspectionCount, 1, 'replica B used the answer replica A stored');
  });

  await t.test("an answer a replica of another configuration stored is judged by this one's own", async (t) => {
    // Same issuer, prefix and IdP client (a rollout), but this one accepts only a token_type the IdP never answers.
    const strict = await startTestSidecar(t, backend.url, {
      ...config,
      tokens: { ...config.tokens, issuers: [demoIssuer(idp, 'demo', { token_types: ['urn:example:none'] })] },
    });
    const agent = testAgent(strict.ca);
    t.teardown(() => agent.close());
    const { accessToken } = await idp.issueToken();
    idp.resetCounts();
    t.equal((await call(a, accessToken)).status, 200, 'accepted where any token_type is');
    const refused = await fetchText(`${strict.url}/x`, agent, { headers: { authorization: `Bearer ${accessToken}` } });
    t.equal(idp.introspectionCount, 1, 'the strict sidecar read the stored answer');
    t.equal(refused.status, 401, 'and refused it by its own token_types');
    t.match(refused.json(), { code: 'ERR_AUTHN_TOKEN_INVALID', detail: /token_type/ });
  });

  await t.test('revoked through one replica: refused by every replica at once, and at the IdP', async (t) => {
    const { accessToken } = await idp.issueToken();
    t.equal((await call(a, accessToken)).status, 200);
    t.equal((await call(b, accessToken)).status, 200);
    const res = await request(`${a.adminUrl}/tokens/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: accessToken }).toString(),
    });
    const outcome = (await res.body.json()) as Record<string, unknown>;
    t.equal(res.statusCode, 200);
    t.match(outcome, { revoked: true, idp: true, shared: true });
    t.notOk(JSON.stringify(outcome).includes(accessToken), 'the answer does not echo the token');
    // Pub/sub delivery is asynchronous: allow it a moment, far below revocation_lag and max_ttl.
    let status = 0;
    for (let i = 0; i < 20 && status !== 401; i++) {
      await sleep(10);
      status = (await call(b, accessToken)).status;
    }
    t.equal(status, 401, 'replica B refuses the token well before its 60 s cache entry would expire');
    t.equal((await call(a, accessToken)).json().code, 'ERR_AUTHN_TOKEN_INACTIVE');
    t.ok(b.events.some((e) => e.name === 'warden.authn.token_inactive' && e['warden.rule'] === 'token.revoked'));
    t.ok(a.events.some((e) => e.name === 'warden.token.revoked'));
  });

  await t.test('bad revocation requests: a problem with a stable code, nothing revoked', async (t) => {
    const revoke = async (type: string, body: string) => {
      const res = await request(`${a.adminUrl}/tokens/revoke`, { method: 'POST', headers: { 'content-type': type }, body });
      return { status: res.statusCode, type: res.headers['content-type'], problem: (await res.body.json()) as Record<string, unknown> };
    };
    const cases: [string, string, string, number, string][] = [
      ['no token', 'application/x-www-form-urlencoded', 'nothing=1', 400, 'ERR_REQUEST_MALFORMED'],
      ['an empty token', 'application/json', '{"token":""}', 400, 'ERR_REQUEST_MALFORMED'],
      ['JSON that does not parse', 'application/json', '{"token":', 400, 'ERR_REQUEST_MALFORMED'],
      ['a body over 16 KiB', 'application/x-www-form-urlencoded', `token=${'a'.repeat(17 * 1024)}`, 413, 'ERR_BODY_TOO_LARGE'],
      ['a token that looks like a JWT but does not decode', 'application/json', '{"token":"aaaa.bbbb.cccc"}', 400, 'ERR_REQUEST_MALFORMED'],
    ];
    const revokedBefore = a.events.filter((e) => e.name === 'warden.token.revoked').length;
    for (const [name, type, body, status, code] of cases) {
      const r = await revoke(type, body);
      t.equal(r.status, status, `${name}: ${status}`);
      t.equal(r.type, 'application/problem+json', `${name}: a problem document`);
      t.match(r.problem, { status, code, detail: String }, `${name}: ${code}`);
    }
    t.equal(a.events.filter((e) => e.name === 'warden.token.revoked').length, revokedBefore, 'nothing revoked');
  });

  await t.test('revoked at the IdP directly: refused everywhere within revocation_lag', async (t) => {
    const { accessToken } = await idp.issueToken();
    t.equal((await call(a, accessToken)).status, 200);
    t.equal((await call(b, accessToken)).status, 200);
    await idp.revoke(accessToken);
    await sleep(800);
    t.equal((await call(a, accessToken)).status, 401, 'replica A: refused after the lag');
    t.equal((await call(b, accessToken)).status, 401, 'replica B: refused after the lag');
  });

  await t.test('Redis down: good tokens still work (local cache + IdP); back up: shared again', async (t) => {
    const connections = await redis.clients();
    await redis.stop();
    const { accessToken } = await idp.issueToken();
    t.equal((await call(a, accessToken)).status, 200, 'a new token is introspected at the IdP');
    t.equal((await call(b, accessToken)).status, 200);
    await redis.start();
    await redis.waitForClients(connections); // ioredis reconnects with backoff (≤ 2 s)
    const next = await idp.issueToken();
    idp.resetCounts();
    t.equal((await call(a, next.accessToken)).status, 200);
    t.equal((await call(b, next.accessToken)).status, 200);
    t.equal(idp.introspectionCount, 1, 'sharing resumed after Redis came back');
  });
});
