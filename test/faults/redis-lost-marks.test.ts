/**
 * Revocation marks Redis refused or lost without dropping a connection, so no reconnect wrote them
 * back: a revocation made while Redis refused writes (out of memory under `noeviction`, read-only
 * after a failover demoted it) and a mark evicted afterwards. Each replica writes the revocations
 * it holds back on a timer (`tokens.shared.write_back`, short here); before that, the other replicas
 * and any started later accepted the revoked JWT for its whole life. A real Redis, real sidecars.
 */
import { Redis } from 'ioredis';
import t from 'tap';
import { request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { tokenHash } from '../../src/identity/token-hash.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

type Teardown = { teardown(fn: () => unknown): void };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function revoke(s: TestSidecar, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`${s.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

function caller(t: Teardown, s: TestSidecar) {
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  return async (token: string) => (await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
}

/** Polls `probe` until it gives `want` (at most 10 s: many write-back periods): the last answer. */
async function eventually<T>(probe: () => Promise<T>, want: T): Promise<T> {
  let got = await probe();
  for (let i = 0; i < 200 && got !== want; i++) {
    await sleep(50);
    got = await probe();
  }
  return got;
}

t.test('Redis that refused or lost revocation marks gets them back from the replicas', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());

  async function fleet(t: Teardown, name: string) {
    const redis = await startTestRedis(t);
    const admin = new Redis(redis.url);
    t.teardown(() => admin.disconnect());
    const prefix = `${name}${Date.now()}:`;
    const config = { tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url, prefix, write_back: '300ms' } } };
    return { redis, admin, config, start: () => startTestSidecar(t, backend.url, config) };
  }

  for (const mode of ['out of memory', 'read-only'] as const) {
    await t.test(`a revocation made while Redis refuses writes (${mode}) reaches every replica once it takes them`, async (t) => {
      const { admin, start, config } = await fleet(t, mode === 'out of memory' ? 'oom' : 'ro');
      const a = await start();
      const b = await start();
      const [callA, callB] = [caller(t, a), caller(t, b)];
      const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
      t.equal(await callB(jwt), 200);

      // An error reply, not a dropped connection: no reconnect follows, so no write-back on reconnect.
      if (mode === 'out of memory') {
        await admin.config('SET', 'maxmemory-policy', 'noeviction');
        await admin.config('SET', 'maxmemory', '1');
      } else await admin.call('REPLICAOF', '127.0.0.1', '1'); // a primary demoted by a failover
      const { status, body } = await revoke(a, jwt);
      t.equal(status, 200, 'revoked');
      t.match(body, { revoked: true, shared: false, detail: mode === 'out of memory' ? /OOM.*written again every 0\.3 s/ : /READONLY/ });
      t.match(
        a.events.filter((e) => e.name === 'warden.token.revocation_unshared'),
        [{ 'warden.token.hash': tokenHash(idp.issuer, jwt).slice(0, 16) }],
        'one security event says the revocation is local until Redis takes it',
      );
      t.equal(await callA(jwt), 401, 'this replica refuses it at once');

      if (mode === 'out of memory') await admin.config('SET', 'maxmemory', '0');
      else await admin.call('REPLICAOF', 'NO', 'ONE');
      const mark = `${config.tokens.shared.prefix}rev:${tokenHash(idp.issuer, jwt)}`;
      t.equal(await eventually(() => admin.exists(mark), 1), 1, 'the write-back stored the mark once Redis took writes');
      t.ok((await admin.pttl(mark)) > 0, "for the token's remaining life");
      t.equal(await eventually(() => callB(jwt), 401), 401, 'the running replica B refuses the token');
      const c = await start();
      t.equal(await caller(t, c)(jwt), 401, 'and so does a replica C started afterwards');
    });
  }

  await t.test('an evicted mark is written back: replicas started after it, and a restarted one, refuse the token', async (t) => {
    const { admin, start, config } = await fleet(t, 'evict');
    // What managed Redis often runs: the replicas warn at connect that marks may be evicted.
    await admin.config('SET', 'maxmemory', String(64 * 1024 * 1024));
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const a = await start();
    const policyWarnings = () => a.logs.filter((l) => /maxmemory-policy allkeys-lru/.test(String(l.msg)));
    await eventually(async () => policyWarnings().length, 1); // read just after connecting
    t.match(policyWarnings(), [{ level: 'warn', msg: /revocation marks may be evicted.*noeviction/ }], 'A warned once about the policy');
    const b = await start();
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    t.match((await revoke(a, jwt)).body, { revoked: true, shared: true });
    const mark = `${config.tokens.shared.prefix}rev:${tokenHash(idp.issuer, jwt)}`;
    // Eviction simulated by deleting the key, as Redis evicts it: an LRU policy takes the mark first
    // (it is never read again once the replicas have it), and no connection drops. A real eviction
    // needs the Redis filled past maxmemory, which is neither quick nor certain to pick this key.
    t.equal(await admin.del(mark), 1, 'the mark is evicted');
    const c = await start();
    t.equal(await eventually(() => caller(t, c)(jwt), 401), 401, 'a replica C started after the eviction refuses the token');
    t.equal(await admin.exists(mark), 1, 'the mark is back in Redis');
    await a.sidecar.drain();
    await b.sidecar.drain();
    t.equal(await admin.del(mark), 1, 'evicted again, while only C runs');
    const a2 = await start();
    t.equal(await eventually(() => caller(t, a2)(jwt), 401), 401, 'A restarted (a rolling restart) refuses the token');
  });
});
