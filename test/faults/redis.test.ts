/**
 * Fault suite — Redis (shared rate limits and shared token state). Two real `warden proxy`
 * processes on one real redis-server, under HTTP/1.1 + h2 load, while Redis is killed (SIGKILL),
 * hangs, turns slow and comes back:
 * - `fail-open` (with `tokens.shared` too): requests keep passing, limited by local buckets — a tight
 *   route still answers 429 during the outage — and tokens are checked with the local cache + IdP;
 * - `fail-closed`: 503 ERR_RATELIMIT_STORE_UNAVAILABLE on limited routes.
 * No request waits longer than the 250 ms command timeout (+ margin); both recover without a restart.
 */
import t from 'tap';
import { Agent, request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { startTestRedis } from '../support/redis.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import {
  expectOutcomes,
  expectRecovery,
  expectSurvived,
  MiB,
  rssBytes,
  runFaultCycle,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
  type LoadSample,
} from './fault-tools.js';

const COMMAND_TIMEOUT_MS = 250;
const MARGIN_MS = 1000;
const RECOVERY_BOUND_MS = 2500; // ioredis reconnects with a backoff of up to 2 s
const RSS_BOUND = 64 * MiB;
const STORE_DOWN = '503 ERR_RATELIMIT_STORE_UNAVAILABLE';

t.test('Redis: kill, hang, slow, back — under load; fail-open and fail-closed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const gate = await startFaultGate(t, { port: redis.port }, { delayMs: 40 });
  const redisUrl = `redis://127.0.0.1:${gate.port}`;
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const client = idp.introspectionClients.basic;
  const prefix = `faults${Date.now()}:`;
  const routes = [
    { id: 'echo', path: '/echo', rate_limit: { rate: 100_000, per: '1s' } },
    { id: 'tight', path: '/tight', rate_limit: { rate: 5, per: '1s', burst: 5 } },
  ];
  const sidecar = async (policy: 'fail-open' | 'fail-closed', extra: Record<string, unknown> = {}) =>
    spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        service: { name: 'orders' },
        log: { access: false },
        rate_limits: { store: 'redis', redis: redisUrl, prefix: `${prefix}${policy}:`, on_store_failure: policy, key: ['ip'] },
        routes,
        ...extra,
      }),
    );
  const open = await sidecar('fail-open', {
    tokens: {
      issuers: [
        {
          id: 'demo',
          issuer: idp.issuer,
          audience: [idp.audience],
          introspection: { client_id: client.clientId, client_secret: client.clientSecret },
        },
      ],
      cache: { max_ttl: '500ms' },
      shared: { redis: redisUrl, prefix, revocation_lag: '500ms' },
    },
  });
  const closed = await sidecar('fail-closed');
  const { accessToken } = await idp.issueToken();
  const ca = (await testCertificate()).certPem;
  const loads = [open, closed].map((w) =>
    startLoad(t, {
      url: w.url,
      tls: { ca },
      workers: 1,
      maxRequests: 20_000,
      maxMs: 40_000,
      pacingMs: 10,
      next: () => ({ path: '/echo', headers: { authorization: `Bearer ${accessToken}` } }),
    }),
  );

  // The tight route during the outage: local buckets still limit (fail-open), never unlimited.
  const tight: string[] = [];
  const agent = new Agent({ connect: { ca, servername: 'localhost' } });
  t.teardown(() => agent.close());
  const probeTight = async () => {
    await sleep(300);
    for (let i = 0; i < 12; i++) {
      const res = await request(`${open.url}/tight`, { dispatcher: agent, headers: { authorization: `Bearer ${accessToken}` } });
      await res.body.text();
      tight.push(String(res.statusCode));
    }
  };

  await sleep(500);
  const rss = () => [open, closed].map((w) => rssBytes(w.child.pid as number));
  const rssBefore = rss();
  const marks = await runFaultCycle({
    load: loads,
    gate,
    faultMs: 2000,
    backMs: 3000,
    kill: () => redis.stop(),
    revive: () => redis.start(),
    during: { kill: probeTight },
  });
  const samples = await Promise.all(loads.map((l) => l.stop()));
  await sleep(200);
  const rssAfter = rss();
  const [openSamples, closedSamples] = samples as [LoadSample[], LoadSample[]];
  t.comment(
    JSON.stringify(
      summarise('redis fail-open', openSamples, marks, { rssMiB: [rssBefore[0], rssAfter[0]].map((b) => (b ?? 0) / MiB), tight }),
    ),
  );
  t.comment(
    JSON.stringify(
      summarise('redis fail-closed', closedSamples, marks, { rssMiB: [rssBefore[1], rssAfter[1]].map((b) => (b ?? 0) / MiB) }),
    ),
  );

  for (const [i, w, s] of [
    [0, open, openSamples],
    [1, closed, closedSamples],
  ] as const) {
    await expectSurvived(t, w, s, {
      timeoutMs: COMMAND_TIMEOUT_MS,
      marginMs: MARGIN_MS,
      rssBefore: rssBefore[i] ?? 0,
      rssAfter: rssAfter[i] ?? 0,
      rssBound: RSS_BOUND,
    });
    expectRecovery(t, s, marks, RECOVERY_BOUND_MS);
    expectOutcomes(t, s, marks, 'baseline', ['200']);
  }
  expectOutcomes(t, openSamples, marks, 'slow', ['200']);
  // The switch to the slow proxy drops Redis's connection: fail-closed refuses until ioredis has
  // reconnected (its backoff), then passes at the slower pace.
  expectRecovery(t, closedSamples, marks, RECOVERY_BOUND_MS, undefined, ['slow']);
  for (const phase of ['kill', 'hang']) {
    expectOutcomes(t, openSamples, marks, phase, ['200']);
    expectOutcomes(t, closedSamples, marks, phase, [STORE_DOWN, '200']);
    t.ok(
      closedSamples.some((s) => s.phase === phase && s.code === 'ERR_RATELIMIT_STORE_UNAVAILABLE'),
      `${phase}: fail-closed refuses`,
    );
  }
  t.ok(tight.includes('200') && tight.includes('429'), `fail-open keeps limiting with local buckets: ${tight.join(' ')}`);
  t.ok(
    open.lines.some((l) => l.event === 'warden.ratelimit.store_unavailable'),
    'fail-open reports warden.ratelimit.store_unavailable',
  );
});
