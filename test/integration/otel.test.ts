/**
 * OpenTelemetry export from a real `warden proxy` process to an OTLP/HTTP receiver in the test
 * that decodes the real payloads, protobuf and JSON: the server span continues the caller's trace,
 * the upstream client span's context reaches the backend as traceparent, every security event
 * arrives as a log record (and a span event) correlated with its request's trace, the request and
 * event metrics arrive, and the sidecar keeps serving, unslowed, with the collector gone.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startOtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml, type Teardown } from '../support/sidecar.js';
import { startTestClamd } from '../support/clamd.js';
import { testCertificate } from '../support/certs.js';

const SERVER = 2;
const CLIENT = 3;

/** A sidecar process exporting to an OTLP receiver every 200 ms, its backend and a client. */
async function tracedSidecar(t: Teardown, otlp: Record<string, unknown>, env: Record<string, string> = {}) {
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, { telemetry: { otlp: { endpoint: receiver.url, export_interval: '200ms', ...otlp } } }),
    env,
  );
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());
  return { receiver, backend, warden, agent };
}

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  t.test(`OTLP export over ${protocol}`, async (t) => {
    const receiver = await startOtlpReceiver();
    t.teardown(() => receiver.close());
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const clamd = await startTestClamd(t);
    const warden = await spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        service: { name: 'orders' },
        telemetry: { otlp: { endpoint: receiver.url, protocol, export_interval: '200ms', timeout: '1s' } },
        threats: { waf: { paranoia: 1 }, malware: { clamd: clamd.address } },
        routes: [
          { id: 'upload', path: '/api/upload', methods: ['POST'], malware_scan: true },
          { id: 'api', path: '/api/*', methods: ['GET', 'POST'] },
          { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
        ],
      }),
      // The standard variable adds to the resource; sidecar.yaml's service.name wins over it.
      { OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test,service.name=not-this-one' },
    );
    const agent = testAgent((await testCertificate()).certPem);
    t.teardown(() => agent.close());

    // A caller that is itself traced: its span is the parent of the sidecar's server span.
    const traceId = randomBytes(16).toString('hex');
    const callerSpan = randomBytes(8).toString('hex');
    const ok = await fetchText(`${warden.url}/api/orders`, agent, { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } });
    t.equal(ok.status, 200);
    const forwarded = String(backend.requests.at(-1)?.headers.traceparent ?? '');
    t.match(forwarded, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), 'the backend gets the same trace id');
    const backendParent = forwarded.split('-')[2];

    // Without a caller's context: a new trace, sampled, for the backend (the W3C fast path).
    await fetchText(`${warden.url}/api/orders`, agent);
    t.match(String(backend.requests.at(-1)?.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'a new trace reaches the backend');
    // With trace state and baggage: both reach the backend as the W3C propagators write them.
    const withState = randomBytes(16).toString('hex');
    await fetchText(`${warden.url}/api/orders`, agent, {
      headers: { traceparent: `00-${withState}-${callerSpan}-01`, tracestate: 'vendor=abc', baggage: 'tenant=acme' },
    });
    const stated = backend.requests.at(-1)?.headers;
    t.match(String(stated?.traceparent), new RegExp(`^00-${withState}-[0-9a-f]{16}-01$`));
    t.not(String(stated?.traceparent).split('-')[2], callerSpan, "the upstream span's id, not the caller's passed through");
    t.equal(stated?.tracestate, 'vendor=abc', 'trace state reaches the backend');
    t.equal(stated?.baggage, 'tenant=acme', 'baggage reaches the backend');
    // A caller's state without a usable traceparent belongs to no trace the sidecar continues: dropped,
    // as is baggage the propagator would not write (one pair past its 4 096-byte limit).
    for (const traceparent of [undefined, 'junk']) {
      await fetchText(`${warden.url}/api/orders`, agent, {
        headers: { ...(traceparent ? { traceparent } : {}), tracestate: `evil=${'A'.repeat(6000)}`, baggage: `k=${'C'.repeat(5000)}` },
      });
      const sent = backend.requests.at(-1)?.headers;
      t.match(String(sent?.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, `traceparent ${traceparent ?? 'none'}: a new trace`);
      t.equal(sent?.tracestate, undefined, `traceparent ${traceparent ?? 'none'}: the caller's tracestate is not passed on`);
      t.equal(sent?.baggage, undefined, `traceparent ${traceparent ?? 'none'}: nor its oversized baggage`);
    }
    // A long path is recorded cut to 1 KiB in the span (it went whole into every span and event).
    const longPath = `/api/${'p'.repeat(5000)}`;
    await fetchText(`${warden.url}${longPath}`, agent);

    const denied = await fetchText(`${warden.url}/admin/stats`, agent);
    t.equal(denied.status, 403);
    const attack = await fetchText(`${warden.url}/api/search?q=${encodeURIComponent("' OR 1=1 --")}`, agent);
    t.equal(attack.status, 403);

    const server = await receiver.until(() => receiver.spans.find((s) => s.traceId === traceId && s.kind === SERVER));
    t.equal(server.parentSpanId, callerSpan, 'the server span continues the caller’s span');
    t.match(server.attributes, { 'http.route': 'api', 'http.response.status_code': 200, 'http.request.method': 'GET' });
    t.equal(server.name, 'GET api');
    t.match(server.resource, { 'service.name': 'orders', 'service.version': /^\d+\.\d+\.\d+/, 'deployment.environment': 'test' });
    const long = await receiver.until(() =>
      receiver.spans.find((s) => s.kind === SERVER && String(s.attributes['url.path']).startsWith('/api/pppp')),
    );
    t.equal(String(long.attributes['url.path']).length, 1024, 'a 5 KB path is recorded as its first 1 024 characters');
    const client = await receiver.until(() => receiver.spans.find((s) => s.traceId === traceId && s.kind === CLIENT));
    t.equal(client.parentSpanId, server.spanId, 'the upstream span is a child of the server span');
    t.equal(backendParent, client.spanId, 'and its context is what the backend received');

    // A call the sidecar makes on the request's behalf is a child of its server span.
    const uploadTrace = randomBytes(16).toString('hex');
    const uploaded = await fetchText(`${warden.url}/api/upload`, agent, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', traceparent: `00-${uploadTrace}-${randomBytes(8).toString('hex')}-01` },
      body: Buffer.from('a clean upload'),
    });
    t.equal(uploaded.status, 200);
    const scan = await receiver.until(() => receiver.spans.find((s) => s.traceId === uploadTrace && s.name === 'clamd INSTREAM'));
    const uploadServer = await receiver.until(() => receiver.spans.find((s) => s.traceId === uploadTrace && s.kind === SERVER));
    t.equal(scan.kind, CLIENT);
    t.equal(scan.parentSpanId, uploadServer.spanId, 'the clamd scan is a client span under the request’s span');
    t.match(scan.attributes, { 'clamd.infected': false, 'clamd.bytes': 14 });

    const deniedLog = await receiver.until(() => receiver.logs.find((l) => l.eventName === 'warden.access.denied'));
    t.equal(deniedLog.body, 'warden.access.denied');
    t.equal(deniedLog.severityNumber, 13, 'WARN');
    t.match(deniedLog.attributes, { 'http.route': 'admin', 'warden.code': 'ERR_ACCESS_DENIED', 'warden.action': 'block' });
    const deniedSpan: ReceivedSpan = await receiver.until(() =>
      receiver.spans.find((s) => s.kind === SERVER && s.attributes['http.route'] === 'admin'),
    );
    t.equal(deniedLog.traceId, deniedSpan.traceId, 'the event is correlated with its request’s trace');
    t.equal(deniedLog.spanId, deniedSpan.spanId);
    t.ok(
      deniedSpan.events.some((e) => e.name === 'warden.access.denied'),
      'and is a span event on it',
    );
    t.match(deniedSpan.attributes, { 'warden.event': 'warden.access.denied', 'http.response.status_code': 403 });
    const sqli = await receiver.until(() => receiver.logs.find((l) => l.eventName === 'warden.input.sqli'));
    t.match(sqli.attributes, { 'warden.rule': 'sqli-libinjection', 'warden.detail': '/query/q/0' });
    t.notOk(JSON.stringify(receiver.logs).includes('1=1'), 'no attack value in any log record');

    const duration = await receiver.until(() =>
      receiver.metrics.find((m) => m.name === 'http.server.request.duration' && m.points.some((p) => p.attributes['http.route'] === 'api')),
    );
    t.ok(
      duration.points.some((p) => p.attributes['http.response.status_code'] === 200 && p.value >= 1),
      'the request duration histogram counts the request',
    );
    const events = await receiver.until(() => receiver.metrics.find((m) => m.name === 'warden.security.events'));
    t.ok(
      events.points.some((p) => p.attributes['event.name'] === 'warden.access.denied'),
      'security events are counted by name',
    );
    const expected = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
    t.ok(
      [...receiver.contentTypes].every((c) => c.endsWith(expected)),
      `every export was ${expected}`,
    );

    // The collector gone: requests are served as before, and none waits for the exporter.
    await receiver.close();
    const started = performance.now();
    for (let i = 0; i < 20; i++) t.equal((await fetchText(`${warden.url}/api/orders`, agent)).status, 200);
    t.ok(performance.now() - started < 3000, `20 requests with the collector down in ${Math.round(performance.now() - started)} ms`);
    warden.child.kill('SIGTERM');
    t.equal(await warden.exited, 0, 'and it drains and exits cleanly, the unsent telemetry dropped');
  });
}

