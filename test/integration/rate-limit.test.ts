/**
 * Rate limits over real connections: N parallel requests against a bucket of K allow exactly K, in
 * memory and in a real Redis shared by two sidecar processes; a Redis outage follows the configured
 * policy; load shedding refuses what exceeds limits.max_in_flight.
 */
import t from 'tap';
import { connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { openApiFile } from '../support/openapi-file.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { Redis } from 'ioredis';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestRedis } from '../support/redis.js';
import { spawnWarden, startTestSidecar, testConfigYaml, type Teardown } from '../support/sidecar.js';

const statuses = async (n: number, call: (i: number) => Promise<number>) => {
  const all = await Promise.all(Array.from({ length: n }, (_, i) => call(i)));
  return { ok: all.filter((s) => s === 200).length, limited: all.filter((s) => s === 429).length, all };
};

t.test('memory store: exactly K of N parallel requests pass; RateLimit fields; per-client buckets', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    headers: { trusted_proxies: ['127.0.0.1/32'] },
    rate_limits: { key: ['ip'] },
    routes: [
      { id: 'limited', path: '/echo', rate_limit: { rate: 10, per: '1h' } },
      { id: 'free', path: '/free', rate_limit: false },
    ],
  });
  const agent = testAgent(s.ca, { connections: 50 });
  t.teardown(() => agent.close());
  const before = backend.requests.length;
  const r = await statuses(50, async () => (await fetchText(`${s.url}/echo`, agent)).status);
  t.equal(r.ok, 10, 'exactly 10 of 50 parallel requests pass');
  t.equal(r.limited, 40, 'the other 40 get 429');
  t.equal(backend.requests.length - before, 10, 'the backend saw exactly 10');

  const refused = await fetchText(`${s.url}/echo`, agent);
  t.equal(refused.status, 429);
  t.equal(refused.json().code, 'ERR_RATE_LIMITED');
  t.equal(refused.headers['ratelimit-policy'], '"limited";q=10;w=3600');
  t.match(String(refused.headers.ratelimit), /^"limited";r=0;t=\d+$/);
  t.ok(Number(refused.headers['retry-after']) >= 300, `Retry-After: one token per 6 min (${String(refused.headers['retry-after'])} s)`);
  t.ok(s.events.some((e) => e.name === 'warden.traffic.rate_limited' && e['warden.ratelimit.key'] === 'ip'));

  const other = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-for': '198.51.100.7' } });
  t.equal(other.status, 200, 'another client has its own bucket');
  t.match(String(other.headers.ratelimit), /^"limited";r=9;t=\d+$/, 'and is told what is left');
  t.equal((await fetchText(`${s.url}/free`, agent)).status, 200, 'a route with rate_limit: false is not limited');

  // Every decision is counted per route: 10 + 1 allowed, 40 + 1 limited; the free route has none.
  const text = await s.sidecar.metrics.registry.metrics();
  const count = (decision: string) =>
    Number(
      new RegExp(`^warden_ratelimit_decisions_total\\{[^}]*route="limited"[^}]*decision="${decision}"[^}]*\\} (\\d+)$`, 'm').exec(
        text,
      )?.[1],
    );
  t.equal(count('allowed'), 11, 'warden_ratelimit_decisions_total allowed');
  t.equal(count('limited'), 41, 'warden_ratelimit_decisions_total limited');
  t.notMatch(text, /warden_ratelimit_decisions_total\{[^}]*route="free"/, 'an unlimited route makes no decision');

  // IPv6 clients are counted by their /64: rotating through its addresses gives no new bucket.
  const from = (address: string) => fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-for': address } });
  const sixes = await statuses(12, async (i) => (await from(`2001:db8:1:2::${(i + 1).toString(16)}`)).status);
  t.equal(sixes.ok, 10, 'twelve addresses of one IPv6 /64 share one bucket: 10 pass');
  t.equal((await from('2001:db8:1:2:ffff::1')).status, 429, 'another address of that /64 is limited too');
  t.equal((await from('2001:db8:1:3::1')).status, 200, 'the next /64 has its own bucket');
  // IPv4 clients behind NAT64/SIIT (64:ff9b::/96) share a /64 but are counted by their IPv4 address.
  const nat64 = await statuses(11, async () => (await from('64:ff9b::203.0.113.1')).status);
  t.equal(nat64.ok, 10, 'one IPv4 client behind NAT64 gets its 10');
  t.equal((await from('64:ff9b::203.0.113.2')).status, 200, 'another IPv4 client behind the same NAT64 has its own bucket');
});

