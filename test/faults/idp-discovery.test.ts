/**
 * Fault suite — IdP discovery. The issuer is the fault gate's URL (the demo IdP is started with it),
 * so two real `warden proxy` processes find the IdP's keys and introspection endpoint by OIDC
 * discovery through the gate (`discovery: true`, no endpoint configured). One starts while the IdP
 * is killed, the other while it hangs:
 * - they start anyway and answer /healthz; every token-bearing request is 503 ERR_IDP_UNAVAILABLE
 *   (never 200, never 401), within the response timeout, and discovery is not retried per request;
 * - once the IdP is back, discovery is retried and tokens pass again, without a restart;
 * - then kill, hang and slow again behave as with configured endpoints (idp.test.ts).
 */
import t from 'tap';
import { Agent, request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { answeredAsUp, expectIdpFaultOutcomes, idpTokenMix, UNAVAILABLE } from './idp-load.js';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml, type WardenProcess } from '../support/sidecar.js';
import {
  expectOutcomes,
  expectRecovery,
  expectSurvived,
  healthy,
  MiB,
  phaseRecoveryMs,
  phaseStats,
  rssBytes,
  runFaultCycle,
  settled,
  sleep,
  startFaultGate,
  startLoad,
  summarise,
  type LoadLoop,
  type LoadSample,
  type PhaseMarks,
} from './fault-tools.js';

const CONNECT_TIMEOUT_MS = 300;
const RESPONSE_TIMEOUT_MS = 500;
const OPEN_FOR_MS = 1000;
/** A failed discovery is retried at most this often (issuer-endpoints.ts RETRY_COOLDOWN_MS; docs/tokens.md). */
const DISCOVERY_RETRY_MS = 5000;
const MARGIN_MS = 1000;
/** After a fault once the endpoints are known: the breaker's trial call (idp.test.ts). */
const RECOVERY_BOUND_MS = OPEN_FOR_MS + RESPONSE_TIMEOUT_MS + 1000;
/**
 * After an outage at startup: the last failed discovery ended at the latest when the gate came back
 * (a hanging one is cut by the switch); the next is at most DISCOVERY_RETRY_MS later, and an opaque
 * token's request reaches it at the introspection breaker's next trial call (≤ open_for later);
 * then the discovery and the call itself, each within the response timeout.
 */
const DISCOVERY_RECOVERY_BOUND_MS = DISCOVERY_RETRY_MS + OPEN_FOR_MS + 2 * RESPONSE_TIMEOUT_MS;
const START_PHASE_MS = 2000;
const BACK_START_MS = DISCOVERY_RECOVERY_BOUND_MS + 2000;
const RSS_BOUND = 64 * MiB;

