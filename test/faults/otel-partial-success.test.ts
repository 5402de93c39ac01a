/**
 * A collector that takes every export (200) but answers with `partial_success`: it rejected some
 * spans, log records or data points (over its quota, attributes refused), with an error message.
 * The rejected items are counted as dropped (`reason="collector_rejected"`, clamped to the batch
 * sent) on /metrics, and told in the drops warning line with the collector's message cut to 256
 * characters, control characters escaped. Before, the OTel library reported it only through
 * `diag.warn`, and Warden registers no diag logger: a collector dropping every security event was
 * invisible (red team 26, F4). Both protocols; the message is 4 MiB less a little in protobuf (the
 * library reads at most 4 MiB) and 1 MiB in JSON (past the 64 KiB read whole: partial-success.ts).
 */
import { connect } from 'node:http2';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { partialSuccessBody, startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

/** More than any batch holds: every item of every export is rejected, and counted once (clamped). */
const REJECTED = 1_000_000_000;
const HEAD = 'quota exceeded \u001b[31mRED\u001b[0m\r\n{"level":"error","msg":"forged"} \u202eevil';
// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const REQUESTS = 20;

type Counts = Record<string, number>;

async function scrapedDrops(adminUrl: string): Promise<Counts> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const out: Counts = {};
  for (const m of text.matchAll(/^warden_telemetry_dropped_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out[`${labels.signal}/${labels.reason}`] = Number(m[2]);
  }
  return out;
}

t.test('the protobuf answer is what the OTel library itself reads as a partial success', async (t) => {
  const read = ProtobufTraceSerializer.deserializeResponse(partialSuccessBody('traces', false, 7, 'over quota'));
  t.same(read, { partialSuccess: { rejectedSpans: 7, errorMessage: 'over quota' } });
});

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  t.test(`${protocol}: items a collector rejects in a partial success are counted and told`, async (t) => {
    const json = protocol === 'http/json';
    const message = HEAD + 'E'.repeat(json ? 1024 * 1024 : 4 * 1024 * 1024 - 1024);
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const receiver = await startOtlpReceiver({ partialSuccess: { rejected: REJECTED, message } });
    t.teardown(() => receiver.close());
    const warden = await spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        log: { access: false },
        telemetry: { otlp: { endpoint: receiver.url, protocol, export_interval: '200ms', timeout: '2s', sampling_ratio: 1 } },
        routes: [
          { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
          { id: 'api', path: '/api/*' },
        ],
      }),
    );
    const ca = (await testCertificate()).certPem;
    const h1 = testAgent(ca);
    t.teardown(() => h1.close());
    const h2 = connect(warden.url, { ca, servername: 'localhost' });
    t.teardown(() => h2.close());
    const h2Status = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = h2.request({ ':path': path });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
        req.resume();
        req.end();
      });

    // Refusals (a security event, so a log record, and a span each) and forwarded requests, over both protocols.
    const statuses: Counts = {};
    const count = (s: number) => (statuses[String(s)] = (statuses[String(s)] ?? 0) + 1);
    for (let n = 0; n < REQUESTS; n++) {
      count((await fetchText(`${warden.url}/admin/${n}`, h1)).status);
      count(await h2Status(`/admin/h2/${n}`));
      count((await fetchText(`${warden.url}/api/${n}`, h1)).status);
      count(await h2Status(`/api/h2/${n}`));
      await new Promise((r) => setTimeout(r, 25));
    }
    t.same(statuses, { 403: 2 * REQUESTS, 200: 2 * REQUESTS }, 'h1 and h2 requests served as ever');

    // Every export was answered with a partial success; once the collector has had them all, every
    // record it got was rejected, and counted once: the batch's size, not the 10^9 it claimed.
    await receiver.until(() => (receiver.logs.length >= 2 * REQUESTS ? true : undefined));
    let drops: Counts = {};
    let seen = '';
    let settled = false;
    for (const deadline = Date.now() + 10_000; !settled && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      const [logs, spans] = [receiver.logs.length, receiver.spans.length];
      drops = await scrapedDrops(warden.adminUrl);
      settled = drops['logs/collector_rejected'] === logs && drops['traces/collector_rejected'] === spans;
      seen = `logs ${drops['logs/collector_rejected']} of ${logs}, spans ${drops['traces/collector_rejected']} of ${spans}`;
    }
    t.ok(settled, `rejected = received: ${seen}`);
    t.ok(receiver.logs.length >= 2 * REQUESTS, `every refusal's record reached the collector (${receiver.logs.length})`);
    t.ok((drops['metrics/collector_rejected'] ?? 0) > 0, `rejected data points counted (${drops['metrics/collector_rejected']})`);
    for (const reason of ['queue_full', 'export_failed', 'export_timeout', 'breaker_open'])
      t.equal((drops[`logs/${reason}`] ?? 0) + (drops[`traces/${reason}`] ?? 0), 0, `nothing counted as ${reason}: the exports succeeded`);

    // Told on stdout, with the collector's message bounded and escaped, once per 10 s.
    const line = await warden.waitFor(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('telemetry export dropped') && l.collector_message !== undefined,
      5000,
    );
    const said = (line.collector_message ?? {}) as Record<string, string>;
    t.ok(line.dropped && typeof line.dropped === 'object', `the line has the counts: ${JSON.stringify(line.dropped)}`);
    for (const signal of Object.keys(said)) {
      const text = said[signal] as string;
      t.ok(text.startsWith('quota exceeded '), `${signal}: the collector's message (${JSON.stringify(text.slice(0, 60))}…)`);
      t.ok(text.length <= 320, `${signal}: cut (${text.length} characters of ${message.length})`);
      t.notOk(CONTROLS.test(text), `${signal}: no control or bidirectional character left raw`);
      t.ok(text.includes('\\x1b[31m'), `${signal}: escape shown escaped`);
    }
    t.ok(Object.keys(said).length > 0, `a message by signal: ${Object.keys(said).join(', ')}`);
    const told = warden.lines.filter((l) => l.collector_message !== undefined).map((l) => Number(l.time));
    const gaps = told.slice(1).map((at, i) => at - (told[i] as number));
    t.ok(told.length >= 1 && gaps.every((ms) => ms >= 9_900), `at most one line per 10 s (${told.length}, gaps ${gaps.join(', ')} ms)`);
    const still = await fetchText(`${warden.url}/api/last`, h1);
    t.equal(still.status, 200, 'still serving');
  });
}
