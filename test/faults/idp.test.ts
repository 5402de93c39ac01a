/**
 * Fault suite — the IdP (a real oidc-provider: introspection and JWKS). A real `warden proxy`
 * process under HTTP/1.1 + h2 load with cached opaque tokens, JWTs (keys already fetched), junk
 * tokens and JWTs with an unknown key, while the IdP is killed, hangs, turns slow and comes back.
 * Fail closed: a token that cannot be checked is 503 ERR_IDP_UNAVAILABLE — never a pass, never 401.
 * The IdP stays alive behind the fault gate (its token store is in memory), so tokens issued
 * before the fault are still good after it.
 */
import t from 'tap';
import { Agent, request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { answeredAsUp, expectIdpFaultOutcomes, idpTokenMix, UNAVAILABLE } from './idp-load.js';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import {
  expectRecovery,
  expectSurvived,
  MiB,
  rssBytes,
  runFaultCycle,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
} from './fault-tools.js';

const RESPONSE_TIMEOUT_MS = 500;
const OPEN_FOR_MS = 1000;
const MARGIN_MS = 1000;
const RECOVERY_BOUND_MS = OPEN_FOR_MS + RESPONSE_TIMEOUT_MS + 1000;
const RSS_BOUND = 64 * MiB;

t.test('IdP: kill, hang, slow, back — under load; fail closed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const gate = await startFaultGate(t, { port: idp.port }, { delayMs: 80 });
  const via = `http://127.0.0.1:${gate.port}`;
  const client = idp.introspectionClients.basic;
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      service: { name: 'orders' },
      log: { access: false },
      tokens: {
        issuers: [
          {
            id: 'demo',
            issuer: idp.issuer,
            discovery: false,
            jwks_uri: `${via}/jwks`,
            audience: [idp.audience],
            jwt: { typ: 'at+jwt' },
            introspection: { endpoint: `${via}/token/introspection`, client_id: client.clientId, client_secret: client.clientSecret },
          },
        ],
        idp: {
          timeouts: { connect: '300ms', response: `${RESPONSE_TIMEOUT_MS}ms` },
          breaker: { failures: 3, open_for: `${OPEN_FOR_MS}ms` },
        },
        cache: { max_ttl: '500ms' },
        mint: { audience: 'orders-backend' },
      },
    }),
  );
  const pid = warden.child.pid as number;
  const tokens = await idpTokenMix(idp, idp.issuer, 40);
  const ca = (await testCertificate()).certPem;

  const load = startLoad(t, {
    url: warden.url,
    tls: { ca },
    workers: 2,
    maxRequests: 20_000,
    maxMs: 40_000,
    pacingMs: 20,
    next: tokens.next,
  });

  // Tokens never seen before, during each phase: the security decision under test.
  const probes: { phase: string; outcome: string }[] = [];
  const probeAgent = new Agent({ connect: { ca, servername: 'localhost' } });
  t.teardown(() => probeAgent.close());
  const probe = (waitMs: number) => async () => {
    await sleep(waitMs);
    const phase = load.phase;
    for (let i = 0; i < 5; i++) {
      const token = tokens.fresh();
      const res = await request(`${warden.url}/echo`, { dispatcher: probeAgent, headers: { authorization: `Bearer ${token}` } });
      const body = (await res.body.json()) as { code?: string };
      probes.push({ phase, outcome: body.code ? `${res.statusCode} ${body.code}` : String(res.statusCode) });
    }
  };
  const probeOutcomes = (phase: string) => [...new Set(probes.filter((p) => p.phase === phase).map((p) => p.outcome))];

  await sleep(500);
  const rssBefore = rssBytes(pid);
  const marks = await runFaultCycle({
    load,
    gate,
    faultMs: 2000,
    backMs: 3000,
    during: { kill: probe(200), hang: probe(200), slow: probe(200), back: probe(RECOVERY_BOUND_MS) },
  });
  const samples = await load.stop();
  await sleep(200);
  const rssAfter = rssBytes(pid);
  const ok = answeredAsUp;
  t.comment(JSON.stringify(summarise('idp', samples, marks, { rssBeforeMiB: rssBefore / MiB, rssAfterMiB: rssAfter / MiB, probes }, ok)));

  await expectSurvived(t, warden, samples, {
    timeoutMs: RESPONSE_TIMEOUT_MS,
    marginMs: MARGIN_MS,
    rssBefore,
    rssAfter,
    rssBound: RSS_BOUND,
  });
  expectIdpFaultOutcomes(t, samples, marks);
  expectRecovery(t, samples, marks, RECOVERY_BOUND_MS, ok);
  for (const phase of ['kill', 'hang']) t.same(probeOutcomes(phase), [UNAVAILABLE], `${phase}: new tokens get 503, never a pass`);
  t.same(probeOutcomes('slow'), ['200'], 'slow (within the response timeout): new tokens pass');
  for (const phase of ['back-kill', 'back-hang', 'back-slow']) t.same(probeOutcomes(phase), ['200'], `${phase}: new tokens pass again`);
  t.ok(
    warden.lines.some((l) => l.event === 'warden.authn.idp_unavailable'),
    'the outage is reported as warden.authn.idp_unavailable',
  );
});
