/**
 * Where OTLP export goes (otlp-endpoints.ts): an endpoint the OTel library cannot parse refuses the
 * start, in one masked line, instead of the library's silent fall back to http://localhost:4318
 * (red team 29 F1); sidecar.yaml's endpoint is checked at load the same way (F2), a query in a base
 * URL is refused (F3), and any one of the four variables turns export on for its signals (F4).
 */
import t from 'tap';
import { ConfigError } from '../../../src/config/config-error.js';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { otelEnabled } from '../../../src/telemetry/otel-enabled.js';
import { describeTargets, otlpEndpointProblem, otlpTargets, shownEndpoint, signalUrl } from '../../../src/config/otlp-endpoints.js';
import { testConfigYaml } from '../../support/sidecar.js';

const PASSWORD = 'COLLECTOR-PW-F2';
const KEY = 'COLLECTOR-KEY-F2';

t.test('otlpEndpointProblem refuses what the library would not use as written', async (t) => {
  for (const ok of ['http://otel-collector:4318', 'https://c.example/otlp/', 'http://127.0.0.1:65535', 'http://[::1]:4318'])
    t.equal(otlpEndpointProblem(ok, true), undefined, ok);
  for (const [bad, why] of [
    ['http://otel-collector.prod:99999', /not a URL/],
    ['http://otel collector:4318', /not a URL/],
    ['otel-collector:4318', /http:\/\/ or https:\/\//],
    ['ftp://c:21', /http:\/\/ or https:\/\//],
    ['http://c:0', /port 0/],
    [`http://otel:${PASSWORD}@c:4318`, /user:password@/],
    ['http://c:4318/#x', /fragment/],
    ['http://c:4318/otlp?api_key=K3', /query/],
  ] as const) {
    const problem = otlpEndpointProblem(bad, true);
    t.match(problem, why, bad);
    t.notMatch(problem, /COLLECTOR|K3|otel-collector/, 'the value is not repeated');
  }
  // A per-signal URL is used as written: its query is kept.
  t.equal(otlpEndpointProblem('http://c:4318/v1/logs?tenant=a', false), undefined);
});

t.test('signalUrl adds /v1/<signal> to the path, not after a query', async (t) => {
  t.equal(signalUrl('http://c:4318', 'traces'), 'http://c:4318/v1/traces');
  t.equal(signalUrl('http://c:4318///', 'logs'), 'http://c:4318/v1/logs');
  t.equal(signalUrl('https://c/otlp/', 'metrics'), 'https://c/otlp/v1/metrics');
});

t.test('shownEndpoint masks the password and drops the query, password first', async (t) => {
  t.equal(shownEndpoint(`http://otel:${PASSWORD}@c:99999/?api_key=${KEY}`), 'http://***@c:99999/');
  t.equal(shownEndpoint('http://u:p?ss#w@c/'), 'http://***@c/', 'a password holding ? or # is masked whole');
  t.equal(shownEndpoint(`http://c/${'a'.repeat(300)}`).length, 201);
});

t.test('otlpTargets: the variables, each signal on its own, never a default', async (t) => {
  t.equal(otlpTargets(undefined, {}), undefined, 'no endpoint: off');
  t.equal(otlpTargets(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }), undefined);
  t.same(otlpTargets(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' }), {
    traces: 'http://c:4318/v1/traces',
    logs: 'http://c:4318/v1/logs',
    metrics: 'http://c:4318/v1/metrics',
  });
  // F4: one signal's variable alone exports that signal, and only it.
  for (const signal of ['TRACES', 'LOGS', 'METRICS']) {
    const env = { [`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]: 'http://siem:4318/ingest?tenant=a' };
    t.same(otlpTargets(undefined, env), { [signal.toLowerCase()]: 'http://siem:4318/ingest?tenant=a' }, signal);
    t.equal(otelEnabled(undefined, env), true, `${signal} alone turns export on`);
  }
  // A signal's own variable wins over the generic one.
  t.same(otlpTargets(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://siem/logs' }), {
    traces: 'http://c:4318/v1/traces',
    logs: 'http://siem/logs',
    metrics: 'http://c:4318/v1/metrics',
  });
  t.same(describeTargets({ logs: 'http://siem/logs?key=K' }), {
    traces: 'off (no endpoint for it)',
    logs: 'http://siem/logs',
    metrics: 'off (no endpoint for it)',
  });
  // sidecar.yaml's endpoint wins; the variables are not read.
  t.same(
    otlpTargets({ endpoint: 'http://yaml:4318' }, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:99999' })?.logs,
    'http://yaml:4318/v1/logs',
  );
});

t.test('otlpTargets: an unusable variable throws one masked line per variable', async (t) => {
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://otel:${PASSWORD}@otel-collector.prod:99999/?api_key=${KEY}`,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://otel collector:4318/v1/metrics',
  };
  const err = t.throws(() => otlpTargets(undefined, env)) as unknown;
  t.ok(err instanceof ConfigError);
  const lines = (err as Error).message.split('\n');
  t.equal(lines.length, 2);
  t.match(lines[0], /^OTEL_EXPORTER_OTLP_ENDPOINT: "http:\/\/\*\*\*@otel-collector\.prod:99999\/" is not a URL/);
  t.match(lines[0], /localhost:4318 instead/);
  t.match(lines[1], /^OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "http:\/\/otel collector:4318\/v1\/metrics" is not a URL/);
  t.notMatch((err as Error).message, new RegExp(`${PASSWORD}|${KEY}`));
  t.throws(() => otelEnabled(undefined, env), ConfigError, 'otelEnabled does not take it for on or off');
  t.throws(() => otlpTargets(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/otlp?api_key=K3' }), /query/);
});

t.test('telemetry.otlp.endpoint is checked at load, its credentials masked', async (t) => {
  const yaml = async (endpoint: string) => testConfigYaml('http://127.0.0.1:1', { telemetry: { otlp: { endpoint } } });
  for (const [endpoint, why] of [
    [`http://otel:${PASSWORD}@otel-collector:99999/?api_key=${KEY}`, /not a URL/],
    [`http://otel:${PASSWORD}@otel-collector:4318/`, /user:password@/],
    ['http://collector:4318/otlp?api_key=K3', /query/],
  ] as const) {
    let message = '';
    try {
      parseSidecarConfig('/x/sidecar.yaml', await yaml(endpoint), {});
    } catch (e) {
      message = (e as Error).message;
    }
    t.match(message, /telemetry\.otlp\.endpoint: /, endpoint);
    t.match(message, why);
    t.notMatch(message, new RegExp(`${PASSWORD}|${KEY}|K3`));
  }
  const ok = parseSidecarConfig('/x/sidecar.yaml', await yaml('http://otel-collector:4318'), {});
  t.equal(ok.config.telemetry.otlp?.endpoint, 'http://otel-collector:4318');
});
