/**
 * A collector that answers every log export with 200 and its headers, then trickles the body a byte
 * at a time: each export is given up after `timeout` and its connection closed (export-deadline.ts
 * calls the exporter's abort, exporter-agent.ts). Before, only the request spans' exporter had an
 * abort: given-up log exports stayed open, one more (socket and batch) every breaker pause, up to the
 * OTel library's 30 concurrent exports.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

/** Two log exports: one at once, then one after its 1 s timeout and the 5 s breaker pause; and margin. */
const BOUND_MS = 20_000;

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  t.test(`${protocol}: log exports a collector trickles are given up and closed`, async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const receiver = await startOtlpReceiver({ logs: 'trickle' });
    t.teardown(() => receiver.close());
    const warden = await spawnWarden(
      t,
      await testConfigYaml(backend.url, {
        log: { access: false },
        telemetry: { otlp: { endpoint: receiver.url, protocol, export_interval: '200ms', timeout: '1s' } },
        routes: [{ id: 'admin', path: '/admin/*', access: { action: 'deny' } }],
      }),
    );
    const agent = testAgent((await testCertificate()).certPem);
    t.teardown(() => agent.close());

    // A refusal (a security event, so a log record) every 200 ms until two log exports have come.
    const deadline = Date.now() + BOUND_MS;
    let mostOpen = 0;
    const statuses = new Set<number>();
    for (let n = 0; receiver.exports.logs < 2 && Date.now() < deadline; n++) {
      statuses.add((await fetchText(`${warden.url}/admin/${n}`, agent)).status);
      mostOpen = Math.max(mostOpen, receiver.trickling.logs);
      await new Promise((r) => setTimeout(r, 200));
    }
    t.same([...statuses], [403], 'requests are refused as ever meanwhile');
    t.ok(receiver.exports.logs >= 2, `two log exports (${receiver.exports.logs})`);
    // The second is closed in turn a second after it came.
    const open = await receiver.until(() => (receiver.trickling.logs === 0 ? 0 : undefined), 3000).catch(() => receiver.trickling.logs);
    t.equal(open, 0, 'every given-up log export was closed by the sidecar (before: each stayed open)');
    t.ok(mostOpen <= 1, `at most one open at a time (${mostOpen})`);
  });
}
