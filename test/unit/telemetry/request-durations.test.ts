/**
 * The request histogram's label sets stay few whatever statuses a backend answers (one relaying the
 * caller's choice, httpbin's /status/N, grew it to its 10 000-cell cap: 17.7 MiB a scrape, 1.2–1.9 s
 * of blocked event loop), and what the cap keeps out is counted and told, not dropped silently.
 */
import t from 'tap';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { requestDurationProducer } from '../../../src/telemetry/otel-metrics-bridge.js';
import { RequestDurations } from '../../../src/telemetry/request-durations.js';

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'HEAD'];
const countLines = (text: string) => text.split('\n').filter((l) => l.startsWith('warden_http_request_duration_seconds_count'));

t.test('every status from 100 to 999 on three routes: 16 named statuses a route and method, the rest folded by class', async (t) => {
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false });
  // What a route answers first keeps its label: fourteen ordinary statuses, then a sweep of every one.
  const ordinary = [200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504];
  for (const route of ['a', 'b', 'c'])
    for (const method of METHODS) {
      for (const status of ordinary) metrics.observeRequest(route, method, status, 0.001);
      for (let status = 100; status < 1000; status++) metrics.observeRequest(route, method, status, 0.001);
    }
  metrics.observeRequest('a', 'GET', 0, 0.001); // no answer went out

  const lines = countLines(await metrics.registry.metrics());
  // 16 named (the 14, then 100 and 101) + 9 classes per route and method (PROPFIND is OTHER), + status 0.
  t.equal(lines.length, 3 * 9 * 25 + 1, `series bounded by route × method (${lines.length}; before: 10 000, the cap, then 1 945)`);
  const of = (labels: string) => lines.find((l) => l.includes(labels))?.split(' ')[1];
  t.equal(of('route="a",method="GET",status="404"'), '2', 'a status the route answered early keeps its label');
  t.equal(of('route="a",method="GET",status="4xx"'), String(100 - 7), 'every other 4xx, folded');
  t.equal(of('route="a",method="GET",status="9xx"'), '100');
  t.equal(of('route="a",method="GET",status="0"'), '1');
  t.notOk(
    lines.some((l) => l.includes('status="499"') || l.includes('status="418"')),
    'no label for an unregistered code, nor for a registered one past the sixteen',
  );
  // Over OTLP: the code as a number, a class as the same string.
  const producer = requestDurationProducer(metrics.requestDurations)(resourceFromAttributes({}), { name: 'warden' });
  const points = ((await producer.collect()).resourceMetrics.scopeMetrics[0]?.metrics[0] as HistogramMetricData).dataPoints;
  t.equal(points.length, lines.length, 'as many OTLP points');
  const statuses = new Set(points.map((p) => p.attributes['http.response.status_code']));
  t.ok(statuses.has(404) && statuses.has('4xx') && !statuses.has(499) && !statuses.has('404'));
  t.equal(/^warden_metric_cells_refused_total\{.*\} (\d+)$/m.exec(await metrics.registry.metrics())?.[1], '0', 'nothing refused');
});

t.test('past the cap: counted in warden_metric_cells_refused_total, told once', async (t) => {
  const warnings: string[] = [];
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false, warn: (_f, msg) => warnings.push(msg) });
  const refused = async () =>
    /^warden_metric_cells_refused_total\{metric="warden_http_request_duration_seconds",service="orders"\} (\d+)$/m.exec(
      await metrics.registry.metrics(),
    )?.[1];
  // 45 label sets a route (9 methods × 5 statuses): 400 routes want 18 000, past the 10 000 kept.
  const observeRoutes = (from: number, to: number) => {
    for (let r = from; r < to; r++)
      for (const method of METHODS) for (const status of [200, 404, 500, 503, 299]) metrics.observeRequest(`r${r}`, method, status, 0.001);
  };
  observeRoutes(0, 200);
  t.equal(countLines(await metrics.registry.metrics()).length, 9000, 'under the cap: all kept');
  t.equal(await refused(), '0');
  t.equal(warnings.length, 0);
  observeRoutes(200, 400);
  t.equal(countLines(await metrics.registry.metrics()).length, 10_000, 'at the cap');
  t.equal(await refused(), '8000', 'every observation kept out is counted');
  observeRoutes(300, 301);
  t.equal(await refused(), '8045', 'and goes on counting');
  t.equal(warnings.length, 1, 'one warning when the cap is first reached');
  t.match(warnings[0], /warden_http_request_duration_seconds holds 10000 label sets/);
});

t.test('a cell kept before the cap still counts after it', async (t) => {
  const small = new RequestDurations(2);
  for (const status of [200, 404, 500, 799]) small.observe('api', 'GET', status, 0.001);
  small.observe('api', 'GET', 200, 0.001);
  t.same(
    [...small.snapshot()].map((c) => [c.status, c.code, c.count]),
    [
      ['200', 200, 2],
      ['404', 404, 1],
    ],
  );
});
