/**
 * A collector that answers a trace export with 200 and its headers, then trickles the body a byte
 * at a time: the sidecar gives that export up after its `timeout` and request spans are exported
 * again. Before, the request spans' queue waited for it for ever (one export at a time, and the
 * library's timeout is the socket's idle time, which each byte resets): no request span left the
 * sidecar again while logs and metrics went on (docs/adversarial.md, defect 110).
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

const SERVER = 2;
/** The export timeout, then the export breaker's pause (5 s) that a failed export opens, and margin. */
const BOUND_MS = 15_000;

for (const protocol of ['http/protobuf', 'http/json'] as const)
  t.test(`${protocol}: a collector trickling its answer to a trace export: later request spans are still exported`, async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const receiver = await startOtlpReceiver({ traces: 'trickle-first' });
    t.teardown(() => receiver.close());
    const warden = await spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        log: { access: false },
        telemetry: { otlp: { endpoint: receiver.url, protocol, export_interval: '200ms', timeout: '1s' } },
      }),
    );
    const agent = testAgent((await testCertificate()).certPem);
    t.teardown(() => agent.close());

    t.equal((await fetchText(`${warden.url}/first`, agent)).status, 200);
    await receiver.until(() => (receiver.exports.traces > 0 ? true : undefined));
    const exportedLater = () => receiver.spans.find((s) => s.kind === SERVER && String(s.attributes['url.path']).startsWith('/later/'));
    // Requests keep coming until one's span arrives (those during the breaker's pause are dropped).
    const deadline = Date.now() + BOUND_MS;
    const statuses = new Set<number>();
    for (let n = 0; exportedLater() === undefined && Date.now() < deadline; n++) {
      statuses.add((await fetchText(`${warden.url}/later/${n}`, agent)).status);
      await new Promise((r) => setTimeout(r, 250));
    }
    t.same([...statuses], [200], 'requests are served meanwhile');
    t.ok(exportedLater(), `a later request's span was exported (trace exports: ${receiver.exports.traces}; before: 1 for good)`);
    t.ok(receiver.exports.traces >= 2, 'the trickled export did not hold the queue');
    // Given up and closed (its exporter's abort: exporter-agent.ts); over JSON it stayed open before.
    t.equal(receiver.trickling.traces, 0, 'the trickled export was closed by the sidecar');
    const dropped = await receiver.until(() => {
      // The last export's points, by signal and reason: the traces' are this batch.
      const last = receiver.metrics
        .filter((m) => m.name === 'warden.telemetry.dropped')
        .at(-1)
        ?.points.filter((p) => p.attributes.signal === 'traces')
        .reduce((sum, p) => sum + p.value, 0);
      return last !== undefined && last > 0 ? last : undefined;
    });
    t.ok(dropped >= 1, `the batch given up is counted in warden.telemetry.dropped (${dropped})`);
  });