t.test('load shedding: requests beyond limits.max_in_flight get 503 at once', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { limits: { max_in_flight: 2 } });
  const agent = testAgent(s.ca, { connections: 10 });
  t.teardown(() => agent.close());
  const all = await Promise.all(Array.from({ length: 6 }, () => fetchText(`${s.url}/slow?ms=400`, agent).then((r) => r)));
  t.equal(all.filter((r) => r.status === 200).length, 2, 'two in flight at once');
  const shed = all.filter((r) => r.status === 503);
  t.equal(shed.length, 4);
  t.equal(shed[0]?.json().code, 'ERR_OVERLOADED');
  t.equal(shed[0]?.headers['retry-after'], '1');
  t.ok(s.events.some((e) => e.name === 'warden.traffic.shed'));
  t.equal((await fetchText(`${s.url}/slow?ms=1`, agent)).status, 200, 'once they finish, requests pass again');
});

t.test('redis store: two sidecar processes share one limit; a Redis outage follows the policy', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const prefix = `rl${Date.now()}:`;
  const config = (policy: 'fail-open' | 'fail-closed') =>
    testConfigYaml(backend.url, {
      rate_limits: { store: 'redis', redis: redis.url, prefix, on_store_failure: policy, key: ['ip'] },
      routes: [{ id: 'shared', path: '/echo', rate_limit: { rate: 12, per: '1h' } }],
    });
  const a = await spawnWarden(t, await config('fail-open'));
  const b = await spawnWarden(t, await config('fail-closed'));
  const { testCertificate } = await import('../support/certs.js');
  const ca = (await testCertificate()).certPem;
  const agent = testAgent(ca, { connections: 60 });
  t.teardown(() => agent.close());

  const r = await statuses(60, async (i) => (await fetchText(`${i % 2 ? a.url : b.url}/echo`, agent)).status);
  t.equal(r.ok, 12, 'exactly 12 of 60 parallel requests pass across both processes');
  t.equal(r.limited, 48);

  await redis.stop();
  const open = await fetchText(`${a.url}/echo`, agent);
  t.equal(open.status, 200, 'fail-open: the sidecar limits in its own memory (its local bucket still has tokens)');
  const unavailable = await a.waitFor((l) => l.event === 'warden.ratelimit.store_unavailable', 5000);
  t.equal(
    unavailable['warden.request.id'],
    open.headers['x-request-id'],
    'the event names the request that found the store gone (so it lands on that request’s trace)',
  );
  const localBurst = await statuses(20, async () => (await fetchText(`${a.url}/echo`, agent)).status);
  t.equal(localBurst.ok, 11, 'fail-open still limits: the local bucket of 12 ran out after 11 more');
  // Decided locally because Redis could not say: counted as unavailable (before: 11 + 1 allowed, 9 limited).
  const metrics = await (await fetch(`${a.adminUrl}/metrics`)).text();
  const decisions = (decision: string) =>
    Number(new RegExp(`^warden_ratelimit_decisions_total\\{[^}]*decision="${decision}"[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
  t.equal(decisions('unavailable'), 21, 'fail-open: every decision the shared store could not make is counted unavailable');
  t.equal(decisions('allowed') + decisions('limited'), 30, 'the 30 made while Redis was up are counted as they went');
  const closed = await fetchText(`${b.url}/echo`, agent);
  t.equal(closed.status, 503, 'fail-closed: refused while Redis is away');
  t.equal(closed.json().code, 'ERR_RATELIMIT_STORE_UNAVAILABLE');
  await b.waitFor((l) => l.event === 'warden.ratelimit.store_unavailable', 5000);

  await redis.start();
  let back = 0;
  for (let i = 0; i < 40 && back !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    back = (await fetchText(`${b.url}/echo`, agent)).status;
  }
  t.equal(back, 200, 'Redis back (empty, no persistence): fail-closed serves again');
});

t.test('fail-closed, Redis down: junk tokens do not reach the IdP, and a bystander on an unlimited route is served', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [demoIssuer(idp, 'demo', { auth_method: 'client_secret_basic' })] },
    // key: the default [peer, client_id, ip]: the limit runs after authn.
    rate_limits: { store: 'redis', redis: redis.url, prefix: `down${Date.now()}:`, on_store_failure: 'fail-closed' },
    routes: [
      { id: 'open', path: '/open', rate_limit: false },
      { id: 'api', path: '/echo', rate_limit: { rate: 1, per: '1s', burst: 5 } },
    ],
  });
  const session = (from: string) => {
    const tls = { host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost', localAddress: from, ALPNProtocols: ['h2'] };
    const c = connect(s.url, { createConnection: () => tlsConnect(tls) });
    t.teardown(() => c.close());
    return c;
  };
  const get = (c: ClientHttp2Session, path: string, token: string) =>
    new Promise<{ status: number; code?: string }>((resolve) => {
      const stream = c.request({ ':path': path, authorization: `Bearer ${token}` });
      let status = 0;
      let body = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (d: Buffer) => (body += d.toString()));
      stream.on('end', () => resolve({ status, code: status >= 400 ? (JSON.parse(body) as { code: string }).code : undefined }));
      stream.on('error', () => resolve({ status: 0 }));
    });
  const valid = (await idp.issueToken({ clientId: 'warm' })).accessToken;
  const bystander = session('127.0.0.3');
  t.equal((await get(bystander, '/echo', valid)).status, 200, 'Redis up: served');

  await redis.stop();
  await new Promise((r) => setTimeout(r, 300));
  const junk = session('127.0.0.2');
  idp.resetCounts();
  const seen: Record<string, number> = {};
  for (let i = 0; i < 30; i++) {
    const { status, code } = await get(junk, '/echo', `junk-${i}`);
    seen[`${status} ${code}`] = (seen[`${status} ${code}`] ?? 0) + 1;
  }
  t.ok(idp.introspectionCount <= 5, `30 junk tokens, ${idp.introspectionCount} introspections (the bucket holds 5; 30 before)`);
  t.same(seen, { '503 ERR_RATELIMIT_STORE_UNAVAILABLE': 30 }, 'each answered the 503 the limit would give it, before the IdP');

  // Waves of concurrent junk from an address that has not failed yet, with the IdP's round trip:
  // they filled idp.max_concurrent, and a bystander's new token on a route without a limit got 503 ERR_IDP_UNAVAILABLE.
  idp.setIntrospectionDelay(100);
  const fresh = await Promise.all(Array.from({ length: 3 }, (_, i) => idp.issueToken({ clientId: `by-${i}` })));
  const attacker = session('127.0.0.4');
  idp.resetCounts();
  const bystanders: string[] = [];
  for (let wave = 0; wave < 3; wave++) {
    const flood = Array.from({ length: 200 }, (_, i) => get(attacker, '/echo', `wave-${wave}-${i}`));
    await new Promise((r) => setTimeout(r, 20));
    const own = await get(bystander, '/open', (fresh[wave] as { accessToken: string }).accessToken);
    bystanders.push(`${own.status}${own.code ? ` ${own.code}` : ''}`);
    await Promise.all(flood);
  }
  t.same(bystanders, ['200', '200', '200'], 'the bystander on /open was served in every wave');
  t.ok(idp.introspectionCount - 3 <= 5, `600 junk tokens: ${idp.introspectionCount - 3} introspections`);

  await redis.start();
  await redis.waitForClients(1);
  let back = 0;
  for (let i = 0; i < 40 && back !== 200; i++) {
    back = (await get(bystander, '/echo', valid)).status;
    if (back !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(back, 200, 'Redis back: served again, without a request having to find out');
});

t.test('redis store: services sharing one Redis with the default prefix keep their own buckets', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  // As compose/warden/*.yaml ship them: one Redis, no prefix, the same route id in both services.
  const service = (name: string) =>
    startTestSidecar(t, backend.url, {
      service: { name },
      rate_limits: { store: 'redis', redis: redis.url, key: ['ip'] },
      routes: [{ id: 'api', path: '/echo', rate_limit: { rate: 5, per: '1h' } }],
    });
  const orders = await service('orders');
  const inventory = await service('inventory');
  const agent = testAgent(orders.ca, { connections: 5 });
  t.teardown(() => agent.close());
  const used = await statuses(5, async () => (await fetchText(`${orders.url}/echo`, agent)).status);
  t.equal(used.ok, 5, 'orders: its bucket of 5 used up');
  t.equal((await fetchText(`${orders.url}/echo`, agent)).status, 429, 'orders: the sixth is refused');
  const first = await fetchText(`${inventory.url}/echo`, agent);
  t.equal(first.status, 200, "inventory's first request is not charged to orders' bucket");
  t.match(String(first.headers.ratelimit), /^"api";r=4;t=\d+$/, 'inventory has a full bucket of its own');
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  t.same((await probe.keys('*')).sort(), ['warden:rl:inventory:api|ip:127.0.0.1', 'warden:rl:orders:api|ip:127.0.0.1']);
});

t.test('a limit raised by a reload: the client is not held to the old rate (memory and redis)', async (t) => {
  // 1 an hour, then 100 a second: the TAT stored under the first was read as a debt of an hour
  // under the second (429, Retry-After 3599, beside a 1 s policy; docs/adversarial.md 201).
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  for (const store of ['memory', 'redis'] as const) {
    const limits = { store, ...(store === 'redis' ? { redis: redis.url, prefix: `raised:` } : {}), key: ['ip'] };
    const config = (rate: number, per: string) => ({
      rate_limits: limits,
      routes: [{ id: 'api', path: '/echo', rate_limit: { rate, per } }],
    });
    const s = await startTestSidecar(t, backend.url, config(1, '1h'));
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    t.equal((await fetchText(`${s.url}/echo`, agent)).status, 200, `${store}: the hour's one request`);
    const held = await fetchText(`${s.url}/echo`, agent);
    t.equal(held.status, 429, `${store}: then 429`);
    t.ok(Number(held.headers['retry-after']) > 3000, `${store}: for most of an hour`);
    const text = await testConfigYaml(backend.url, config(100, '1s'));
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), `${store}: reloaded at 100 a second`);
    const first = await fetchText(`${s.url}/echo`, agent);
    if (first.status === 429) t.ok(Number(first.headers['retry-after']) <= 1, `${store}: a refusal now waits a token of the new rate`);
    let status = first.status;
    for (let i = 0; i < 20 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await fetchText(`${s.url}/echo`, agent)).status;
    }
    t.equal(status, 200, `${store}: served again under the new rate`);
  }
});

