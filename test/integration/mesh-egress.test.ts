/**
 * Mesh mode end to end, egress: the backend calls another sidecar over mTLS through its own
 * sidecar, with the destination identity verified (split from mesh.test.ts so tap runs it beside).
 */
import t from 'tap';
import { once } from 'node:events';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { request } from 'undici';
import { type CaServer } from '../../src/ca/server.js';
import { startTestBackend } from '../support/backend.js';
import { meshSection, startRestartableCa, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const ORDERS = id('ns/shop/sa/orders');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const startCa = startRestartableCa;

function meshConfig(ca: CaServer, extra: Record<string, unknown> = {}) {
  return meshSection(ca, ORDERS, extra);
}

t.test('egress: the backend calls another sidecar over mTLS, with the destination identity verified', async (t) => {
  const { request: httpRequest } = await import('node:http');
  const ca = await startCa(t);
  const PAYMENTS = id('ns/payments/sa/api');
  const paymentsBackend = await startTestBackend();
  t.teardown(() => paymentsBackend.close());
  const payments = await startTestSidecar(t, paymentsBackend.url, {
    mesh: {
      ...meshConfig(ca.server).mesh,
      spiffe_id: PAYMENTS,
      bootstrap_token: ca.server.createToken({ spiffe_id: PAYMENTS, dns_names: ['localhost'] }).token,
    },
    peers: { allow: [ORDERS] },
  });
  // Accepts TCP and never answers the TLS handshake.
  const tarpitSockets: Socket[] = [];
  const tarpitServer = createNetServer((s) => void tarpitSockets.push(s)).listen(0, '127.0.0.1');
  await once(tarpitServer, 'listening');
  const tarpit = tarpitServer.address() as AddressInfo;
  t.teardown(() => {
    for (const s of tarpitSockets) s.destroy();
    tarpitServer.close();
  });
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshConfig(ca.server),
    egress: {
      port: 0,
      services: {
        payments: { url: `https://localhost:${payments.port}`, spiffe_id: PAYMENTS },
        impostor: { url: `https://localhost:${payments.port}`, spiffe_id: id('ns/payments/sa/other') },
        tarpit: { url: `https://127.0.0.1:${tarpit.port}`, spiffe_id: PAYMENTS },
      },
      timeouts: { connect: '500ms', headers: '1s', body: '1s' },
    },
  });
  const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
  const viaPath = await request(`${egress}/payments/echo?x=1`, {
    method: 'POST',
    body: 'hello',
    headers: { 'x-warden-internal-token': 'secret', 'x-app': 'kept' },
  });
  t.equal(viaPath.statusCode, 200, 'path form');
  const seen = (await viaPath.body.json()) as { url: string; bodyBytes: number; headers: Record<string, string> };
  t.equal(seen.url, '/echo?x=1');
  t.equal(seen.bodyBytes, 5, 'the body streams through');
  t.match(seen.headers['x-forwarded-client-cert'], `URI=${ORDERS}`, 'the destination saw the caller identity');
  t.equal(seen.headers['x-warden-internal-token'], undefined, 'internal headers never leave through egress');
  t.equal(seen.headers['x-app'], 'kept', 'application headers pass');

  // node:http sends a Connection header as given (undici manages its own).
  const viaProxy = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: orders.sidecar.egress?.port,
        path: 'http://payments/echo',
        method: 'GET',
        headers: { connection: 'keep-alive, x-hop', 'x-hop': '1' },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
    req.end();
  });
  t.equal(viaProxy.status, 200, 'HTTP proxy form (absolute URI)');
  t.equal(
    (JSON.parse(viaProxy.body) as { headers: Record<string, string> }).headers['x-hop'],
    undefined,
    'fields the Connection header names do not leave',
  );

  const impostor = await request(`${egress}/impostor/echo`);
  t.equal(impostor.statusCode, 502, 'a destination with another SPIFFE ID is refused');
  t.match(await impostor.body.json(), { code: 'ERR_EGRESS_PEER_MISMATCH' });
  const unknown = await request(`${egress}/nowhere/echo`);
  t.equal(unknown.statusCode, 404);
  t.match(await unknown.body.json(), { code: 'ERR_EGRESS_UNKNOWN_SERVICE' });
  // An https:// URL through HTTP_PROXY becomes a CONNECT: refused with a problem that says what to send.
  // node:http hands any answer to a CONNECT to 'connect' (whatever its status), the body as the socket's data.
  const tunnel = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: orders.sidecar.egress?.port, method: 'CONNECT', path: 'payments:443' });
    req.once('connect', (res, socket, head: Buffer) => {
      let body = head.toString();
      socket.on('data', (d: Buffer) => (body += d.toString()));
      socket.on('close', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
  t.equal(tunnel.status, 400, 'CONNECT: 400, not a silently closed connection');
  t.match(tunnel.body, /"code":"ERR_PATH_INVALID".*plain http:\/\//, 'the problem names what to send instead');

  // Only the backend may call egress: a page in a browser on this machine reaches 127.0.0.1 too.
  const raw = (path: string, headers: Record<string, string>, method = 'GET') =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: orders.sidecar.egress?.port, path, method, headers, setHost: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.once('error', reject);
      req.end(method === 'POST' ? 'amount=1000' : undefined);
    });
  const port = orders.sidecar.egress?.port ?? 0;
  const refused: { what: string; status: number; code: string; path: string; method?: string; headers: Record<string, string> }[] = [
    // DNS rebinding: the page's own name now resolves to 127.0.0.1; to the browser it is same-origin.
    {
      what: 'rebinding Host',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: '/payments/echo',
      headers: { host: `attacker.example:${port}` },
    },
    {
      what: 'rebinding Host, same-origin fetch',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: '/payments/echo',
      headers: { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}`, 'sec-fetch-site': 'same-origin' },
    },
    {
      what: 'proxy form, Host of another name',
      status: 421,
      code: 'ERR_EGRESS_HOST_REFUSED',
      path: 'http://payments/echo',
      headers: { host: 'attacker.example' },
    },
    // A cross-site form or no-cors fetch to http://127.0.0.1:<egress>/…: a loopback Host, but a browser's fields.
    {
      what: 'cross-site no-cors POST',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/charge',
      method: 'POST',
      headers: {
        host: `127.0.0.1:${port}`,
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
        'sec-fetch-mode': 'no-cors',
        'content-type': 'text/plain',
        'content-length': '11',
      },
    },
    {
      what: 'Origin alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `localhost:${port}`, origin: 'null' },
    },
    {
      what: 'Sec-Fetch-Site alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `127.0.0.1:${port}`, 'sec-fetch-site': 'none' },
    },
    {
      what: 'Sec-Fetch-Dest alone',
      status: 403,
      code: 'ERR_EGRESS_BROWSER_REFUSED',
      path: '/payments/echo',
      headers: { host: `127.0.0.1:${port}`, 'sec-fetch-dest': 'document' },
    },
  ];
  for (const r of refused) {
    const answer = await raw(r.path, r.headers, r.method);
    t.equal(answer.status, r.status, `${r.what}: ${r.status}`);
    t.match(answer.body, new RegExp(`^\\{.*"status":${r.status},"code":"${r.code}"`), `${r.what}: problem+json ${r.code}`);
  }
  t.ok(
    orders.events.some((e) => e.name === 'warden.access.denied' && e['warden.code'] === 'ERR_EGRESS_BROWSER_REFUSED'),
    'a browser request to egress is a security event',
  );
  t.equal(paymentsBackend.requests.length, 2, 'only the verified calls reached the destination backend');
  // Node's own fetch sends `sec-fetch-mode: cors` on every request: a backend's call, not a browser's.
  const fetched = await fetch(`http://127.0.0.1:${port}/payments/echo`);
  t.equal(fetched.status, 200, "a backend calling egress with Node's fetch is served");
  await fetched.body?.cancel();
  t.equal(paymentsBackend.requests.length, 3, 'and reaches the destination');
  // A destination's redirect out of itself is not followed with this workload's identity: back into
  // egress (another service), or anywhere on loopback (the admin listener).
  for (const to of [`http://127.0.0.1:${port}/other/admin/delete`, 'http://localhost:9901/tokens/revoke', `//127.0.0.1:${port}/x`]) {
    const redirected = await request(`${egress}/payments/redirect?to=${encodeURIComponent(to)}`);
    t.equal(redirected.statusCode, 502, `307 to ${to}: refused`);
    t.match(await redirected.body.json(), { code: 'ERR_UPSTREAM_PROTOCOL', detail: /redirect out of the destination/ });
  }
  const within = await request(`${egress}/payments/redirect?to=${encodeURIComponent('/login?next=1')}`);
  t.equal(within.statusCode, 307);
  t.equal(within.headers.location, '/payments/login?next=1', 'a redirect inside the destination stays inside it (path form)');
  await within.body.dump();
  // By address: a name is resolved first, and idp.example resolves nowhere (egress-redirect.test.ts).
  const away = await request(`${egress}/payments/redirect?to=${encodeURIComponent('https://192.0.2.7/authorize')}`);
  t.equal(away.headers.location, 'https://192.0.2.7/authorize', 'one to another host passes (egress plays no part in it)');
  await away.body.dump();
  t.equal(paymentsBackend.requests.length, 8, "the redirects were the destination backend's answers");
  // The proxy form's user name and password are not logged with the refusal (url.path).
  const withUserinfo = await raw('http://user:S3cretEg@payments/echo', { host: 'evil.example' });
  t.equal(withUserinfo.status, 421, 'a proxy-form target with userinfo and a foreign Host: refused');
  t.notOk(JSON.stringify([orders.events, orders.logs]).includes('S3cretEg'), 'its password is in no event or log line');
  t.ok(
    orders.events.some((e) => e['url.path'] === 'http://***@payments/echo'),
    'the event names the target without it',
  );
  const proxyHost = await raw('http://payments/echo', { host: 'payments' });
  t.equal(proxyHost.status, 200, 'proxy form with the Host HTTP clients set from the URL: served');
  const localhost = await raw('/payments/echo', { host: `localhost:${port}` });
  t.equal(localhost.status, 200, 'path form, Host localhost: served');
  t.equal(paymentsBackend.requests.length, 10);

  // A destination that never answers holds the backend's call no longer than egress.timeouts (undici's own
  // defaults: headers and body 300 s, connect 10 s; the payments sidecar's upstream headers timeout is 30 s).
  const egressTimeout = (rule: string) => orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === rule);
  const silent = await request(`${egress}/payments/hang`);
  t.equal(silent.statusCode, 504, 'no response headers within egress.timeouts.headers: 504');
  t.match(await silent.body.json(), { code: 'ERR_UPSTREAM_TIMEOUT' });
  t.ok(egressTimeout('egress.timeouts.headers'), 'from egress, whose event names its timeout');
  const stalled = await request(`${egress}/payments/stall-body`);
  t.equal(stalled.statusCode, 200);
  await t.rejects(stalled.body.text(), 'a response body that stops for egress.timeouts.body is cut, not left open');
  const handshake = await request(`${egress}/tarpit/echo`);
  t.equal(handshake.statusCode, 504, 'no TLS handshake within egress.timeouts.connect: 504');
  t.match(await handshake.body.json(), { code: 'ERR_UPSTREAM_TIMEOUT' });
  t.ok(egressTimeout('egress.timeouts.connect'), 'the event names the connect timeout');
  // The event loop stalled past both deadlines (connect 500 ms from the connection's start, headers
  // 1 s from dispatch; a loaded CI host): undici's connect timer only queued its verdict
  // (setImmediate), so the headers timer answered first and blamed egress.timeouts.headers.
  const connectTimeouts = () => orders.events.filter((e) => e['warden.rule'] === 'egress.timeouts.connect').length;
  const [connectsBefore, tarpitBefore] = [connectTimeouts(), tarpitSockets.length];
  const blocked = request(`${egress}/tarpit/echo`);
  while (tarpitSockets.length === tarpitBefore) await sleep(5);
  const stallUntil = Date.now() + 1200;
  while (Date.now() < stallUntil); // the stall: both timers expire in one turn of the loop
  const afterStall = await blocked;
  t.equal(afterStall.statusCode, 504, 'a stall past both deadlines: 504');
  await afterStall.body.dump();
  t.equal(connectTimeouts(), connectsBefore + 1, 'and the event still names the connect timeout, which expired first');
  t.equal(paymentsBackend.requests.length, 12);

  // A revoked destination is refused once the CRL arrives, though egress holds a kept-alive connection to it.
  await ca.server.revoke({ spiffe_id: PAYMENTS });
  await sleep(1200); // refresh.crl is 500 ms
  const revoked = await request(`${egress}/payments/echo`);
  t.equal(revoked.statusCode, 502, 'a revoked destination is refused');
  t.match(await revoked.body.json(), { code: 'ERR_EGRESS_PEER_MISMATCH' });
  t.equal(paymentsBackend.requests.length, 12, 'and never reached');
});
