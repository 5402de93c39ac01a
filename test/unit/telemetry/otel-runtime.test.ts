/**
 * A reload whose OpenTelemetry start throws leaves export off "until the next reload", and the next
 * reload tries again even with the same file. Red-team round 19: the settings were recorded as
 * applied before the start, so the same file was taken for unchanged and export stayed off until
 * the file changed.
 */
import t from 'tap';
import type { OtlpConfig } from '../../../src/config/types.js';
import { createEventBus } from '../../../src/telemetry/events.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { startOtelRuntime } from '../../../src/telemetry/otel-runtime.js';
import { TelemetryDrops, type DropSignal } from '../../../src/telemetry/telemetry-drops.js';
import { startOtlpReceiver } from '../../support/otlp-receiver.js';

/** Drop counters that fail while `failing`: the SDK's start asks for them before it registers anything. */
class FailingDrops extends TelemetryDrops {
  failing = false;
  override counter(signal: DropSignal) {
    if (this.failing) throw new Error('start failed');
    return super.counter(signal);
  }
}

t.test('a telemetry start that fails is tried again by the next reload of the same settings', async (t) => {
  const [first, second] = [await startOtlpReceiver(), await startOtlpReceiver()];
  t.teardown(() => Promise.all([first.close(), second.close()]));
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false });
  const drops = new FailingDrops();
  const identity = { serviceName: 'orders', version: '0', attributes: {} };
  const otlp = (url: string): OtlpConfig => ({ endpoint: url, export_interval: 200, timeout: 1000 });
  const runtime = await startOtelRuntime(otlp(first.url), identity, {
    registry: metrics.registry,
    requestDurations: metrics.requestDurations,
    events: createEventBus(),
    drops,
  });
  t.teardown(() => runtime.shutdown());
  t.ok(runtime.tracing, 'exporting');

  drops.failing = true;
  await t.rejects(runtime.apply(otlp(second.url), identity, 0), /start failed/, 'the reload’s start throws');
  t.equal(runtime.tracing, undefined, 'export is off');

  drops.failing = false;
  t.equal(await runtime.apply(otlp(second.url), identity, 0), true, 'the same settings again: started');
  t.ok(runtime.tracing, 'exporting again');
  t.equal(await runtime.apply(otlp(second.url), identity, 0), false, 'and once running, the same settings are unchanged');
});
