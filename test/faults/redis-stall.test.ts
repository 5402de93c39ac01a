/**
 * A Redis that keeps its connection open but answers nothing (SIGSTOP): after a few timed-out
 * commands the rate-limit store (and the shared token state, below) counts as down — requests are decided with the local buckets
 * without sending Redis anything, and what was queued on the stalled connection is dropped, not
 * run once Redis wakes. Before, every request waited the 250 ms command timeout for as long as the
 * stall lasted, and every one of their scripts was kept queued and run when Redis came back.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar } from '../support/sidecar.js';

const REQUESTS = 40;
/** The breaker's failures in a row (redis-stall-guard.ts BREAKER_FAILURES: 3), and a margin. */
const FEW = 5;

t.test('a stalled Redis is given up on after a few timeouts; its queue is not run once it wakes', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const s = await startTestSidecar(t, backend.url, {
    rate_limits: { store: 'redis', redis: redis.url, key: ['ip'], on_store_failure: 'fail-open' },
    routes: [{ id: 'all', path: '/echo', rate_limit: { rate: 1_000_000, per: '1s' } }],
  });
  const agent = testAgent(s.ca, { connections: 1 });
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${s.url}/echo`, agent)).status, 200, 'served through Redis');

  const probe = new Redis(redis.url, { lazyConnect: true });
  t.teardown(() => probe.disconnect());
  await probe.connect();
  const scripts = async () => {
    const stats = await probe.info('commandstats');
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    return calls('evalsha') + calls('eval');
  };
  const before = await scripts();

  redis.pause();
  const statuses: number[] = [];
  for (let i = 0; i < REQUESTS; i++) statuses.push((await fetchText(`${s.url}/echo`, agent)).status);
  t.same([...new Set(statuses)], [200], 'fail-open: every request is decided with the local bucket');
  redis.resume();

  // The probe's INFO is answered once Redis has read what the sidecar's connection had sent it.
  const ran = (await scripts()) - before;
  t.ok(
    ran <= FEW,
    `only the first few requests' scripts reached Redis (${ran} of ${REQUESTS}): the rest were decided without sending it anything`,
  );
  const metrics = await s.sidecar.metrics.registry.metrics();
  const unavailable = Number(/^warden_ratelimit_decisions_total\{[^}]*decision="unavailable"[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  t.equal(unavailable, REQUESTS, 'each was counted as decided without the store');

  // Redis back: the breaker's trial finds it answering again (the connection is re-established with a backoff).
  let through = false;
  for (let i = 0; i < 60 && !through; i++) {
    const r = await fetchText(`${s.url}/echo`, agent);
    through = r.status === 200 && (await scripts()) > before + ran;
    if (!through) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(through, 'Redis answering again: requests are limited through it again');
});

t.test('tokens.shared: a stalled Redis is skipped after a few timeouts; its reads and writes are not run once it wakes', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const s = await startTestSidecar(t, backend.url, {
    service: { name: 'orders' },
    tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url } },
  });
  const agent = testAgent(s.ca, { connections: 1 });
  t.teardown(() => agent.close());
  const call = async () => {
    const { accessToken } = await idp.issueToken();
    return fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${accessToken}` } });
  };
  t.equal((await call()).status, 200, 'served, its answer shared through Redis');

  const probe = new Redis(redis.url, { lazyConnect: true });
  t.teardown(() => probe.disconnect());
  await probe.connect();
  // Each new token is one read (GET, GET, PTTL in a pipeline) and, once the IdP has answered, one SET.
  const commands = async () => {
    const stats = await probe.info('commandstats');
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    return { reads: calls('pttl'), writes: calls('set') };
  };
  const before = await commands();

  redis.pause();
  const statuses: number[] = [];
  for (let i = 0; i < REQUESTS; i++) statuses.push((await call()).status);
  t.same([...new Set(statuses)], [200], 'every token is introspected at the IdP without Redis');
  redis.resume();

  const after = await commands();
  t.ok(after.reads - before.reads <= FEW, `only the first few reads reached Redis (${after.reads - before.reads} of ${REQUESTS})`);
  t.ok(after.writes - before.writes <= FEW, `only the first few writes reached Redis (${after.writes - before.writes} of ${REQUESTS})`);

  // Redis back: the guard's probe (the new connection's ready check) lets reads through again.
  let through = false;
  for (let i = 0; i < 60 && !through; i++) {
    const r = await call();
    through = r.status === 200 && (await commands()).reads > after.reads;
    if (!through) await new Promise((r) => setTimeout(r, 100));
  }
  t.ok(through, 'Redis answering again: answers are shared through it again');
});