t.test('keyed by client_id: failed authentications are charged to the address and refused before the IdP', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const s = await startTestSidecar(t, backend.url, {
    headers: { trusted_proxies: ['127.0.0.1/32'] },
    tokens: { issuers: [demoIssuer(idp, 'demo', { auth_method: 'client_secret_basic' })] },
    // key: the default [peer, client_id, ip]: the limit runs after authn.
    rate_limits: { default: { rate: 5, per: '1h' } },
    routes: [{ id: 'api', path: '/echo' }],
  });
  const agent = testAgent(s.ca, { connections: 4 });
  t.teardown(() => agent.close());
  const call = (from: string, token: string) =>
    fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-for': from, authorization: `Bearer ${token}` } });

  idp.resetCounts();
  const junk: number[] = [];
  for (let i = 0; i < 12; i++) junk.push((await call('203.0.113.9', `junk-${i}`)).status);
  t.same(junk, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429, 429, 429], "five failures use the address's 5, then 429");
  t.equal(idp.introspectionCount, 5, 'the IdP was asked for the five, not for the refused ones');
  const refused = await call('203.0.113.9', 'junk-last');
  t.equal(refused.json().code, 'ERR_RATE_LIMITED');
  t.ok(
    Number(refused.headers['retry-after']) >= 600,
    `Retry-After until the address has a token again (${String(refused.headers['retry-after'])} s)`,
  );
  t.equal(refused.headers['ratelimit-policy'], '"api";q=5;w=3600');
  t.ok(s.events.some((e) => e.name === 'warden.traffic.rate_limited' && e['warden.ratelimit.key'] === 'ip'));

  // Valid callers are charged in their client_id bucket, never the address's: two clients behind
  // one address make 8 requests (more than its 5), and a failure from it afterwards is still a 401.
  const tokens = [(await idp.issueToken({ clientId: 'nat-a' })).accessToken, (await idp.issueToken({ clientId: 'nat-b' })).accessToken];
  const valid: number[] = [];
  for (let i = 0; i < 8; i++) valid.push((await call('198.51.100.20', tokens[i % 2] as string)).status);
  t.same(valid, [200, 200, 200, 200, 200, 200, 200, 200], 'two clients behind one address: 4 each, all pass');
  t.equal((await call('198.51.100.20', 'junk-nat')).status, 401, "their successes did not use the address's bucket");
});

