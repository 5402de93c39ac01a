/**
 * `warden proxy` names the field of the listener it could not bind: a real process, a port held by
 * another socket. The egress listener's port had been blamed on listeners.inbound.port.
 */
import t from 'tap';
import { createServer } from 'node:net';
import { meshSection, ORDERS, startCaUnderTest } from '../support/ca-harness.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

async function heldPort(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  return (blocker.address() as { port: number }).port;
}

t.test('egress.port in use: reported against egress.port, not the inbound listener', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const port = await heldPort(t);
  const config = await testConfigYaml('http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: { host: '127.0.0.1', port, services: { payments: { url: 'https://127.0.0.1:1', spiffe_id: `${ORDERS}-payments` } } },
  });
  const failure = await spawnWarden(t, config).then(
    () => 'started',
    (err: Error) => err.message,
  );
  t.match(failure, /^warden exited with 2: \S+sidecar\.yaml:\d+ egress\.port: \d+ is already in use \(EADDRINUSE\)/, 'egress.port named');
  t.notMatch(failure, /listeners\.inbound/, 'not the inbound listener');
});

t.test('listeners.admin.port in use: reported against the admin listener', async (t) => {
  const port = await heldPort(t);
  const config = await testConfigYaml('http://127.0.0.1:1', { listeners: { admin: { host: '127.0.0.1', port } } });
  const failure = await spawnWarden(t, config).then(
    () => 'started',
    (err: Error) => err.message,
  );
  t.match(
    failure,
    new RegExp(`^warden exited with 2: \\S+sidecar\\.yaml:\\d+ listeners\\.admin\\.port: ${port} is already in use \\(EADDRINUSE\\)`),
  );
});
