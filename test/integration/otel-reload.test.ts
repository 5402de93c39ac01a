/**
 * `telemetry` reloads with the rest of the file (SIGHUP): a new endpoint takes the spans, events and
 * metrics of requests that arrive after the reload, export can be switched off and on again, and
 * the sidecar answers throughout. Real `warden proxy` process, two OTLP receivers in the test.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml, type WardenProcess } from '../support/sidecar.js';
import { testCertificate } from '../support/certs.js';

const SERVER = 2;

t.test('a reload moves export to a new collector, switches it off, and on again', async (t) => {
  const [first, second] = [await startOtlpReceiver(), await startOtlpReceiver()];
  t.teardown(() => Promise.all([first.close(), second.close()]));
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const configWith = (telemetry: Record<string, unknown> | undefined) =>
    testConfigYaml(backend.url, {
      service: { name: 'orders' },
      ...(telemetry ? { telemetry } : {}),
      routes: [
        { id: 'api', path: '/api/*', methods: ['GET'] },
        { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
      ],
    });
  const otlp = (endpoint: string) => ({ otlp: { endpoint, export_interval: '200ms', timeout: '1s' } });
  const warden = await spawnWarden(t, await configWith(otlp(first.url)));
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());

  const traced = async () => {
    const traceId = randomBytes(16).toString('hex');
    const res = await fetchText(`${warden.url}/api/orders`, agent, {
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    t.equal(res.status, 200);
    return traceId;
  };
  const reload = async (w: WardenProcess, text: string) => {
    const before = w.lines.length;
    writeFileSync(w.configFile, text);
    w.child.kill('SIGHUP');
    return w.waitFor((l) => l.event === 'warden.config.reloaded' && w.lines.indexOf(l) >= before);
  };
  const serverSpan = (receiver: typeof first, traceId: string) =>
    receiver.until(() => receiver.spans.find((s) => s.traceId === traceId && s.kind === SERVER));

  const beforeReload = await traced();
  t.equal((await serverSpan(first, beforeReload)).resource['service.name'], 'orders', 'exported to the first collector');

  const moved = await reload(warden, await configWith(otlp(second.url)));
  t.match(String(moved['warden.detail']), /telemetry restarted/, 'the reload says telemetry was restarted');
  const afterReload = await traced();
  t.ok(await serverSpan(second, afterReload), 'a request after the reload: its span goes to the new collector');
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 403);
  t.ok(await second.until(() => second.logs.find((l) => l.eventName === 'warden.access.denied')), 'and so do its security events');
  t.ok(
    await second.until(() => second.metrics.find((m) => m.name === 'http.server.request.duration' && m.points.length > 0)),
    'and the request metrics',
  );
  const metricsAtFirst = first.metrics.length;
  await new Promise((r) => setTimeout(r, 600)); // three export intervals
  t.notOk(
    first.spans.some((s) => s.traceId === afterReload),
    'nothing of it reaches the old collector',
  );
  t.equal(first.metrics.length, metricsAtFirst, 'nor metrics: the old SDK stopped reading the instruments');

  const off = await reload(warden, await configWith(undefined));
  t.match(String(off['warden.detail']), /telemetry restarted/);
  const untraced = await traced();
  await new Promise((r) => setTimeout(r, 600));
  t.notOk(
    [...first.spans, ...second.spans].some((s) => s.traceId === untraced),
    'export switched off: no span anywhere',
  );

  await reload(warden, await configWith(otlp(second.url)));
  const backOn = await traced();
  t.ok(await serverSpan(second, backOn), 'and on again');
  const unchanged = await reload(warden, await configWith(otlp(second.url)));
  t.notMatch(String(unchanged['warden.detail']), /telemetry/, 'an unchanged telemetry section is left running');
});