/**
 * A sidecar whose route `/echo` takes the demo IdP's tokens under `rateLimit` (the limit runs after
 * authn), and h2 sessions to it from a loopback address of the caller's choosing.
 */
async function junkTarget(t: Teardown, rateLimit: Record<string, unknown>) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const extra = {
    tokens: { issuers: [demoIssuer(idp, 'demo', { auth_method: 'client_secret_basic' })] },
    routes: [{ id: 'api', path: '/echo', rate_limit: rateLimit }],
  };
  const s = await startTestSidecar(t, backend.url, extra);
  /** A reload with the same settings (SIGHUP on an unchanged file), or with another rate limit. */
  const reload = async (newRateLimit = rateLimit) => {
    const text = await testConfigYaml(backend.url, { ...extra, routes: [{ id: 'api', path: '/echo', rate_limit: newRateLimit }] });
    return s.sidecar.reload(() => parseSidecarConfig('sidecar.yaml', text));
  };
  const session = (from: string) => {
    const tls = { host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost', localAddress: from, ALPNProtocols: ['h2'] };
    const c = connect(s.url, { createConnection: () => tlsConnect(tls) });
    t.teardown(() => c.close());
    return c;
  };
  const get = (c: ClientHttp2Session, token: string) =>
    new Promise<number>((resolve) => {
      const stream = c.request({ ':path': '/echo', authorization: `Bearer ${token}` });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', () => resolve(0));
      stream.resume();
    });
  return { idp, session, get, reload };
}