t.test('sampling: a ratio for new traces, the caller’s decision honoured', async (t) => {
  const { receiver, backend, warden, agent } = await tracedSidecar(t, { sampling_ratio: 0 });
  const sampled = randomBytes(16).toString('hex');
  const notSampled = randomBytes(16).toString('hex');
  for (const [traceId, flags] of [
    [sampled, '01'],
    [notSampled, '00'],
  ] as const) {
    const callerSpan = randomBytes(8).toString('hex');
    const res = await fetchText(`${warden.url}/x`, agent, {
      headers: { traceparent: `00-${traceId}-${callerSpan}-${flags}` },
    });
    t.equal(res.status, 200);
    t.match(
      String(backend.requests.at(-1)?.headers.traceparent),
      new RegExp(`^00-${traceId}-[0-9a-f]{16}-${flags}$`),
      `flags ${flags} passed on`,
    );
    t.not(String(backend.requests.at(-1)?.headers.traceparent).split('-')[2], callerSpan, 'under a span of the sidecar');
  }
  for (let i = 0; i < 5; i++) await fetchText(`${warden.url}/x`, agent);
  await receiver.until(() => receiver.spans.find((s) => s.traceId === sampled && s.kind === SERVER));
  // Give the exporter two more intervals to send anything else it has.
  await new Promise((r) => setTimeout(r, 600));
  t.notOk(
    receiver.spans.some((s) => s.traceId === notSampled),
    'a caller’s unsampled trace is not recorded',
  );
  t.equal(receiver.spans.filter((s) => s.traceId !== sampled).length, 0, 'with sampling_ratio 0, new traces are not recorded either');
});