t.test('IdP discovery: started while the IdP is killed or hangs, back, then kill, hang, slow — under load', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The issuer names the gate, so the gate starts first and learns the IdP's port afterwards.
  const target = { port: 0 };
  const gate = await startFaultGate(t, target, { delayMs: 80 });
  const via = `http://127.0.0.1:${gate.port}`;
  const idp = await startDemoIdp({ issuer: via });
  t.teardown(() => idp.close());
  target.port = idp.port;
  const discovered = (await (await request(`${via}/.well-known/openid-configuration`)).body.json()) as Record<string, unknown>;
  t.match(
    discovered,
    { issuer: via, jwks_uri: `${via}/jwks`, introspection_endpoint: `${via}/token/introspection` },
    'discovery through the gate names the gate: every IdP call of the sidecars goes through it',
  );

  const client = idp.introspectionClients.basic;
  const configYaml = await testConfigYaml(backend.url, {
    service: { name: 'orders' },
    log: { access: false },
    tokens: {
      issuers: [
        {
          id: 'demo',
          issuer: via,
          discovery: true,
          audience: [idp.audience],
          jwt: { typ: 'at+jwt' },
          introspection: { client_id: client.clientId, client_secret: client.clientSecret },
        },
      ],
      idp: {
        timeouts: { connect: `${CONNECT_TIMEOUT_MS}ms`, response: `${RESPONSE_TIMEOUT_MS}ms` },
        breaker: { failures: 3, open_for: `${OPEN_FOR_MS}ms` },
      },
      cache: { max_ttl: '500ms' },
      mint: { audience: 'orders-backend' },
    },
  });
  const tokens = await idpTokenMix(idp, via, 80);
  const ca = (await testCertificate()).certPem;
  const loadOn = (w: WardenProcess, phase: string): LoadLoop => {
    const load = startLoad(t, {
      url: w.url,
      tls: { ca },
      workers: 1,
      maxRequests: 20_000,
      maxMs: 60_000,
      pacingMs: 20,
      next: tokens.next,
    });
    load.phase = phase;
    return load;
  };
  const spawnTimed = async () => {
    const started = performance.now();
    const w = await spawnWarden(t, configYaml);
    return { w, startMs: Math.round(performance.now() - started) };
  };

  // Tokens never seen before, on each sidecar: the security decision under test.
  const probes: { sidecar: string; phase: string; outcome: string }[] = [];
  const probeAgent = new Agent({ connect: { ca, servername: 'localhost' } });
  t.teardown(() => probeAgent.close());
  const probe = async (sidecars: Record<string, WardenProcess>, phase: string) => {
    for (const [name, w] of Object.entries(sidecars)) {
      for (let i = 0; i < 5; i++) {
        const token = tokens.fresh();
        const res = await request(`${w.url}/echo`, { dispatcher: probeAgent, headers: { authorization: `Bearer ${token}` } });
        const body = (await res.body.json()) as { code?: string };
        probes.push({ sidecar: name, phase, outcome: body.code ? `${res.statusCode} ${body.code}` : String(res.statusCode) });
      }
    }
  };
  const probeOutcomes = (sidecar: string, phase: string) => [
    ...new Set(probes.filter((p) => p.sidecar === sidecar && p.phase === phase).map((p) => p.outcome)),
  ];

  // (a) Started while the IdP is killed (A), then while it hangs (B).
  const startMarks: PhaseMarks = {};
  await gate.set('down');
  const { w: a, startMs: aStartMs } = await spawnTimed();
  const loadA = loadOn(a, 'start-kill');
  startMarks['start-kill'] = performance.now();
  await sleep(300);
  const aHealthyDown = await healthy(a.adminUrl);
  await probe({ a }, 'start-kill');
  await sleep(START_PHASE_MS - 300);
  startMarks['start-kill:end'] = performance.now();

  await gate.set('hang');
  loadA.phase = 'start-hang';
  startMarks['start-hang'] = performance.now();
  const { w: b, startMs: bStartMs } = await spawnTimed();
  const loadB = loadOn(b, 'start-hang');
  await sleep(300);
  const bHealthyHang = await healthy(b.adminUrl);
  const aHealthyHang = await healthy(a.adminUrl);
  await probe({ a, b }, 'start-hang');
  await sleep(START_PHASE_MS - 300);
  startMarks['start-hang:end'] = performance.now();
  const startHangMs = Math.round(startMarks['start-hang:end'] - (startMarks['start-hang'] ?? 0));

  // (b) Back: discovery is retried; tokens pass again without a restart.
  await gate.set('up');
  for (const l of [loadA, loadB]) l.phase = 'back-start';
  startMarks['back-start'] = performance.now();
  await sleep(DISCOVERY_RECOVERY_BOUND_MS);
  await probe({ a, b }, 'back-start');
  await sleep(BACK_START_MS - DISCOVERY_RECOVERY_BOUND_MS);
  startMarks['back-start:end'] = performance.now();
  const runningAfterBack = [a, b].every((w) => w.child.exitCode === null);

  // (c) The endpoints are known now: kill, hang, slow and back, as with configured endpoints.
  const rss = () => [a, b].map((w) => rssBytes(w.child.pid as number));
  const rssBefore = rss();
  const during = (phase: string, waitMs: number) => async () => {
    await sleep(waitMs);
    await probe({ a, b }, phase);
  };
  const marks: PhaseMarks = {
    ...startMarks,
    ...(await runFaultCycle({
      load: [loadA, loadB],
      gate,
      faultMs: 2000,
      backMs: 3000,
      during: {
        kill: during('kill', 200),
        hang: during('hang', 200),
        slow: during('slow', 200),
        back: async () => {
          await sleep(RECOVERY_BOUND_MS);
          const current = loadA.phase;
          await probe({ a, b }, current);
        },
      },
    })),
  };
  const samples = await Promise.all([loadA.stop(), loadB.stop()]);
  await sleep(200);
  const rssAfter = rss();

  const ok = answeredAsUp;
  const startPhases = (s: LoadSample[]) =>
    ['start-kill', 'start-hang', 'back-start'].map((p) => ({
      ...phaseStats(settled(s, p, marks), p),
      cutAtSwitch: s.filter((x) => x.phase === p).length - settled(s, p, marks).length,
      ...(p === 'back-start' ? { recoveryMs: phaseRecoveryMs(s, p, marks, ok) } : {}),
    }));
  const [samplesA, samplesB] = samples;
  for (const [name, s, i, startMs] of [
    ['a (started while killed)', samplesA, 0, aStartMs],
    ['b (started while hanging)', samplesB, 1, bStartMs],
  ] as const) {
    t.comment(
      JSON.stringify(
        summarise(
          `idp discovery ${name}`,
          s,
          marks,
          {
            startMs,
            start: startPhases(s),
            startHangMs,
            rssMiB: [rssBefore[i], rssAfter[i]].map((x) => (x ?? 0) / MiB),
            probes: probes.filter((p) => p.sidecar === name[0]).map((p) => `${p.phase} ${p.outcome}`),
          },
          ok,
        ),
      ),
    );
  }

  // (a) Up, healthy and failing closed while the IdP could never be asked.
  t.ok(aHealthyDown && aHealthyHang && bHealthyHang, '/healthz answers while discovery fails (killed and hanging IdP)');
  expectOutcomes(t, samplesA, marks, 'start-kill', [UNAVAILABLE]);
  for (const s of [samplesA, samplesB]) expectOutcomes(t, s, marks, 'start-hang', [UNAVAILABLE]);
  for (const [name, phase] of [
    ['a', 'start-kill'],
    ['a', 'start-hang'],
    ['b', 'start-hang'],
  ] as const) {
    t.same(probeOutcomes(name, phase), [UNAVAILABLE], `${name} ${phase}: new tokens get 503, never a pass`);
  }
  // While discovery fails, a request waits for the IdP only when it finds a discovery call under
  // way (the startup one, or a retry at most every DISCOVERY_RETRY_MS); the others get 503 at once.
  // At most three requests per sidecar are in flight at a time (two load workers and a probe).
  const attempts = 1 + Math.ceil(startHangMs / DISCOVERY_RETRY_MS);
  for (const [name, s] of [
    ['a', samplesA],
    ['b', samplesB],
  ] as const) {
    const mine = settled(s, 'start-hang', marks);
    const waited = mine.filter((x) => x.ms >= RESPONSE_TIMEOUT_MS / 2).length;
    t.ok(
      mine.length >= 100 && waited <= attempts * 3,
      `${name} start-hang: discovery is not retried per request: ${waited} of ${mine.length} requests waited for the IdP (≤ ${attempts * 3})`,
    );
  }
  t.ok(
    [a, b].every((w) => w.lines.some((l) => String(l.msg).startsWith('identity provider not reachable yet'))),
    'both sidecars log that the IdP is not reachable yet',
  );

  // (b) Back: discovery retried, tokens pass again, same processes.
  t.ok(runningAfterBack, 'no restart: both processes ran throughout');
  expectRecovery(t, samplesA, marks, DISCOVERY_RECOVERY_BOUND_MS, ok, ['back-start']);
  expectRecovery(t, samplesB, marks, DISCOVERY_RECOVERY_BOUND_MS, ok, ['back-start']);
  for (const name of ['a', 'b']) t.same(probeOutcomes(name, 'back-start'), ['200'], `${name} back-start: new tokens pass`);

  // (c) As with configured endpoints (idp.test.ts).
  for (const [i, w, s] of [
    [0, a, samplesA],
    [1, b, samplesB],
  ] as const) {
    await expectSurvived(t, w, s, {
      timeoutMs: RESPONSE_TIMEOUT_MS,
      marginMs: MARGIN_MS,
      rssBefore: rssBefore[i] ?? 0,
      rssAfter: rssAfter[i] ?? 0,
      rssBound: RSS_BOUND,
    });
    expectIdpFaultOutcomes(t, s, marks);
    expectRecovery(t, s, marks, RECOVERY_BOUND_MS, ok);
    t.ok(
      w.lines.some((l) => l.event === 'warden.authn.idp_unavailable'),
      'the outage is reported as warden.authn.idp_unavailable',
    );
  }
  for (const name of ['a', 'b']) {
    for (const phase of ['kill', 'hang']) t.same(probeOutcomes(name, phase), [UNAVAILABLE], `${name} ${phase}: new tokens get 503`);
    t.same(probeOutcomes(name, 'slow'), ['200'], `${name} slow (within the response timeout): new tokens pass`);
    for (const phase of ['back-kill', 'back-hang', 'back-slow'])
      t.same(probeOutcomes(name, phase), ['200'], `${name} ${phase}: new tokens pass`);
  }
});