t.test(
  'keyed by client_id: waves of concurrent junk tokens cost the IdP what the bucket holds, not idp.max_concurrent a wave',
  async (t) => {
    const { idp, session, get } = await junkTarget(t, { rate: 1, per: '1s', burst: 5 });
    const attacker = session('127.0.0.1');
    const bystander = session('127.0.0.2');
    const fresh = await Promise.all(Array.from({ length: 5 }, (_, i) => idp.issueToken({ clientId: `by-${i}` })));
    t.equal(await get(bystander, 'warm-up-discovery'), 401);

    // Ten new valid tokens at once from one address that has not failed: none is held (clients
    // behind one NAT address do not use each other's burst up by succeeding; held from the first
    // call, five of them got 429).
    const neighbours = await Promise.all(Array.from({ length: 10 }, (_, i) => idp.issueToken({ clientId: `nat-${i}` })));
    t.same(
      await Promise.all(neighbours.map((n) => get(attacker, n.accessToken))),
      Array(10).fill(200),
      'ten valid callers behind one address, at once: all served',
    );

    // The attacker's first failure: from here on its calls in flight are held to its bucket.
    t.equal(await get(attacker, 'junk-first'), 401);
    idp.resetCounts();
    const started = Date.now();
    const seen: Record<number, number> = {};
    const bystanders: number[] = [];
    for (let wave = 0; wave < 5; wave++) {
      const junk = Array.from({ length: 100 }, (_, i) => get(attacker, `junk-${wave}-${i}`));
      // A bystander's new token, sent while the wave is in flight.
      const [own, ...statuses] = await Promise.all([get(bystander, (fresh[wave] as { accessToken: string }).accessToken), ...junk]);
      bystanders.push(own);
      for (const status of statuses) seen[status] = (seen[status] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (Date.now() - started) / 1000;
    const allowed = 5 + Math.ceil(seconds);
    const junkCalls = idp.introspectionCount - 5;
    t.ok(
      junkCalls <= allowed + 1,
      `500 junk tokens in 5 waves over ${seconds.toFixed(1)} s: ${junkCalls} introspections (bucket: ${allowed})`,
    );
    t.equal(seen[401], junkCalls, 'each of them a 401');
    t.equal(seen[429], 500 - junkCalls, 'every other junk token 429 before the IdP (none 503)');
    t.same(bystanders, [200, 200, 200, 200, 200], 'the bystander at another address was served each time');
  },
);

t.test('waves of junk timed to the bucket refilling are held to the bucket, not idp.max_concurrent each', async (t) => {
  // Forgotten as soon as its bucket was full again, an address's next wave was a first wave:
  // idp.max_concurrent introspections per refill.
  const { idp, session, get: getOn } = await junkTarget(t, { rate: 10, per: '1s', burst: 5 });
  const c = session('127.0.0.1');
  const get = (token: string) => getOn(c, token);
  t.equal(await get('junk-first'), 401, 'a first failure');
  idp.resetCounts();
  const started = Date.now();
  for (let wave = 0; wave < 4; wave++) {
    await new Promise((r) => setTimeout(r, 700)); // the bucket (5, 10 a second) is full again
    await Promise.all(Array.from({ length: 100 }, (_, i) => get(`junk-${wave}-${i}`)));
  }
  const seconds = (Date.now() - started) / 1000;
  const allowed = 5 + Math.ceil(seconds * 10);
  t.ok(
    idp.introspectionCount <= allowed + 2,
    `4 waves of 100 over ${seconds.toFixed(1)} s, each once the bucket refilled: ${idp.introspectionCount} introspections (bucket: ${allowed})`,
  );
});

t.test('an operationId outside ASCII or with quotes names its RateLimit policy safely, over h1 and h2', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = openApiFile(
    `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /jp:
    get:
      operationId: 注文作成
      x-warden-rate-limit: { rate: 2, per_seconds: 60 }
      responses: { '200': { description: ok } }
  /q:
    get:
      operationId: 'get "x";q=1000, \\y'
      x-warden-rate-limit: { rate: 2, per_seconds: 60 }
      responses: { '200': { description: ok } }
`,
  );
  const s = await startTestSidecar(t, backend.url, { openapi: { document, allow_public: true } });
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const label = h2 ? 'h2' : 'h1';
    const before = backend.requests.length;
    const jp = await fetchText(`${s.url}/jp`, agent);
    // Before: Node refused the header after the backend had answered (h1: 502 blamed on it; h2: a reset).
    t.equal(jp.status, 200, `${label}: the allowed request is answered`);
    t.equal(jp.headers['ratelimit-policy'], `"${encodeURIComponent('注文作成')}";q=2;w=60`, `${label}: percent-encoded UTF-8`);
    const q = await fetchText(`${s.url}/q`, agent);
    t.equal(q.status, 200);
    t.equal(q.headers['ratelimit-policy'], '"get \\"x\\";q=1000, \\\\y";q=2;w=60', `${label}: quotes and backslash escaped (RFC 8941)`);
    if (h2) {
      // Both buckets spent (two each, per client): the 429 is delivered with the same names.
      const limited = await fetchText(`${s.url}/jp`, agent);
      t.equal(limited.status, 429, `${label}: over the limit, the 429 arrives`);
      t.match(String(limited.headers.ratelimit), /^"%E6%B3%A8%E6%96%87%E4%BD%9C%E6%88%90";r=0;t=\d+$/);
    }
    t.equal(backend.requests.length - before, 2, `${label}: the backend saw the two allowed requests`);
  }
});

