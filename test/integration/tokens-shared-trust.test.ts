/**
 * What a replica takes from Redis, and for how long (docs/adversarial.md defects 136, 138, 139):
 * an entry written by anything that can reach Redis but is not a replica of the service — a
 * made-up introspection answer, a revocation mark, a message on the channel — counts for nothing;
 * a stored answer is trusted for the reader's own revocation_lag from the time the IdP gave it, not
 * for as long as its writer chose; and services on one Redis have their own keys by default.
 * A real Redis, a real IdP (oidc-provider), in-process sidecars.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

t.test('shared token state: only what a replica of this service stored counts', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  const call = async (s: TestSidecar, token: string, path = '/x') => {
    const agent = testAgent(s.ca);
    try {
      return await fetchText(`${s.url}${path}`, agent, { headers: { authorization: `Bearer ${token}` } });
    } finally {
      await agent.close();
    }
  };
  const prefix = `trust${Date.now()}:`;
  const config = {
    service: { name: 'orders' },
    tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url, prefix } },
    routes: [
      { id: 'admin', path: '/admin/*', scopes: { all_of: ['orders:admin'] } },
      { id: 'api', path: '/*' },
    ],
  };
  const s = await startTestSidecar(t, backend.url, config);

  await t.test('a made-up answer written to Redis logs nobody in; the IdP is asked', async (t) => {
    const claims = {
      active: true,
      sub: 'admin',
      client_id: 'ops-console',
      scope: 'orders:admin',
      aud: idp.audience,
      iss: idp.issuer,
      exp: Math.floor(Date.now() / 1000) + 600,
    };
    const forged = ['attacker-chosen-0001', 'attacker-chosen-0002', 'attacker-chosen-0003'];
    for (const token of forged) {
      await admin.set(`${prefix}tok:${sha256(`${idp.issuer}\n${token}`)}`, JSON.stringify(claims), 'PX', 60_000);
    }
    idp.resetCounts();
    const before = backend.requests.length;
    for (const token of forged) {
      const res = await call(s, token, '/admin/x');
      t.equal(res.status, 401, `${token}: refused`);
      t.match(res.json(), { code: 'ERR_AUTHN_TOKEN_INACTIVE' });
    }
    t.equal(idp.introspectionCount, forged.length, 'the IdP was asked about each token');
    t.equal(backend.requests.length, before, 'the backend saw none of them');
    const rejected = s.events.filter((e) => e.name === 'warden.token.shared_rejected');
    t.equal(rejected.length, 1, 'reported once, not per request');
    t.match(rejected[0], { 'warden.rule': 'shared.answer', 'warden.count': 1 });
  });

  await t.test('a made-up revocation mark or message does not deny a token', async (t) => {
    const { accessToken } = await idp.issueToken();
    const hash = sha256(`${idp.issuer}\n${accessToken}`);
    await admin.set(`${prefix}rev:${hash}`, '1', 'PX', 60_000);
    await admin.publish(`${prefix}revocations`, `${hash} ${Date.now() + 3_600_000}`);
    // The message is delivered asynchronously: a few requests over a while, all served.
    for (let i = 0; i < 5; i++) {
      t.equal((await call(s, accessToken)).status, 200, `request ${i + 1} served`);
      await sleep(20);
    }
  });

  await t.test("a stored answer is trusted for the reader's revocation_lag, not its writer's", async (t) => {
    const lagged = (lag: string) => ({
      ...config,
      tokens: { ...config.tokens, cache: { max_ttl: lag }, shared: { ...config.tokens.shared, revocation_lag: lag } },
    });
    const long = await startTestSidecar(t, backend.url, lagged('60s'));
    const short = await startTestSidecar(t, backend.url, lagged('300ms'));
    const { accessToken } = await idp.issueToken();
    t.equal((await call(long, accessToken)).status, 200, 'the replica with a 60 s lag stored the answer');
    await idp.revoke(accessToken);
    idp.resetCounts();
    await sleep(700);
    const late = await call(short, accessToken);
    t.equal(late.status, 401, 'the replica with a 300 ms lag asked the IdP again and refused it');
    t.equal(idp.introspectionCount, 1);
  });

  await t.test('services on one Redis: keys of their own by default', async (t) => {
    const inRedis = async (pattern: string) => (await admin.keys(pattern)).length;
    const byName = (name: string) => ({
      service: { name },
      tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url } },
    });
    const orders = await startTestSidecar(t, backend.url, byName('orders'));
    const inventory = await startTestSidecar(t, backend.url, byName('inventory'));
    const { accessToken } = await idp.issueToken();
    idp.resetCounts();
    t.equal((await call(orders, accessToken)).status, 200);
    let stored = 0;
    for (let i = 0; i < 20 && stored === 0; i++) {
      await sleep(20);
      stored = await inRedis('warden:orders:tok:*');
    }
    t.equal(stored, 1, 'the answer is under warden:orders:');
    t.equal((await call(inventory, accessToken)).status, 200);
    t.equal(idp.introspectionCount, 2, "inventory did not read orders' answer: it asked the IdP");
    t.equal(await inRedis('warden:tok:*'), 0, 'nothing under the old shared prefix');
  });
});
