/**
 * A collector that takes metric exports and never answers: the sidecar gives each export up when
 * its reader does (one interval), so open requests stay few. Before, each request ran for the
 * whole export timeout while the reader started a new one every interval: a struggling collector
 * got timeout ÷ interval connections at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

t.test('a hung collector holds at most a couple of metric exports open', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  let open = 0;
  let peak = 0;
  const held: ServerResponse[] = [];
  const collector = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (!req.url?.endsWith('/v1/metrics')) return void res.writeHead(200).end();
    open++;
    peak = Math.max(peak, open);
    held.push(res);
    res.on('close', () => open--);
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    collector.closeAllConnections();
    collector.close();
  });
  await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      telemetry: {
        otlp: { endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, export_interval: '200ms', timeout: '5s' },
      },
    }),
  );
  await new Promise((r) => setTimeout(r, 3000)); // fifteen intervals
  t.ok(held.length >= 3, `${held.length} metric exports were tried`);
  t.ok(peak <= 3, `at most ${peak} open at once (before: a new one each interval, each held for the 5 s timeout)`);
});
