/**
 * The DPoP replay cache is shared by every caller of the sidecar, and full means refused (a live
 * entry is never evicted: that would let its proof be replayed). So each caller — the token's
 * subject, else its client — may hold only its share of it: one caller sending fresh proofs as fast
 * as it can used to fill it, and every other DPoP client got 503 ERR_DPOP_REPLAY_FULL for a minute,
 * renewably (a rate limit keyed by client_id runs after authn, so the refused requests filled it too).
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent, type SimpleResponse } from '../support/clients.js';
import { dpopClient } from '../support/dpop.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);
const codeOf = (r: SimpleResponse) => (r.status === 200 ? '200' : `${r.status} ${String(r.json().code)}`);

/** `rateLimited`: 5 a minute keyed [peer, client_id, ip] (the default key), so the limit runs after authn. */
async function setUp(t: Teardown, dpop: Record<string, unknown>, rateLimited: boolean) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const forged = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'corp', issuer: forged.issuer, audience: ['api'] }], dpop },
    ...(rateLimited ? { rate_limits: { default: { rate: 5, per: '1m', burst: 5 } } } : {}),
    routes: [{ id: 'any', path: '/x' }],
  });
  const agent = testAgent(s.ca, { connections: 50 });
  t.teardown(() => agent.close());
  /** A DPoP client with its own key and a token bound to it, for `sub` of `client_id`. */
  const caller = async (sub: string, clientId = sub) => {
    const key = await dpopClient();
    const token = await forged.sign({ iss: forged.issuer, aud: 'api', sub, client_id: clientId, exp: now() + 600, cnf: { jkt: key.jkt } });
    return async () =>
      fetchText(`${s.url}/x`, agent, {
        headers: { authorization: `DPoP ${token}`, dpop: await key.proof('GET', `${s.url}/x`, { token }) },
      });
  };
  /** `n` requests, 50 at a time, each with a fresh proof: how many got which answer. */
  const flood = async (call: () => Promise<SimpleResponse>, n: number) => {
    const counts: Record<string, number> = {};
    for (let sent = 0; sent < n; sent += 50) {
      for (const r of await Promise.all(Array.from({ length: Math.min(50, n - sent) }, call))) {
        const code = codeOf(r);
        counts[code] = (counts[code] ?? 0) + 1;
      }
    }
    return counts;
  };
  return { s, caller, flood };
}

t.test('one caller cannot fill the DPoP replay cache for the others', async (t) => {
  await t.test('by default a caller holds at most half of a small cache; past it only that caller is refused (429)', async (t) => {
    const { s, caller, flood } = await setUp(t, { replay_cache_entries: 1000 }, true);
    const victim = await caller('victim');
    const attacker = await caller('attacker');
    t.equal(codeOf(await victim()), '200', 'the victim before');
    const counts = await flood(attacker, 1020); // more than the whole cache
    t.same(
      counts,
      { '200': 5, '429 ERR_RATE_LIMITED': 495, '429 ERR_DPOP_REPLAY_SHARE': 520 },
      'the attacker: 5 served, 495 over its rate limit, then past its share (500) refused',
    );
    const after = await victim();
    t.equal(codeOf(after), '200', 'the victim is still served');
    t.equal(codeOf(await (await caller('bystander'))()), '200', 'and a caller never seen before');
    const share = await attacker();
    t.equal(codeOf(share), '429 ERR_DPOP_REPLAY_SHARE', 'the attacker is still refused');
    t.equal(share.headers['retry-after'], '1');
    t.ok(
      s.events.some((e) => e.name === 'warden.traffic.rate_limited' && e['warden.rule'] === 'dpop.replay_share'),
      'raised as warden.traffic.rate_limited, rule dpop.replay_share',
    );
  });

  await t.test('replay_entries_per_caller: the share is per subject, whatever key or client its tokens are bound to', async (t) => {
    const { caller, flood } = await setUp(t, { replay_cache_entries: 200, replay_entries_per_caller: 60 }, false);
    const keyA = await caller('mallory', 'app-1');
    const keyB = await caller('mallory', 'app-2'); // another key and client, the same subject
    const a = await flood(keyA, 40);
    const b = await flood(keyB, 40);
    t.equal((a['429 ERR_DPOP_REPLAY_SHARE'] ?? 0) + (b['429 ERR_DPOP_REPLAY_SHARE'] ?? 0), 20, '60 of the 80 proofs taken, 20 refused');
    t.equal(b['429 ERR_DPOP_REPLAY_SHARE'], 20, 'the second key shares the first one’s share');
    const others = await Promise.all(['alice', 'bob', 'carol'].map(async (sub) => codeOf(await (await caller(sub, 'app-1'))())));
    t.same(others, ['200', '200', '200'], 'other subjects of the same client are served');
  });
  await t.test('a full cache (many callers’ proofs) refuses with 503 and raises warden.traffic.shed, counted on /metrics', async (t) => {
    // It raised no event, no log line and no metric: an operator saw DPoP clients refused and nothing else.
    const { s, caller, flood } = await setUp(t, { replay_cache_entries: 200, replay_entries_per_caller: 60 }, false);
    for (const sub of ['a1', 'a2', 'a3', 'a4']) await flood(await caller(sub), 60);
    const before = s.events.length;
    const victim = await (await caller('victim'))();
    t.equal(codeOf(victim), '503 ERR_DPOP_REPLAY_FULL', 'a new caller is refused: the cache is full');
    const raised = s.events.slice(before);
    t.equal(raised.length, 1, 'one event');
    t.match(
      raised,
      [
        {
          name: 'warden.traffic.shed',
          'warden.code': 'ERR_DPOP_REPLAY_FULL',
          'warden.rule': 'dpop.replay_cache',
          'http.response.status_code': 503,
        },
      ],
      'one event for the refusal, with its code and rule',
    );
    t.equal(raised[0]?.['warden.request.id'], victim.json<{ request_id: string }>().request_id, 'on the refused request');
    const metrics = await (await fetch(`${s.adminUrl}/metrics`)).text();
    t.match(metrics, /warden_security_events_total\{event="warden\.traffic\.shed"[^}]*\} [1-9]/, 'counted in warden_security_events_total');
  });
});
