import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { idpAdmission } from '../../../src/identity/idp-admission.js';
import type { RequestContext, Stage, Verdict } from '../../../src/pipeline/stage.js';
import { createFailedAuthnLimit } from '../../../src/stages/failed-authn-limit.js';
import { createMemoryRateLimitRuntime, type RateLimitRuntime } from '../../../src/traffic/rate-limit-runtime.js';
import { createRefusalMemo } from '../../../src/traffic/refusal-memo.js';
import { testContext } from '../../support/request-context.js';

function ctx(clientAddress: string): RequestContext {
  return testContext({ clientAddress, route: { id: 'api' } });
}

/** An authn stage that fails every token, asking for admission first as the introspector does on a cache miss. */
function junkAuthn() {
  const stage = {
    idpCalls: 0,
    id: 'authn-introspect' as const,
    run(): Verdict {
      const refused = idpAdmission.current?.admit();
      if (refused) return refused;
      stage.idpCalls++;
      return new WardenError('ERR_AUTHN_TOKEN_INVALID');
    },
  };
  return stage;
}

/** The check, then the charging authn, as the plan runs them; the status answered. */
async function request(check: Stage, authn: Stage, from: string): Promise<number> {
  const verdict = (await check.run(ctx(from))) ?? (await authn.run(ctx(from)));
  return verdict instanceof WardenError ? verdict.status : 200;
}

const config = { routeId: 'api', bucket: { rate: 5, per: 3_600_000 }, keys: ['peer', 'client_id', 'ip'] as const };

t.test('a failure the shared store cannot be asked about is charged to this sidecar (fail-closed, Redis stalled)', async (t) => {
  // A store that cannot say, but is still connected as far as the client knows (a stalled Redis
  // before its guard gives the connection up): the check lets requests through to authn.
  const local = createMemoryRateLimitRuntime(100);
  const runtime: RateLimitRuntime = { ...local, take: () => 'unavailable' };
  const limit = createFailedAuthnLimit(config, runtime, createRefusalMemo(100));
  const authn = junkAuthn();
  const charging = limit.charging(authn);
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push(await request(limit.check, charging, '203.0.113.9'));
  t.equal(authn.idpCalls, 5, "30 junk tokens, the bucket's 5 IdP calls (all 30 before)");
  t.same(statuses, [...Array<number>(5).fill(401), ...Array<number>(25).fill(429)], 'five 401s, then 429 before authn');
  t.equal(await request(limit.check, charging, '203.0.113.10'), 401, 'another address has its own bucket');
});

t.test('fail-closed with the store known down: the check answers 503 before authn, and stops once it is back', async (t) => {
  let down = true;
  const local = createMemoryRateLimitRuntime(100);
  const runtime: RateLimitRuntime = { ...local, take: () => 'unavailable', storeDown: () => down };
  const limited: string[] = [];
  const counters = {
    allowed: () => limited.push('allowed'),
    limited: () => limited.push('limited'),
    unavailable: () => limited.push('unavailable'),
  };
  const limit = createFailedAuthnLimit({ ...config, counters }, runtime, createRefusalMemo(100));
  const authn = junkAuthn();
  const charging = limit.charging(authn);
  const refusal = (await limit.check.run(ctx('203.0.113.9'))) as WardenError | undefined;
  t.equal(refusal?.code, 'ERR_RATELIMIT_STORE_UNAVAILABLE');
  t.equal(refusal?.status, 503);
  t.equal(refusal?.headers?.['retry-after'], '1');
  for (let i = 0; i < 29; i++) await request(limit.check, charging, '203.0.113.9');
  t.equal(authn.idpCalls, 0, 'no junk token reached the IdP');
  t.same(limited, Array<string>(30).fill('unavailable'), 'counted as the store being unavailable');
  down = false;
  t.equal(await limit.check.run(ctx('203.0.113.9')), undefined, 'the store back: through to authn');
});

t.test('a wall clock stepped back an hour does not hold an address an hour (red team 28)', async (t) => {
  const limit = createFailedAuthnLimit(
    { ...config, bucket: { rate: 5, per: 1000 } },
    createMemoryRateLimitRuntime(100),
    createRefusalMemo(100),
  );
  const authn = junkAuthn();
  const charging = limit.charging(authn);
  const statuses: number[] = [];
  for (let i = 0; i < 7; i++) statuses.push(await request(limit.check, charging, '203.0.113.9'));
  t.same(statuses.slice(-2), [429, 429], 'held after its bucket of 5 (statuses ' + statuses.join(' ') + ')');
  const wallNow = Date.now;
  const step = 3_600_000;
  Date.now = () => wallNow() - step; // an NTP step back, a VM resumed from a snapshot
  t.teardown(() => {
    Date.now = wallNow;
  });
  await new Promise((resolve) => setTimeout(resolve, 450));
  const refusal = (await limit.check.run(ctx('203.0.113.9'))) as WardenError | undefined;
  t.equal(
    refusal,
    undefined,
    `450 ms later (the bucket refills one in 200 ms) not refused before authn (was Retry-After ${refusal?.headers?.['retry-after']})`,
  );
  const calls = authn.idpCalls;
  t.equal(await request(limit.check, charging, '203.0.113.9'), 401, 'its next token is asked about again (401, not 429)');
  t.equal(authn.idpCalls, calls + 1, 'one IdP call: the admission ledger is not held an hour either');
});