t.test('trust_trace_context: peers — a caller without a verified certificate starts a new trace, whatever it sent', async (t) => {
  const { backend, warden, agent } = await tracedSidecar(t, { sampling_ratio: 0, trust_trace_context: 'peers' });
  const traceId = randomBytes(16).toString('hex');
  const res = await fetchText(`${warden.url}/x`, agent, {
    headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, tracestate: 'vendor=abc', baggage: 'tenant=acme' },
  });
  t.equal(res.status, 200);
  const seen = backend.requests.at(-1)?.headers ?? {};
  const forwarded = String(seen.traceparent);
  t.match(forwarded, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/, 'a trace of its own, sampled by the ratio (0), not by the caller’s flag');
  t.not(forwarded.split('-')[1], traceId, 'not grafted onto the caller’s trace');
  t.equal(seen.tracestate, undefined, 'the caller’s state is not passed on');
  t.equal(seen.baggage, undefined, 'nor its baggage');
});

t.test('trust_trace_context: none — no tracer’s headers of the caller reach the backend, in any format (defect 182)', async (t) => {
  const { backend, warden, agent } = await tracedSidecar(t, { trust_trace_context: 'none' });
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  const foreign = {
    b3: `${traceId}-${spanId}-1`,
    'x-b3-traceid': traceId,
    'x-b3-spanid': spanId,
    'x-b3-sampled': '1',
    'uber-trace-id': `${traceId}:${spanId}:0:1`,
    'uberctx-tenant': 'acme',
    'x-amzn-trace-id': 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1',
    'x-cloud-trace-context': `${traceId}/1;o=1`,
    sw8: '1-YQ==-YQ==-0-YQ==-YQ==-YQ==-YQ==',
    'ot-tracer-traceid': traceId,
    'ot-baggage-user': 'eve',
    'x-datadog-trace-id': '1234',
    'x-datadog-sampling-priority': '2',
    // Red team 29: Sentry's SDK joined the caller's trace from these, sampling forced on.
    'sentry-trace': `${traceId}-${spanId}-1`,
    'jaeger-debug-id': 'forced',
    'jaeger-baggage': 'k=v',
    'correlation-context': 'user=eve',
    'x-instana-t': spanId,
    'x-instana-s': spanId,
    'x-instana-l': '1',
    'x-dynatrace': 'FW4;0;1;2;3',
    singularityheader: 'appId=1*ctrlguid=2',
    'x-honeycomb-trace': `1;trace_id=${traceId},parent_id=${spanId}`,
    'x-client-trace-id': traceId,
    'x-ot-span-context': `${traceId};${spanId};0`,
    'l5d-ctx-trace': 'AAAA',
    sw6: '1-YQ==-YQ==-0-YQ==-YQ==-YQ==-YQ==',
    'pinpoint-traceid': `agent^1^${spanId}`,
    'x-newrelic-transaction': 'PxQ=',
    'eagleeye-traceid': traceId,
  };
  const res = await fetchText(`${warden.url}/x`, agent, {
    headers: { traceparent: `00-${traceId}-${spanId}-01`, 'x-kept': 'yes', ...foreign },
  });
  t.equal(res.status, 200);
  const seen = backend.requests.at(-1)?.headers ?? {};
  for (const name of Object.keys(foreign)) t.equal(seen[name], undefined, `${name} is not passed on`);
  t.not(String(seen.traceparent).split('-')[1], traceId, 'a trace of its own');
  t.equal(seen['x-kept'], 'yes', 'other headers are');
});

