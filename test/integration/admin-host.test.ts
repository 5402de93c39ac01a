/**
 * DNS rebinding: the admin listener on loopback answers only requests for a loopback Host, so a web
 * page whose name was rebound to 127.0.0.1 cannot read the console or revoke tokens. Bound elsewhere
 * (a pod IP, for Prometheus), it answers IP addresses, localhost and the names it is given.
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
  // Each refusal is a security event, as on the data path (they raised none).
  const denied = s.events.filter((e) => e.name === 'warden.access.denied');
  t.ok(
    denied.some((e) => e['warden.code'] === 'ERR_ADMIN_HOST_REFUSED' && e['url.path'] === '/tokens/revoke'),
    'a rebinding request raises warden.access.denied',
  );
  t.equal(denied.filter((e) => e['warden.code'] === 'ERR_ADMIN_HOST_REFUSED').length, 12, 'one per refusal');
  const crossSite = await curl(['-m', '5', '-H', 'Sec-Fetch-Site: cross-site', `${s.adminUrl}/console/status`]);
  t.equal(crossSite.status, 403);
  t.ok(
    s.events.some((e) => e.name === 'warden.access.denied' && e['warden.code'] === 'ERR_ADMIN_BROWSER_REFUSED'),
    "a browser's cross-site request too",
  );
});

t.test('admin listener bound to all interfaces: IP addresses, localhost and the names listed are served, other names 421', async (t) => {
  // A published container port or `kubectl port-forward` puts such a listener within a browser's
  // reach: a rebinding page sends its own name (docs/adversarial.md 186).
  const open = await startAdminServer({ host: '0.0.0.0', port: 0, registry: new Registry(), readiness: [] });
  t.teardown(() => open.close());
  const url = `http://127.0.0.1:${open.address.port}`;
  for (const host of ['attacker.example', 'attacker.example:9901', 'orders:9901', 'rebind.10.1.2.3.nip.io', 'localhost.attacker.example']) {
    const r = await get(`${url}/metrics`, host);
    t.equal(r.status, 421, `Host ${host}: 421`);
    t.match(r.body, /"code":"ERR_ADMIN_HOST_REFUSED".*listeners\.admin\.hosts/, 'the problem names the setting');
  }
  for (const path of ['/console/events', '/console/status', '/']) {
    t.equal((await get(`${url}${path}`, 'attacker.example')).status, 421, `${path} for a foreign name: 421`);
  }
  for (const host of ['10.1.2.3:9901', '10.1.2.3', '[fd00::1]:9901', '127.0.0.1', 'localhost:9901', 'warden.localhost']) {
    t.equal((await get(`${url}/metrics`, host)).status, 200, `Host ${host}: 200 (Prometheus and the kubelet use the pod's address)`);
  }

  const named = await startAdminServer({ host: '0.0.0.0', port: 0, hosts: ['orders'], registry: new Registry(), readiness: [] });
  t.teardown(() => named.close());
  const namedUrl = `http://127.0.0.1:${named.address.port}`;
  t.equal((await get(`${namedUrl}/metrics`, 'orders:9901')).status, 200, 'a listed name (a Compose service Prometheus scrapes)');
  t.equal((await get(`${namedUrl}/metrics`, 'ORDERS.')).status, 200, 'in any case, with a trailing dot');
  t.equal((await get(`${namedUrl}/metrics`, 'inventory:9901')).status, 421, 'a name not listed');
});

t.test('the console refuses cross-origin browser requests: a page elsewhere could hold every event-feed place', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const host = `localhost:${new URL(s.adminUrl).port}`;
  for (const path of ['/console/events', '/console/status', '/']) {
    for (const fields of [
      ['-H', 'Sec-Fetch-Site: cross-site'],
      ['-H', 'Sec-Fetch-Site: same-site'],
      ['-H', 'Origin: https://evil.example'],
      ['-H', 'Origin: null'],
    ]) {
      const r = await get(`${s.adminUrl}${path}`, host, ...fields);
      t.equal(r.status, 403, `${path} with ${fields[1]}: 403`);
      t.match(r.body, /"code":"ERR_ADMIN_BROWSER_REFUSED"/);
    }
  }
  // The console page's own requests, and the page opened from the address bar.
  const own = await get(`${s.adminUrl}/console/status`, host, '-H', 'Sec-Fetch-Site: same-origin', '-H', `Origin: http://${host}`);
  t.equal(own.status, 200, 'same-origin: served');
  t.equal((await get(`${s.adminUrl}/`, host, '-H', 'Sec-Fetch-Site: none')).status, 200, 'typed in the address bar: served');
  t.equal((await get(`${s.adminUrl}/metrics`, host, '-H', 'Sec-Fetch-Site: cross-site')).status, 200, '/metrics is not the console');
});

t.test(
  'console feeds: 4 from one network, all of loopback one; past them 503 problem+json (not plain text) and warden.traffic.shed',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url);
    const { get: httpGet } = await import('node:http');
    const open: import('node:http').ClientRequest[] = [];
    t.teardown(() => open.forEach((r) => r.destroy()));
    const feed = (localAddress: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const req = httpGet(`${s.adminUrl}/console/events`, { localAddress }, (res) => {
          if (res.statusCode === 200) return resolve({ status: 200, type: String(res.headers['content-type']), body: '' });
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
        });
        req.once('error', reject);
        open.push(req);
      });
    // One local user binding 127.0.0.2, .3, .4, .5 held all 16 places (4 from each), and a refusal raised no event.
    for (let i = 0; i < 4; i++) t.equal((await feed(`127.0.0.${2 + i}`)).status, 200, `client ${i + 1} from 127.0.0.${2 + i}`);
    for (const address of ['127.0.0.9', '127.0.0.2']) {
      const refused = await feed(address);
      t.equal(refused.status, 503, `a fifth from loopback (${address}): 503`);
      t.equal(refused.type, 'application/problem+json');
      t.match(JSON.parse(refused.body), { code: 'ERR_OVERLOADED', detail: /At most 4 console clients from one address/ });
    }
    const shed = s.events.filter((e) => e.name === 'warden.traffic.shed');
    t.match(
      shed,
      [
        {
          'client.address': '127.0.0.9',
          'warden.code': 'ERR_OVERLOADED',
          'warden.rule': 'console.clients',
          'http.response.status_code': 503,
        },
        { 'client.address': '127.0.0.2', 'warden.rule': 'console.clients' },
      ],
      'each refusal raises warden.traffic.shed (docs/errors.md)',
    );
    t.equal(shed.length, 2);
  },
);

t.test('the admin listener bounds its connections, in all and per address, and closes a silent one', async (t) => {
  // Unbounded, 15 000 idle connections took ~96 MiB, and past the descriptor limit the inbound
  // listener and CRL refreshes failed too.
  const { connect } = await import('node:net');
  const limits = { maxConnections: 6, maxConnectionsPerAddress: 3, headersTimeoutMs: 1000, requestTimeoutMs: 1000 };
  const startAdmin = async () => {
    const admin = await startAdminServer({ host: '127.0.0.1', port: 0, registry: new Registry(), readiness: [], limits });
    t.teardown(() => admin.close());
    return admin;
  };
  const sockets: import('node:net').Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  /** Connects from `localAddress`, sends nothing; resolves with how soon the server closed it (or 'open' after `ms`). */
  const silent = (port: number, localAddress: string, ms: number) =>
    new Promise<number | 'open'>((resolve) => {
      const started = Date.now();
      const socket = connect({ host: '127.0.0.1', port, localAddress });
      sockets.push(socket);
      socket.on('error', () => undefined);
      // Read what comes: Node's headers-timeout check answers a silent connection 408 before closing
      // it (the socket timeout closes it without a word), and unread bytes hold back 'close'.
      socket.resume();
      socket.once('close', () => resolve(Date.now() - started));
      setTimeout(() => resolve('open'), ms).unref();
    });
  const pause = () => new Promise((r) => setTimeout(r, 200));

  // Silent connections are closed after the headers timeout: their address's places are free again.
  // At its address's bound a newcomer is served and that address's oldest connection makes room:
  // refusing it let one client on an address (127.0.0.1: the backend's) shut out every other.
  const quiet = await startAdmin();
  const first = [1, 2, 3].map(() => silent(quiet.address.port, '127.0.0.6', 10_000)); // long: a loaded machine's stall must not read as 'open'
  await pause();
  t.equal(await silent(quiet.address.port, '127.0.0.6', 300), 'open', 'a fourth from one address is kept');
  const replaced = await first[0];
  t.ok(typeof replaced === 'number' && replaced < 1000, `the address's oldest connection made room (closed after ${replaced} ms)`);
  await new Promise((r) => setTimeout(r, 2000)); // the headers timeout (1 s) and a margin
  const timedOut = await first[1];
  t.ok(
    typeof timedOut === 'number' && timedOut >= 900 && timedOut < 2500,
    `the silent ones are closed after the headers timeout (${timedOut} ms)`,
  );

  const admin = await startAdmin();
  const held = [1, 2, 3].map(() => silent(admin.address.port, '127.0.0.2', 4000));
  void [1, 2, 3].map(() => silent(admin.address.port, '127.0.0.3', 4000));
  await pause();
  // At the listener's bound the newcomer is served and the oldest idle connection makes room:
  // refusing it let a few addresses' silent connections shut out probes and scrapes.
  const probe = await curl(['-m', '5', '--interface', '127.0.0.4', `http://127.0.0.1:${admin.address.port}/healthz`]);
  t.equal(probe.status, 200, 'past the listener-wide bound, a probe from another address is served');
  const oldest = await held[0];
  t.ok(typeof oldest === 'number' && oldest < 1000, `the oldest silent connection made room for it (closed after ${oldest} ms)`);
  const healthz = await curl(['-m', '5', `http://127.0.0.1:${admin.address.port}/healthz`]);
  t.equal(healthz.status, 200, 'then served again');
});
