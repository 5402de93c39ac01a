/**
 * A flood of cheap refusals against a collector that answers each export after 2 s (OTLP/JSON, every
 * request sampled): whatever the export queues cannot hold is dropped and counted, by signal and
 * reason, on /metrics (`warden_telemetry_dropped_total`), over OTLP once the collector is quick
 * again (`warden.telemetry.dropped`), and in a pino warning; sent = received + dropped, exactly.
 * One caller's flood of one event folds (log-fold.ts), so another event after it arrives.
 * With a quick collector nothing is dropped. Before, the SDK's batch processors dropped into a
 * no-op meter: 6 001 events sent, 3 072 received, `warden.telemetry.dropped` 0 (docs/adversarial.md).
 */
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

const SLOW_MS = 2000;
/** One caller's flood: more than the log queue holds, whatever the collector took meanwhile. */
const ONE = 4000;
/** Many callers' flood (x-forwarded-for from a trusted proxy). */
const MANY = 3000;
/** Each flood's requests at once over the one connection. */
const WAVE = 200;
const FLOOD_BOUND_MS = 15_000;
const SETTLE_BOUND_MS = 10_000;
const SERVER = 2;

type Counts = Record<string, number>;

/** `warden_telemetry_dropped_total` by "signal/reason", from /metrics. */
async function scrapedDrops(adminUrl: string): Promise<Counts> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const out: Counts = {};
  for (const m of text.matchAll(/^warden_telemetry_dropped_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels.signal}/${labels.reason}`] = Number(m[2]);
  }
  return out;
}

/** The last `warden.telemetry.dropped` exported, by "signal/reason". */
function exportedDrops(receiver: OtlpReceiver): Counts | undefined {
  const last = receiver.metrics.filter((m) => m.name === 'warden.telemetry.dropped').at(-1);
  return last && Object.fromEntries(last.points.map((p) => [`${String(p.attributes.signal)}/${String(p.attributes.reason)}`, p.value]));
}

const total = (counts: Counts, signal: string) =>
  Object.entries(counts).reduce((n, [key, v]) => (key.startsWith(`${signal}/`) ? n + v : n), 0);

/** `n` requests over `session`, WAVE at a time; `headersOf(i)` for the i-th. Bounded in time. */
async function flood(session: ClientHttp2Session, n: number, headersOf: (i: number) => OutgoingHttpHeaders): Promise<Counts> {
  const statuses: Counts = {};
  const deadline = Date.now() + FLOOD_BOUND_MS;
  const one = (i: number) =>
    new Promise<void>((resolve) => {
      const req = session.request(headersOf(i));
      req.on('response', (h) => (statuses[String(h[':status'])] = (statuses[String(h[':status'])] ?? 0) + 1));
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.resume();
      req.end();
    });
  for (let i = 0; i < n && Date.now() < deadline; i += WAVE) {
    await Promise.all(Array.from({ length: Math.min(WAVE, n - i) }, (_, k) => one(i + k)));
  }
  return statuses;
}

t.test('a flood against a slow collector: every record dropped is counted, and told without the collector', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      routes: [
        { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
        { id: 'api', path: '/api/*' },
      ],
      headers: { trusted_proxies: ['127.0.0.1/32'] },
      log: { access: false },
      telemetry: {
        otlp: { endpoint: receiver.url, protocol: 'http/json', export_interval: '200ms', timeout: '5s', sampling_ratio: 1 },
      },
    }),
  );
  const session = connect(warden.url, { ca: (await testCertificate()).certPem, servername: 'localhost' });
  t.teardown(() => session.close());
  const denied = (path: string, client?: string): OutgoingHttpHeaders => ({
    ':path': path,
    ...(client === undefined ? {} : { 'x-forwarded-for': client }),
  });
  /** Events received, a folded record counting for those folded into it. */
  const eventsReceived = (name: string) =>
    receiver.logs.filter((l) => l.eventName === name).reduce((n, l) => n + 1 + Number(l.attributes['warden.folded'] ?? 0), 0);
  const serverSpans = () => receiver.spans.filter((s) => s.kind === SERVER).length;

  // A quick collector: nothing dropped.
  t.same(await flood(session, 500, () => denied('/secret/quick')), { 403: 500 });
  await receiver.until(() => (eventsReceived('warden.access.denied') === 500 && serverSpans() === 500 ? true : undefined));
  const quick = await scrapedDrops(warden.adminUrl);
  t.equal(
    Object.keys(quick).length,
    11,
    'every signal and reason has its series on /metrics from the start (metrics: collector_rejected only)',
  );
  t.equal(total(quick, 'logs') + total(quick, 'traces'), 0, 'a quick collector: nothing counted dropped on /metrics');
  await receiver.until(() => (exportedDrops(receiver) !== undefined ? true : undefined));
  t.same(
    Object.values(exportedDrops(receiver) ?? {}).filter((v) => v !== 0),
    [],
    'nor over OTLP',
  );

  // The collector slows down: one caller's flood of one event, another event after it, then many callers'.
  receiver.setAnswerDelay(SLOW_MS);
  // The other event comes last, when the flood had filled the queue before (it was dropped).
  const one = await flood(session, ONE, (i) => (i === ONE - 1 ? denied('/elsewhere/MARKER') : denied('/secret/flood')));
  const many = await flood(session, MANY, (i) => denied('/secret/many', `10.9.${i >> 8}.${i & 255}`));
  t.same(one, { 403: ONE - 1, 404: 1 }, "one caller's flood refused");
  t.same(many, { 403: MANY }, "many callers' flood refused");
  const line = await warden
    .waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('telemetry export dropped'), 5000)
    .catch(() => undefined);
  const whileSlow = await scrapedDrops(warden.adminUrl);
  t.ok(total(whileSlow, 'logs') > 0, `log records dropped while the collector was slow, seen on /metrics: ${JSON.stringify(whileSlow)}`);
  t.ok(total(whileSlow, 'traces') > 0, 'and spans');
  t.equal(line?.level, 'warn', `a warning line says so: ${String(line?.msg)}`);
  const told = Object.values((line?.dropped ?? {}) as Record<string, Counts>).flatMap((c) => Object.values(c));
  t.ok(told.length > 0 && told.every((n) => n > 0), `with how many, by signal and reason: ${JSON.stringify(line?.dropped)}`);

  // The collector is quick again: what was queued arrives, and the count is exported.
  receiver.setAnswerDelay(0);
  const sentEvents = 500 + ONE - 1 + MANY;
  const sentSpans = 500 + ONE + MANY;
  const settleBy = Date.now() + SETTLE_BOUND_MS;
  let scraped: Counts = {};
  for (;;) {
    scraped = await scrapedDrops(warden.adminUrl);
    const exported = exportedDrops(receiver) ?? {};
    const settled =
      eventsReceived('warden.access.denied') + total(scraped, 'logs') === sentEvents &&
      serverSpans() + total(scraped, 'traces') === sentSpans &&
      JSON.stringify(exported) === JSON.stringify(scraped);
    if (settled || Date.now() > settleBy) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const received = eventsReceived('warden.access.denied');
  t.equal(
    received + total(scraped, 'logs'),
    sentEvents,
    `events: ${sentEvents} sent = ${received} received + ${total(scraped, 'logs')} dropped`,
  );
  t.equal(
    serverSpans() + total(scraped, 'traces'),
    sentSpans,
    `spans: ${sentSpans} sent = ${serverSpans()} received + ${total(scraped, 'traces')} dropped`,
  );
  t.same(exportedDrops(receiver), scraped, 'warden.telemetry.dropped exported once the collector is back: the same counts');
  t.equal(scraped['logs/export_failed'] ?? 0, 0, 'a slow collector fails no export: the drops are the full queue');
  t.equal(eventsReceived('warden.route.unknown'), 1, "the other event at the end of one caller's flood arrived");
  t.ok(
    receiver.logs.some((l) => Number(l.attributes['warden.folded'] ?? 0) > 0),
    "that caller's flood folded into records that say how many they stand for",
  );
});
