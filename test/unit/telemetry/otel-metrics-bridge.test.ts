import t from 'tap';
import { DataPointType, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { requestDurationProducer } from '../../../src/telemetry/otel-metrics-bridge.js';

t.test('http.server.request.duration over OTLP is the Prometheus histogram /metrics serves', async (t) => {
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false });
  const resource = resourceFromAttributes({ 'service.name': 'orders' });
  const producer = requestDurationProducer(metrics.requestDurations)(resource, { name: 'warden', version: '0.1.0' });
  t.same((await producer.collect()).resourceMetrics.scopeMetrics, [], 'nothing before the first request');

  for (const s of [0.0002, 0.0007, 0.0007, 0.003, 0.2, 42]) metrics.observeRequest('api', 'GET', 200, s);
  metrics.observeRequest('api', 'POST', 403, 0.001);
  const { resourceMetrics, errors } = await producer.collect();
  t.same(errors, []);
  t.equal(resourceMetrics.resource, resource);
  const metric = resourceMetrics.scopeMetrics[0]?.metrics[0] as HistogramMetricData;
  t.match(metric, { descriptor: { name: 'http.server.request.duration', unit: 's' }, dataPointType: DataPointType.HISTOGRAM });
  t.equal(metric.dataPoints.length, 2, 'one point per route, method and status');
  const get = metric.dataPoints.find((p) => p.attributes['http.request.method'] === 'GET');
  t.same(get?.attributes, { 'http.route': 'api', 'http.request.method': 'GET', 'http.response.status_code': 200 });
  t.equal(get?.value.count, 6);
  t.ok(Math.abs((get?.value.sum ?? 0) - 42.2046) < 1e-9, 'the sum');
  t.same(get?.value.buckets.boundaries, [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  // Per bucket, not cumulative as Prometheus keeps them; the last is above 10 s.
  t.same(get?.value.buckets.counts, [1, 2, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
  const post = metric.dataPoints.find((p) => p.attributes['http.request.method'] === 'POST');
  t.same(post?.value.buckets.counts, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], '≤ le: 1 ms falls in the 1 ms bucket');

  metrics.observeRequest('api', 'GET', 200, 0.0002);
  const later = ((await producer.collect()).resourceMetrics.scopeMetrics[0]?.metrics[0] as HistogramMetricData).dataPoints;
  const again = later.find((p) => p.attributes['http.request.method'] === 'GET');
  t.equal(again?.value.count, 7, 'cumulative');
  t.same(again?.startTime, get?.startTime, 'from the same start');

  // The same cells on /metrics, in Prometheus's form: cumulative `le` buckets, _sum, _count, the service label.
  const text = await metrics.registry.metrics();
  t.match(text, '# TYPE warden_http_request_duration_seconds histogram');
  const line = (suffix: string, labels: string) =>
    new RegExp(`^warden_http_request_duration_seconds_${suffix}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1];
  // In prom-client's Histogram's order: le, the registry's default labels, then the label set.
  const get200 = 'service="orders",route="api",method="GET",status="200"';
  t.equal(line('bucket', `le="0.0005",${get200}`), '2', 'cumulative: the two 0.2 ms requests');
  t.equal(line('bucket', `le="0.001",${get200}`), '4');
  t.equal(line('bucket', `le="10",${get200}`), '6');
  t.equal(line('bucket', `le="\\+Inf",${get200}`), '7');
  t.equal(line('count', get200), '7');
  t.ok(Math.abs(Number(line('sum', get200)) - 42.2048) < 1e-9, 'the sum');
  t.equal(line('count', 'service="orders",route="api",method="POST",status="403"'), '1');
  const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'warden_http_request_duration_seconds');
  t.match(json?.values[0], {
    metricName: 'warden_http_request_duration_seconds_bucket',
    labels: { le: 0.0005, route: 'api', service: 'orders' },
  });
});

t.test('request durations: unknown methods folded, label sets bounded', async (t) => {
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false });
  metrics.observeRequest('api', 'BREW', 418, 0.001);
  metrics.observeRequest('api', 'PROPFIND', 418, 0.001);
  const cells = [...metrics.requestDurations.snapshot()];
  t.same(
    cells.map((c) => [c.method, c.count]),
    [['OTHER', 2]],
  );

  const { RequestDurations } = await import('../../../src/telemetry/request-durations.js');
  const small = new RequestDurations(2);
  for (const status of [200, 404, 500]) small.observe('api', 'GET', status, 0.001);
  small.observe('api', 'GET', 200, 0.001);
  t.strictSame(
    [...small.snapshot()].map((c) => [c.status, c.count]),
    [
      ['200', 2],
      ['404', 1],
    ],
    'a third label set is not recorded; known ones still are',
  );
});
