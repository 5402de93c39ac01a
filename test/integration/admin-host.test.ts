/**
 * DNS rebinding: the admin listener on loopback answers only requests for a loopback Host, so a web
 * page whose name was rebound to 127.0.0.1 cannot read the console or revoke tokens. Bound elsewhere
 * (a pod IP, for Prometheus), it answers any Host, as before.
 */
import t from 'tap';
import { Registry } from 'prom-client';
import { startAdminServer } from '../../src/proxy/admin.js';
import { startTestBackend } from '../support/backend.js';
import { curl } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const get = (url: string, host: string, ...args: string[]) => curl(['-m', '5', '-H', `Host: ${host}`, ...args, url]);

t.test('admin listener on loopback: a foreign Host is refused, loopback names are served', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const port = new URL(s.adminUrl).port;

  for (const path of ['/', '/console/status', '/console/events', '/metrics', '/healthz']) {
    const r = await get(`${s.adminUrl}${path}`, `attacker.example:${port}`);
    t.equal(r.status, 421, `${path} with Host attacker.example: 421`);
    t.match(r.body, /^\{.*"status":421,"code":"ERR_ADMIN_HOST_REFUSED"/, `${path}: problem+json`);
    t.notMatch(r.body, /warden_|"status":"ok"|<html/i, `${path}: nothing of the answer leaks`);
  }
  const revoke = await get(`${s.adminUrl}/tokens/revoke`, 'attacker.example', '-X', 'POST', '--data', 'token=x');
  t.equal(revoke.status, 421, 'POST /tokens/revoke with a foreign Host: 421');
  const headers = await curl(['-s', '-o', '/dev/null', '-D', '-', '-H', 'Host: attacker.example', `${s.adminUrl}/healthz`]);
  t.match(headers.body, /content-type: application\/problem\+json/i);

  for (const host of ['rebind.127.0.0.1.nip.io', 'localhost.attacker.example', '10.0.0.1', '[2001:db8::1]', 'localhost:x']) {
    t.equal((await get(`${s.adminUrl}/healthz`, host)).status, 421, `Host ${host}: 421`);
  }
  for (const host of [
    `localhost:${port}`,
    `127.0.0.1:${port}`,
    `[::1]:${port}`,
    'LOCALHOST',
    'warden.localhost',
    '127.1.2.3',
    'localhost.',
  ]) {
    const r = await get(`${s.adminUrl}/healthz`, host);
    t.equal(r.status, 200, `Host ${host}: 200`);
  }
  const status = await get(`${s.adminUrl}/console/status`, `localhost:${port}`);
  t.equal(status.status, 200, 'the console status for localhost');
});

t.test('admin listener bound to all interfaces: any Host is served (Prometheus by pod IP or service name)', async (t) => {
  const admin = await startAdminServer({ host: '0.0.0.0', port: 0, registry: new Registry(), readiness: [] });
  t.teardown(() => admin.close());
  const url = `http://127.0.0.1:${admin.address.port}`;
  t.equal((await get(`${url}/metrics`, 'orders:9901')).status, 200);
  t.equal((await get(`${url}/healthz`, 'attacker.example')).status, 200);
});
