/**
 * Fault suite — Redis (shared rate limits and shared token state). Two real `warden proxy`
 * processes on one real redis-server, under HTTP/1.1 + h2 load, while Redis is killed (SIGKILL),
 * hangs, turns slow and comes back:
 * - `fail-open` (with `tokens.shared` too): requests keep passing, limited by local buckets — a tight
 *   route still answers 429 during the outage — and tokens are checked with the local cache + IdP;
 * - `fail-closed` (with `tokens.shared` too): 503 ERR_RATELIMIT_STORE_UNAVAILABLE on limited routes;
 *   on a route without a limit, tokens are checked with the local cache + IdP as with fail-open:
 *   good tokens 200, junk 401, never 503 (Redis is an accelerator, never the authority).
 * No request waits longer than the 250 ms command timeout (+ margin); both recover without a restart,
 * and introspection answers are written to Redis again.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { sharedAnswerKey } from '../../src/identity/shared-token-state.js';
import { tokenHash } from '../../src/identity/token-hash.js';
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
  type LoadRequest,
  type LoadSample,
} from './fault-tools.js';

const COMMAND_TIMEOUT_MS = 250;
const MARGIN_MS = 1000;
const RECOVERY_BOUND_MS = 2500; // ioredis reconnects with a backoff of up to 2 s
const RSS_BOUND = 64 * MiB;
const STORE_DOWN = '503 ERR_RATELIMIT_STORE_UNAVAILABLE';
const INACTIVE = '401 ERR_AUTHN_TOKEN_INACTIVE';

t.test('Redis: kill, hang, slow, back — under load; fail-open and fail-closed, both with tokens.shared', async (t) => {
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
    { id: 'free', path: '/free' }, // no rate limit: what a token meets there is the shared token state alone
  ];
  // The two sidecars are replicas for the token state: one Redis prefix, one IdP client.
  const tokens = {
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
  };
  const sidecar = async (policy: 'fail-open' | 'fail-closed') =>
    spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        service: { name: 'orders' },
        log: { access: false },
        rate_limits: { store: 'redis', redis: redisUrl, prefix: `${prefix}${policy}:`, on_store_failure: policy, key: ['ip'] },
        routes,
        tokens,
      }),
    );
  const open = await sidecar('fail-open');
  const closed = await sidecar('fail-closed');
  const { accessToken } = await idp.issueToken();
  const fresh = await Promise.all(Array.from({ length: 40 }, () => idp.issueToken()));
  const ca = (await testCertificate()).certPem;
  const bearer = (path: string, token: string, kind: string): LoadRequest => ({
    path,
    headers: { authorization: `Bearer ${token}` },
    kind,
  });
  const loads = [open, closed].map((w) =>
    startLoad(t, {
      url: w.url,
      tls: { ca },
      workers: 1,
      maxRequests: 20_000,
      maxMs: 40_000,
      pacingMs: 20,
      next: (i) => {
        // fail-closed: a limited route, and a route without a limit with a good and a junk token.
        if (w === open) return bearer('/echo', accessToken, 'limited');
        const k = i % 4;
        if (k === 1) return bearer('/free', accessToken, 'free');
        if (k === 3) return bearer('/free', `junk-${i}`, 'junk');
        return bearer('/echo', accessToken, 'limited');
      },
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

  // Tokens never seen before, on the route without a limit: neither cache nor Redis can answer, so
  // the IdP must be asked — whatever Redis does. Once Redis is back, the answer is shared again.
  const direct = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => direct.disconnect());
  const probes: { sidecar: string; phase: string; outcome: string; shared?: boolean }[] = [];
  // The answer is written fire-and-forget as it comes in, and kept for revocation_lag (500 ms).
  const inRedis = async (token: string) => {
    const key = sharedAnswerKey(prefix, tokenHash(idp.issuer, token));
    for (let tries = 0; tries < 10; tries++) {
      if ((await direct.exists(key).catch(() => 0)) === 1) return true;
      await sleep(20);
    }
    return false;
  };
  let nextFresh = 0;
  const probeFresh = (waitMs: number, checkShared: boolean) => async () => {
    await sleep(waitMs);
    const phase = (loads[0] as { phase: string }).phase;
    for (const [name, w] of [
      ['fail-open', open],
      ['fail-closed', closed],
    ] as const) {
      for (let i = 0; i < 3; i++) {
        const token = (fresh[nextFresh++ % fresh.length] as { accessToken: string }).accessToken;
        const res = await request(`${w.url}/free`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
        const body = (await res.body.json()) as { code?: string };
        const outcome = body.code ? `${res.statusCode} ${body.code}` : String(res.statusCode);
        probes.push({ sidecar: name, phase, outcome, ...(checkShared ? { shared: await inRedis(token) } : {}) });
      }
    }
  };
  const probeOutcomes = (sidecar: string, phase: string) => [
    ...new Set(probes.filter((p) => p.sidecar === sidecar && p.phase === phase).map((p) => p.outcome)),
  ];

  await sleep(500);
  const rss = () => [open, closed].map((w) => rssBytes(w.child.pid as number));
  const rssBefore = rss();
  const cycleStarted = performance.now();
  const marks = await runFaultCycle({
    load: loads,
    gate,
    faultMs: 2000,
    backMs: 3000,
    kill: () => redis.stop(),
    revive: () => redis.start(),
    during: {
      kill: async () => {
        await probeTight();
        await probeFresh(0, false)();
      },
      hang: probeFresh(300, false),
      slow: probeFresh(300, false),
      back: probeFresh(RECOVERY_BOUND_MS, true),
    },
  });
  const cycleMs = performance.now() - cycleStarted;
  const samples = await Promise.all(loads.map((l) => l.stop()));
  await sleep(200);
  const rssAfter = rss();
  const [openSamples, closedSamples] = samples as [LoadSample[], LoadSample[]];
  const ok = (s: LoadSample) => s.status === 200 || (s.kind === 'junk' && s.status === 401);
  t.comment(
    JSON.stringify(
      summarise('redis fail-open', openSamples, marks, {
        rssMiB: [rssBefore[0], rssAfter[0]].map((b) => (b ?? 0) / MiB),
        tight,
        probes: probes.filter((p) => p.sidecar === 'fail-open'),
      }),
    ),
  );
  const byKind = (kind: string) => closedSamples.filter((s) => s.kind === kind);
  t.comment(
    JSON.stringify(
      summarise(
        'redis fail-closed',
        closedSamples,
        marks,
        {
          rssMiB: [rssBefore[1], rssAfter[1]].map((b) => (b ?? 0) / MiB),
          free: summarise('free', byKind('free'), marks).phases.map(({ phase, outcomes, maxMs }) => ({ phase, outcomes, maxMs })),
          junk: summarise('junk', byKind('junk'), marks).phases.map(({ phase, outcomes, maxMs }) => ({ phase, outcomes, maxMs })),
          probes: probes.filter((p) => p.sidecar === 'fail-closed'),
        },
        ok,
      ),
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
    expectRecovery(t, s, marks, RECOVERY_BOUND_MS, ok);
    expectOutcomes(t, s, marks, 'baseline', ['200'], 'limited');
  }
  expectOutcomes(t, openSamples, marks, 'slow', ['200']);
  // The switch to the slow proxy drops Redis's connection: fail-closed refuses until ioredis has
  // reconnected (its backoff), then passes at the slower pace.
  expectRecovery(t, closedSamples, marks, RECOVERY_BOUND_MS, ok, ['slow']);
  for (const phase of ['kill', 'hang']) {
    expectOutcomes(t, openSamples, marks, phase, ['200']);
    expectOutcomes(t, closedSamples, marks, phase, [STORE_DOWN, '200'], 'limited');
    t.ok(
      closedSamples.some((s) => s.phase === phase && s.kind === 'limited' && s.code === 'ERR_RATELIMIT_STORE_UNAVAILABLE'),
      `${phase}: fail-closed refuses on the limited route`,
    );
  }
  // tokens.shared with fail-closed, on the route without a limit: the local cache and the IdP
  // answer whatever Redis does — a good token passes, a junk one is refused, never a 503.
  for (const phase of ['baseline', 'kill', 'back-kill', 'hang', 'back-hang', 'slow', 'back-slow']) {
    expectOutcomes(t, closedSamples, marks, phase, ['200'], 'free');
    expectOutcomes(t, closedSamples, marks, phase, [INACTIVE], 'junk');
  }
  for (const name of ['fail-open', 'fail-closed']) {
    for (const phase of ['kill', 'hang', 'slow', 'back-kill', 'back-hang', 'back-slow']) {
      t.same(probeOutcomes(name, phase), ['200'], `${name} ${phase}: new tokens pass (asked at the IdP)`);
    }
    const w = name === 'fail-open' ? open : closed;
    const warnings = w.lines.filter((l) => String(l.msg).startsWith('shared token state:')).length;
    const most = 1 + Math.ceil(cycleMs / 10_000);
    t.ok(warnings >= 1 && warnings <= most, `${name}: the outage is logged, at most every 10 s (${warnings} warnings, ≤ ${most})`);
    const back = probes.filter((p) => p.sidecar === name && p.phase.startsWith('back-'));
    t.ok(
      back.length === 9 && back.every((p) => p.shared === true),
      `${name}: once Redis is back, answers are shared again (${back.filter((p) => p.shared).length}/${back.length} new tokens in Redis)`,
    );
  }
  t.ok(tight.includes('200') && tight.includes('429'), `fail-open keeps limiting with local buckets: ${tight.join(' ')}`);
  t.ok(
    open.lines.some((l) => l.event === 'warden.ratelimit.store_unavailable'),
    'fail-open reports warden.ratelimit.store_unavailable',
  );
});