t.test(
  'OTEL_PROPAGATORS=b3multi: a caller’s W3C traceparent is not passed on raw beside the B3 headers made here (defect 182)',
  async (t) => {
    const { backend, warden, agent } = await tracedSidecar(t, { trust_trace_context: 'none' }, { OTEL_PROPAGATORS: 'b3multi' });
    const traceId = randomBytes(16).toString('hex');
    const res = await fetchText(`${warden.url}/x`, agent, {
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, 'x-b3-traceid': traceId, 'x-b3-sampled': '1' },
    });
    t.equal(res.status, 200);
    const seen = backend.requests.at(-1)?.headers ?? {};
    t.equal(seen.traceparent, undefined, 'no traceparent: the configured propagator writes B3 only');
    t.match(String(seen['x-b3-traceid']), /^[0-9a-f]{32}$/);
    t.not(seen['x-b3-traceid'], traceId, 'B3 headers of a trace of its own');
  },
);

t.test(
  'an unregistered h2 :method is `_OTHER` in its refusal’s span, event and access line, not the method sent (defect 183)',
  async (t) => {
    const { receiver, warden } = await tracedSidecar(t, {});
    const ca = (await testCertificate()).certPem;
    const session = connect(warden.url, { ca });
    t.teardown(() => session.close());
    const methods = ['X'.repeat(5000), 'FOO1', 'FOO2', 'get'];
    for (const method of methods) {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': '/x' }, { endStream: true });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      t.equal(status, 400, `${method.slice(0, 8)}: refused`);
    }
    const servers = await receiver.until(() => {
      const found = receiver.spans.filter((s) => s.kind === SERVER);
      return found.length >= methods.length ? found : undefined;
    });
    t.same([...new Set(servers.map((s) => s.attributes['http.request.method']))], ['_OTHER'], 'one method value in the spans');
    t.equal(new Set(servers.map((s) => s.name)).size, 1, 'one span name');
    t.ok(
      servers.every((s) => s.name.length < 64),
      'a short one',
    );
    const access = warden.lines.filter((l) => l.msg === 'request' || l['http.request.method'] !== undefined);
    t.notOk(
      access.some((l) => JSON.stringify(l).includes('XXXXXXXX') || JSON.stringify(l).includes('FOO1')),
      'no line carries the method sent',
    );
  },
);

t.test('OTEL_PROPAGATORS=b3: the backend gets B3 headers, not W3C ones', async (t) => {
  const { backend, warden, agent } = await tracedSidecar(t, {}, { OTEL_PROPAGATORS: 'b3' });
  const traceId = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  t.equal((await fetchText(`${warden.url}/x`, agent, { headers: { b3: `${traceId}-${callerSpan}-1` } })).status, 200);
  const headers = backend.requests.at(-1)?.headers;
  t.match(String(headers?.b3), new RegExp(`^${traceId}-[0-9a-f]{16}-1$`), "the caller's B3 trace continues to the backend");
  t.not(String(headers?.b3).split('-')[1], callerSpan, 'under a span of the sidecar');
  t.equal(headers?.traceparent, undefined, 'no W3C traceparent: the W3C fast path is off');
  await fetchText(`${warden.url}/x`, agent);
  t.match(String(backend.requests.at(-1)?.headers.b3), /^[0-9a-f]{32}-[0-9a-f]{16}-1$/, 'a new trace, in B3');
});