t.test('a reload keeps the addresses held for failed authentications: each reload was a first wave for the IdP again', async (t) => {
  const { idp, session, get, reload } = await junkTarget(t, { rate: 1, per: '1s', burst: 5 });
  const c = session('127.0.0.1');
  t.equal(await get(c, 'junk-first'), 401, 'a first failure: the address is held from here on');
  idp.resetCounts();
  const started = Date.now();
  for (let i = 0; i < 3; i++) {
    t.ok(await reload(), `reload ${i + 1}`);
    await Promise.all(Array.from({ length: 100 }, (_, j) => get(c, `junk-${i}-${j}`)));
  }
  const seconds = (Date.now() - started) / 1000;
  const allowed = 5 + Math.ceil(seconds);
  // Before: each reload made a new memo, and each wave got idp.max_concurrent (64) introspections.
  t.ok(
    idp.introspectionCount <= allowed + 1,
    `3 reloads, each followed by 100 junk tokens, over ${seconds.toFixed(1)} s: ${idp.introspectionCount} introspections (bucket: ${allowed})`,
  );
});

t.test('a reload raising the limit lets a held address through at the new rate, not after the old refusal', async (t) => {
  // The held addresses are kept across reloads (above), but not their refusals: a Retry-After
  // worked out at 1 an hour kept the address at 429 for the hour under 100 a second (row 201's class).
  const { session, get, reload } = await junkTarget(t, { rate: 1, per: '1h' });
  const c = session('127.0.0.1');
  t.equal(await get(c, 'junk-1'), 401, "the hour's one failure");
  t.equal(await get(c, 'junk-2'), 429, 'then held');
  t.ok(await reload({ rate: 100, per: '1s' }), 'reloaded at 100 a second');
  let status = await get(c, 'junk-3');
  for (let i = 0; i < 20 && status === 429; i++) {
    await new Promise((r) => setTimeout(r, 50));
    status = await get(c, `junk-4-${i}`);
  }
  t.equal(status, 401, 'the next failure is judged at the new rate (the IdP is asked again)');
});
