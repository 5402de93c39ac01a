/**
 * `tokens.idp.grace` serves a cached answer past its freshness only while the IdP is failing. A
 * caller who fills the IdP call slots with junk tokens (local `overloaded`), or makes the IdP
 * answer 429 (`throttled`), must not get a token revoked at the IdP served from the stale entry;
 * and re-checks of cached tokens have a reserve of call slots, so a flood does not starve them.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { introspectingSidecar } from '../support/introspecting-sidecar.js';

type Teardown = { teardown(fn: () => unknown): void };
type Answer = { status: number; body: unknown; headers?: Record<string, string> };

/**
 * An RFC 7662 endpoint: `answer(token)` decides. Junk tokens (`junk-*`) are held until `release()`,
 * so a test knows exactly how many calls are in flight (`held`) without racing a timer.
 */
async function fakeIdp(t: Teardown, answer: (token: string) => Answer) {
  const asked: string[] = [];
  let releaseAll: () => void = () => undefined;
  let gate = new Promise<void>((r) => (releaseAll = r));
  let held = 0;
  // Set: every call is held, not only junk (two re-checks at once, whatever the machine's speed).
  let holdAll = false;
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token') ?? '';
      asked.push(token);
      const reply = () => {
        const a = answer(token);
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        res.end(JSON.stringify(a.body));
      };
      if (!token.startsWith('junk-') && !holdAll) return reply();
      held++;
      void gate.then(() => {
        held--;
        reply();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    releaseAll();
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`,
    asked,
    get held() {
      return held;
    },
    set holdAll(on: boolean) {
      holdAll = on;
    },
    release() {
      releaseAll();
      gate = new Promise<void>((r) => (releaseAll = r));
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string) {
  for (let i = 0; i < 1000 && !cond(); i++) await sleep(10);
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

t.test('grace is for an IdP that is failing, not for one that is busy or rate-limiting', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const active = { status: 200, body: { active: true, aud: 'api', sub: 'alice', scope: 'read', exp } };
  const inactive = { status: 200, body: { active: false } };

  /** A sidecar with grace 1h, max_ttl 300 ms, `max_concurrent` 4 (so one reserve slot); `answer` for the non-junk tokens. */
  async function setUp(t: Teardown, answer: (token: string) => Answer) {
    const idp = await fakeIdp(t, (token) => (token.startsWith('junk-') ? inactive : answer(token)));
    const s = await introspectingSidecar(t, backend.url, idp.url, {
      cache: { max_ttl: '300ms' },
      idp: { grace: '1h', max_concurrent: 4 },
    });
    const agent = testAgent(s.ca, { connections: 16 });
    t.teardown(() => agent.close());
    const get = (token: string) => fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
    /** Junk tokens that hold every one of the 4 ordinary call slots until `idp.release()`. */
    const flood = async (n: number) => {
      const pending = Array.from({ length: n }, (_, i) => get(`junk-${Math.random().toString(36).slice(2)}-${i}`));
      await until(() => idp.held === 4, 'the junk to fill the IdP slots');
      return pending;
    };
    return { idp, s, get, flood };
  }

  await t.test('slots filled with junk: a token revoked at the IdP is re-checked (401), never served stale', async (t) => {
    const revoked = new Set<string>();
    const { idp, get, flood } = await setUp(t, (token) => (revoked.has(token) ? inactive : active));
    t.equal((await get('good-1')).status, 200, 'active at first');
    revoked.add('good-1');
    await sleep(400); // past max_ttl: the entry is stale, within grace
    let served = 0;
    for (let round = 0; round < 3; round++) {
      if (round > 0) {
        revoked.delete('good-1');
        t.equal((await get('good-1')).status, 200, `round ${round}: active again`);
        revoked.add('good-1');
        await sleep(400);
      }
      const junk = await flood(6); // 4 held at the IdP, 2 refused (overloaded)
      const res = await get('good-1');
      if (res.status === 200) served++;
      t.equal(res.status, 401, `round ${round}: the revoked token is refused during the flood`);
      t.equal(res.json().code, 'ERR_AUTHN_TOKEN_INACTIVE');
      idp.release();
      const junkStatuses = (await Promise.all(junk)).map((r) => r.status).sort();
      t.same(junkStatuses, [401, 401, 401, 401, 503, 503], 'the junk beyond max_concurrent was shed (503)');
    }
    t.equal(served, 0, 'served 0 of 3 times');
  });

  await t.test('the reserve: a due re-check of a valid token reaches the IdP during the flood; it is bounded', async (t) => {
    const { idp, get, flood } = await setUp(t, () => active);
    t.equal((await get('good-a')).status, 200);
    t.equal((await get('good-b')).status, 200);
    await sleep(400);
    const junk = await flood(4);
    const before = idp.asked.length;
    // Both re-checks at once: the IdP holds the one that gets the reserve slot until released.
    idp.holdAll = true;
    const settled: { token: string; res: Awaited<ReturnType<typeof get>> }[] = [];
    const recheck = (token: string) => get(token).then((res) => settled.push({ token, res }));
    const both = Promise.all([recheck('good-a'), recheck('good-b')]);
    await until(() => settled.length === 1 && idp.held === 5, 'one re-check held at the IdP, the other answered');
    const [refused] = settled;
    t.equal(refused?.res.status, 503, 'one re-check took the one reserve slot; the other was refused (503), not served stale');
    t.equal(refused?.res.json().code, 'ERR_IDP_UNAVAILABLE');
    t.equal(idp.asked.length - before, 1, 'the IdP was asked for the one re-check that got the slot');
    idp.holdAll = false;
    idp.release();
    await both;
    t.equal(settled[1]?.res.status, 200, 'the one in the reserve slot is served');
    await Promise.all(junk);
    t.equal((await get(refused?.token ?? '')).status, 200, 'after the flood, the refused one is re-checked and served');
  });

  await t.test('an IdP rate-limiting the junk does not pause re-checks; a 429 to a re-check is 503, never stale', async (t) => {
    const revoked = new Set<string>();
    let throttleAll = false;
    const { idp, s, get } = await setUp(t, (token) =>
      throttleAll || token.startsWith('flood-')
        ? { status: 429, body: {}, headers: { 'retry-after': '5' } }
        : revoked.has(token)
          ? inactive
          : active,
    );
    for (const token of ['good-1', 'good-2', 'good-3']) t.equal((await get(token)).status, 200);
    revoked.add('good-1');
    await sleep(400);
    t.equal((await get('flood-1')).status, 503, 'a new token the IdP answers 429: 503, and new tokens pause for 5 s');
    const asked = idp.asked.length;
    t.equal((await get('flood-2')).status, 503);
    t.equal(idp.asked.length, asked, 'the pause holds new tokens without a call');
    const r1 = await get('good-1');
    t.equal(r1.status, 401, 'the revoked token is re-checked despite the pause, and refused');
    t.equal(idp.asked.length, asked + 1);

    throttleAll = true;
    const r2 = await get('good-2');
    t.equal(r2.status, 503, 'a re-check the IdP answers 429: 503, not the stale answer');
    t.equal(r2.json().code, 'ERR_IDP_UNAVAILABLE');
    t.equal(r2.headers['retry-after'], '5');
    const r3 = await get('good-3');
    t.equal(r3.status, 503, 'then re-checks pause too');
    t.equal(idp.asked.length, asked + 2, '…without a call');
    const rules = s.events.filter((e) => e.name === 'warden.authn.idp_unavailable').map((e) => e['warden.rule']);
    t.same(new Set(rules), new Set(['introspection.throttled']));
  });

  await t.test('an IdP that is down (5xx) is still ridden through within grace', async (t) => {
    let down = false;
    const { get } = await setUp(t, () => (down ? { status: 500, body: {} } : active));
    t.equal((await get('good-1')).status, 200);
    down = true;
    await sleep(400);
    t.equal((await get('good-1')).status, 200, 'served from the stale entry');
    t.equal((await get('never-seen')).status, 503, 'a token never seen: 503');
  });

  await t.test('a re-check refused for its claims drops the cached answer: grace does not serve it after', async (t) => {
    // The IdP still calls the token active, naming another issuer: refused (introspection.iss). The
    // earlier answer stayed cached, and once the IdP failed, grace served it (200).
    let now: 'good' | 'other-issuer' | 'down' = 'good';
    const { get } = await setUp(t, () =>
      now === 'good'
        ? active
        : now === 'down'
          ? { status: 500, body: {} }
          : { status: 200, body: { ...active.body, iss: 'https://other.example' } },
    );
    t.equal((await get('good-1')).status, 200);
    await sleep(400);
    now = 'other-issuer';
    const refused = await get('good-1');
    t.equal(refused.status, 401, 'the re-check is refused: the answer names another issuer');
    t.equal(refused.json().code, 'ERR_AUTHN_TOKEN_INVALID');
    now = 'down';
    const after = await get('good-1');
    t.equal(after.status, 503, 'the IdP failing now: 503, not the answer refused a moment ago');
    t.equal(after.json().code, 'ERR_IDP_UNAVAILABLE');
  });
});
