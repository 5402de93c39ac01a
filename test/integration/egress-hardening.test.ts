/**
 * Egress against hostile setups: a destination that is no workload (the CA itself), a backend that
 * forges what only a proxy asserts, a destination answering with a status no HTTP client has a
 * class for, a destination holding every pooled connection. Real CA, real sidecars, real TLS.
 */
import t from 'tap';
import { createServer as createTlsServer } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect, type AddressInfo, type Server } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { Agent, request, type Dispatcher } from 'undici';
import { CONNECTIONS_PER_SERVICE } from '../../src/proxy/egress.js';
import { makeCsr, meshSection, ORDERS, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import type { CaServer } from '../../src/ca/server.js';
import { startTestBackend } from '../support/backend.js';
import { enrollWorkload } from '../support/workload.js';

const CA_IDENTITY = `spiffe://${TRUST_DOMAIN}/warden/ca`;
const PAYMENTS = `spiffe://${TRUST_DOMAIN}/ns/payments/sa/api`;

/** A destination server on a free loopback port, closed by the test's teardown. */
async function listening(t: Teardown, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    // An https server also holds its kept-alive connections open; a TLS server's close waits for its sockets.
    (server as Partial<{ closeAllConnections(): void }>).closeAllConnections?.();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** The orders sidecar (in the mesh of `ca`) with an egress to the payments destination at `url`. */
function ordersWithEgressTo(t: Teardown, ca: CaServer, url: string, timeouts?: Record<string, string>) {
  return startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: { port: 0, ...(timeouts ? { timeouts } : {}), services: { payments: { url, spiffe_id: PAYMENTS } } },
  });
}

t.test('egress never reaches the CA: the backend cannot renew the workload identity with a key of its own', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  // Load refuses this destination (test/unit/config/load.test.ts); here it is set after load, as a
  // path other than the YAML might, and the egress identity check must refuse it on its own.
  const orders = await startTestSidecar(
    t,
    'http://127.0.0.1:1',
    {
      ...meshSection(ca, ORDERS),
      egress: { port: 0, services: { 'warden-ca': { url: ca.url, spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/any/sa/workload` } } },
    },
    (config) => {
      const service = config.egress?.services['warden-ca'];
      if (service) service.spiffe_id = CA_IDENTITY;
    },
  );
  const renewedBefore = eventsNamed('warden.ca.renewed').length;
  const csr = await makeCsr({ spiffeId: ORDERS, dnsNames: ['localhost'] });
  const res = await request(`http://127.0.0.1:${orders.sidecar.egress?.port}/warden-ca/v1/renew`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: csr.csrPem }),
  });
  const body = (await res.body.json()) as { code?: string; certificate?: string };
  t.equal(res.statusCode, 502, 'refused');
  t.equal(body.code, 'ERR_EGRESS_PEER_MISMATCH', 'as a destination that is not the one expected');
  t.equal(body.certificate, undefined, 'no certificate for a key the backend chose');
  t.equal(eventsNamed('warden.ca.renewed').length, renewedBefore, 'the CA renewed nothing');
});

t.test('egress is the first hop: what only a proxy asserts never leaves, though the destination trusts the calling sidecar', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The destination believes proxy fields from 127.0.0.1, where the calling sidecars are.
  const payments = await startTestSidecar(t, backend.url, { ...meshSection(ca, PAYMENTS), headers: { trusted_proxies: ['127.0.0.1'] } });
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: { port: 0, services: { payments: { url: `https://localhost:${payments.port}`, spiffe_id: PAYMENTS } } },
  });
  const forged = {
    'x-forwarded-for': '10.9.9.9',
    forwarded: 'for=10.9.9.9',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'admin.example',
    'x-forwarded-user': 'admin',
    'x-forwarded-client-cert': `By=x;URI=spiffe://${TRUST_DOMAIN}/ns/admin/sa/root`,
    'x-real-ip': '10.9.9.9',
    'true-client-ip': '10.9.9.9',
    'client-cert': ':AAAA:',
    'remote-user': 'admin',
    'x-envoy-peer-metadata': 'evil',
    'x-amzn-oidc-identity': 'admin',
  };
  const res = await request(`http://127.0.0.1:${orders.sidecar.egress?.port}/payments/echo`, {
    headers: { ...forged, 'x-app': 'kept', authorization: 'Bearer kept' },
  });
  t.equal(res.statusCode, 200);
  const seen = ((await res.body.json()) as { headers: Record<string, string> }).headers;
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For names the calling sidecar only');
  t.equal(seen['x-forwarded-proto'], 'https', 'X-Forwarded-Proto is the destination sidecar’s own');
  t.equal(seen['x-forwarded-host'], `localhost:${payments.port}`, 'X-Forwarded-Host too');
  t.match(seen['x-forwarded-client-cert'], new RegExp(`^By=.*URI=${ORDERS.replaceAll('.', '\\.')}$`), 'the caller is the orders workload');
  t.notOk('forwarded' in seen, 'the calling workload’s Forwarded dropped, none written');
  t.equal(seen['x-real-ip'], '127.0.0.1', 'X-Real-IP too');
  for (const name of [
    'x-forwarded-user',
    'true-client-ip',
    'client-cert',
    'remote-user',
    'x-envoy-peer-metadata',
    'x-amzn-oidc-identity',
  ]) {
    t.equal(seen[name], undefined, `${name} never leaves egress`);
  }
  t.equal(seen['x-app'], 'kept', 'application headers pass');
  t.equal(seen.authorization, 'Bearer kept', 'and the backend’s credentials for the destination');
});

t.test(
  'a destination status outside 100–599, a transfer coding besides chunked or a repeated single-value field is 502, as from the backend inbound',
  async (t) => {
    const { ca } = await startCaUnderTest(t);
    const destination = await enrollWorkload(ca, PAYMENTS, ['localhost']);
    // The destination's own sidecar would refuse these (upstream.status): this one holds the ID and writes raw HTTP.
    const server = createTlsServer({ key: destination.keyPem, cert: destination.certPem }, (socket) => {
      let head = '';
      socket.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const path = /^GET (\S+) /.exec(head)?.[1] ?? '';
        head = head.slice(end + 4);
        if (path === '/te') socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
        else if (path === '/dup')
          socket.write('HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: https://evil.example/\r\nContent-Length: 2\r\n\r\nok');
        else socket.write(`HTTP/1.1 ${/^\/s(\d{3})$/.exec(path)?.[1] ?? '404'} Odd\r\nContent-Length: 2\r\n\r\nok`);
      });
      socket.on('error', () => {});
    });
    const port = await listening(t, server);
    const orders = await ordersWithEgressTo(t, ca, `https://localhost:${port}`);
    const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
    for (const status of [600, 999]) {
      const res = await request(`${egress}/payments/s${status}`);
      t.equal(res.statusCode, 502, `${status}: 502`);
      t.match(await res.body.text(), /"code":"ERR_UPSTREAM_PROTOCOL"/, `${status}: ERR_UPSTREAM_PROTOCOL`);
    }
    t.ok(
      orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'egress.status'),
      'warden.upstream.failed, rule egress.status',
    );
    const last = await request(`${egress}/payments/s599`);
    t.equal(last.statusCode, 599, '599 passes');
    t.equal(await last.body.text(), 'ok');
    // The backend's HTTP client would read gzip bytes as the content, or pick either Location.
    for (const [path, rule] of [
      ['/te', 'egress.transfer_coding'],
      ['/dup', 'egress.duplicate_location'],
    ] as const) {
      const res = await request(`${egress}/payments${path}`);
      t.equal(res.statusCode, 502, `${path}: 502`);
      t.match(await res.body.text(), /"code":"ERR_UPSTREAM_PROTOCOL"/);
      t.ok(
        orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === rule),
        `rule ${rule}`,
      );
    }
  },
);

t.test('a call queued behind held connections gets 504 within egress.timeouts.headers', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const destination = await enrollWorkload(ca, PAYMENTS, ['localhost']);
  const seen: string[] = [];
  // /hold answers its headers and a byte, then nothing: within egress.timeouts.body, it holds its connection.
  const server = createHttpsServer({ key: destination.keyPem, cert: destination.certPem }, (req, res) => {
    seen.push(req.url ?? '');
    if (req.url !== '/hold') return void res.end('fast');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('.');
  });
  const port = await listening(t, server);
  const orders = await ordersWithEgressTo(t, ca, `https://localhost:${port}`, { headers: '1s', body: '5m' });
  const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
  const backend = new Agent({ connections: CONNECTIONS_PER_SERVICE + 4 });
  t.teardown(() => backend.destroy());
  const held: Dispatcher.ResponseData[] = await Promise.all(
    Array.from({ length: CONNECTIONS_PER_SERVICE }, () => request(`${egress}/payments/hold`, { dispatcher: backend })),
  );
  t.ok(
    held.every((r) => r.statusCode === 200),
    `${CONNECTIONS_PER_SERVICE} calls hold every connection to the destination`,
  );
  // The client's own headers timeout only keeps the build before the fix from waiting for good.
  const queued = (method: 'GET' | 'POST') =>
    request(`${egress}/payments/fast`, { dispatcher: backend, method, headersTimeout: 30_000, ...(method === 'POST' ? { body: 'x' } : {}) })
      .then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
      .catch((err: Error) => ({ status: 0, body: err.message }));
  for (const method of ['GET', 'POST'] as const) {
    const r = await queued(method);
    t.equal(r.status, 504, `${method} queued behind them: 504`);
    t.match(r.body, /"code":"ERR_UPSTREAM_TIMEOUT"/, `${method}: ERR_UPSTREAM_TIMEOUT`);
  }
  t.equal(
    orders.events.filter((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'egress.timeouts.headers').length,
    2,
    'warden.upstream.failed, rule egress.timeouts.headers, once each',
  );
  t.notOk(seen.includes('/fast'), 'the destination never saw them');
  for (const r of held) r.body.destroy();
  // The 64 connections close as egress notices each caller gone; until one has, a call may still
  // time out in the queue (a loaded host): asked again, a bounded number of times.
  let after = { status: 0, body: '' };
  for (let attempt = 0; attempt < 20 && after.status !== 200; attempt++) {
    const r = await request(`${egress}/payments/fast`, { dispatcher: backend });
    after = { status: r.statusCode, body: await r.body.text() };
  }
  t.equal(after.status, 200, 'once connections free, calls go through');
  t.equal(after.body, 'fast');
  t.equal(seen.filter((u) => u === '/fast').length, 1, 'and the calls that timed out in the queue were never sent');
});

t.test('a destination whose certificate expired is not used again: no kept-alive connection, no resumed session', async (t) => {
  // The caller's CA keeps long lifetimes; the destination's certificate (same root) lives 4 s.
  const { ca } = await startCaUnderTest(t);
  const { ca: shortLived } = await startCaUnderTest(t, { certificates: { lifetime: '4s', backdate: '0s' } });
  const destination = await enrollWorkload(shortLived, PAYMENTS, ['localhost']);
  const notAfter = Date.parse(new X509Certificate(destination.certPem).validTo);
  const server = createHttpsServer({ key: destination.keyPem, cert: destination.certPem }, (_req, res) => res.end('ok'));
  const port = await listening(t, server);
  const orders = await ordersWithEgressTo(t, ca, `https://localhost:${port}`);
  const call = async () => {
    const res = await request(`http://127.0.0.1:${orders.sidecar.egress?.port}/payments/x`);
    await res.body.dump();
    return res.statusCode;
  };
  t.equal(await call(), 200, 'served while the destination certificate is valid');
  t.equal(await call(), 200, 'again, on the kept-alive connection');
  // Past its expiry (the wait is for the certificate, not a measured time).
  while (Date.now() < notAfter + 1500) await new Promise((r) => setTimeout(r, 250));
  t.equal(await call(), 502, 'refused once it has expired (the kept-alive connection closed, no session resumed)');
  t.equal(await call(), 502, 'and after');
});

t.test(
  'connections retire before the destination certificate expires: calls across it are answered, none is sent over an expired connection',
  async (t) => {
    // The destination's certificate lives 4 s (a retirement margin of 0.4 s) and is renewed early.
    const { ca } = await startCaUnderTest(t);
    const { ca: shortLived } = await startCaUnderTest(t, { certificates: { lifetime: '4s', backdate: '0s' } });
    const setup = await enrollWorkload(shortLived, PAYMENTS, ['localhost']);
    let serving = 0;
    /** Per connection, the notAfter of the certificate the destination served on it. */
    const notAfterOf = new Map<object, number>();
    const arrivals: { notAfter: number; at: number }[] = [];
    const server = createHttpsServer({ key: setup.keyPem, cert: setup.certPem }, (req, res) => {
      arrivals.push({ notAfter: notAfterOf.get(req.socket) ?? 0, at: Date.now() });
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms'));
      setTimeout(() => res.end('ok'), ms);
    });
    server.on('secureConnection', (socket: object) => notAfterOf.set(socket, serving));
    const port = await listening(t, server);
    // Two services, one destination: the slow call has a pool (and so a connection) of its own.
    const url = `https://localhost:${port}`;
    const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
      ...meshSection(ca, ORDERS),
      egress: { port: 0, services: { payments: { url, spiffe_id: PAYMENTS }, 'payments-slow': { url, spiffe_id: PAYMENTS } } },
    });
    const egress = `http://127.0.0.1:${orders.sidecar.egress?.port}`;
    const serve = async () => {
      const w = await enrollWorkload(shortLived, PAYMENTS, ['localhost']);
      server.setSecureContext({ key: w.keyPem, cert: w.certPem });
      return (serving = Date.parse(new X509Certificate(w.certPem).validTo));
    };
    // Its lifetime starts now, the sidecars being up.
    const expired = await serve();
    const call = async (path: string) => {
      const res = await request(`${egress}${path}`, { method: 'POST', body: 'charge=1' });
      await res.body.dump();
      return res.statusCode;
    };
    t.equal(await call('/payments-slow/x?ms=0'), 200, 'the slow service’s connection opens while the first certificate is valid');
    const until = (time: number) => new Promise((r) => setTimeout(r, Math.max(0, time - Date.now())));
    // Renewed at half-life (validity is in whole seconds: the renewed one ends 2 s after the first),
    // the load's connections open on the first certificate.
    const renewal = until(expired - 1950).then(serve);
    // Begun before the margin on the connection of the first certificate, answered after it expired.
    const slow = until(expired - 700).then(() => call('/payments-slow/x?ms=1200'));
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < expired + 1000) statuses.push(await call('/payments/x?ms=150'));
      }),
    );
    await renewal;
    t.equal(await slow, 200, 'a call in flight across the expiry, begun before the margin, is answered');
    const failed = statuses.filter((s) => s !== 200);
    t.same(failed, [], `every call of the load across the expiry answered 200 (${statuses.length} calls)`);
    const late = arrivals.filter((a) => a.at >= a.notAfter);
    t.same(late, [], 'no call reached the destination over a connection whose certificate had expired');
    t.ok(
      arrivals.some((a) => a.notAfter > expired && a.at > expired),
      'calls after the expiry went over new connections, with the renewed certificate',
    );
  },
);

t.test('a malformed call pipelined behind a valid one: the valid one is answered, then the malformed one 400', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const destination = await enrollWorkload(ca, PAYMENTS, ['localhost']);
  const seen: string[] = [];
  const server = createHttpsServer({ key: destination.keyPem, cert: destination.certPem }, (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    setTimeout(() => res.end('slow'), 300);
  });
  const port = await listening(t, server);
  const orders = await ordersWithEgressTo(t, ca, `https://localhost:${port}`);
  const socket = connect(orders.sidecar.egress?.port ?? 0, '127.0.0.1');
  t.teardown(() => socket.destroy());
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(
    'GET /payments/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' +
      'POST /payments/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  );
  const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
  t.ok(closed, 'the connection then closes');
  const statuses = text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
  t.same(statuses, ['HTTP/1.1 200', 'HTTP/1.1 400'], `the valid call answered first, then the malformed one (${statuses.join(', ')})`);
  t.match(text, /^HTTP\/1\.1 200[^]*\r\n\r\nslowHTTP\/1\.1 400/, 'the destination’s answer whole, before the refusal');
  t.same(seen, ['GET /slow'], 'the malformed call never reached the destination');
  t.notOk(
    orders.events.some((e) => e.name === 'warden.upstream.failed'),
    'and no upstream failure is recorded for the malformed call (the rescue answered it)',
  );

  // A call refused at dispatch (an unknown service), then its body malformed: queued behind the
  // valid call's answer, it goes out after it; the connection was ended, both answers dropped.
  const second = connect(orders.sidecar.egress?.port ?? 0, '127.0.0.1');
  t.teardown(() => second.destroy());
  let text2 = '';
  second.on('data', (d: Buffer) => (text2 += d.toString('latin1')));
  second.on('error', () => undefined);
  second.write(
    'GET /payments/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' +
      'POST /nosuch/x HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  );
  const closed2 = await Promise.race([once(second, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), 5000))]);
  t.ok(closed2, 'the connection then closes');
  t.same(
    text2.match(/HTTP\/1\.1 \d{3}/g) ?? [],
    ['HTTP/1.1 200', 'HTTP/1.1 404'],
    'a call refused at dispatch whose body is malformed: the valid call answered, then the refusal',
  );
});

/** What a raw connection to `port` reads after sending `text`, until `statuses` responses have started or it closes (3 s at most). */
async function rawExchange(port: number, text: string, statuses: number): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let got = '';
  socket.write(text);
  await new Promise<void>((done) => {
    const timer = setTimeout(done, 3000);
    const check = () => {
      const heads = got.match(/HTTP\/1\.1 \d{3}[^]*?\r\n\r\n/g) ?? [];
      if (heads.length >= statuses && /\r\n\r\n[^]*ok$|304[^]*\r\n\r\n$/.test(got)) setTimeout(done, 100);
    };
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      check();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      done();
    });
  });
  socket.destroy();
  return got;
}

// The twentieth red-team round (adversarial.md 301 and 307 again).
t.test(
  'egress: redirects stay on the destination or off this machine, a 304 with a length keeps the connection, framing as inbound',
  async (t) => {
    const { ca } = await startCaUnderTest(t);
    const destination = await enrollWorkload(ca, PAYMENTS, ['localhost']);
    // A name other than localhost's that /etc/hosts maps to 127.0.0.1 (`vm` here), if any.
    const hosts = await import('node:fs').then((fs) => (fs.existsSync('/etc/hosts') ? fs.readFileSync('/etc/hosts', 'utf8') : ''));
    const loopbackName = hosts
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim().split(/\s+/))
      .filter(([address]) => address?.startsWith('127.') === true)
      .flatMap(([, ...names]) => names)
      .find((name) => name !== 'localhost' && !name.endsWith('.localhost'));
    const received: string[] = [];
    const server = createTlsServer({ key: destination.keyPem, cert: destination.certPem }, (socket) => {
      let head = '';
      socket.on('data', (d: Buffer) => {
        head += d.toString('latin1');
        for (let end = head.indexOf('\r\n\r\n'); end >= 0; end = head.indexOf('\r\n\r\n')) {
          const path = /^\S+ (\S+) /.exec(head)?.[1] ?? '';
          received.push(head.slice(0, end));
          head = head.slice(end + 4);
          if (path === '/r')
            socket.write('HTTP/1.1 307 Temporary Redirect\r\nLocation: /.//ledger/admin/delete\r\nContent-Length: 0\r\n\r\n');
          else if (path === '/vm')
            socket.write(`HTTP/1.1 302 Found\r\nLocation: http://${loopbackName ?? 'x'}:9901/metrics\r\nContent-Length: 0\r\n\r\n`);
          else if (path === '/etag') socket.write('HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n');
          else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
      socket.on('error', () => {});
    });
    const port = await listening(t, server);
    const orders = await ordersWithEgressTo(t, ca, `https://localhost:${port}`);
    const egressPort = orders.sidecar.egress?.port ?? 0;

    // Proxy form: `//ledger/admin/delete` alone is a network-path reference, to the service ledger.
    const proxyForm = await rawExchange(egressPort, 'GET http://payments/r HTTP/1.1\r\nHost: payments\r\nConnection: close\r\n\r\n', 1);
    t.match(
      proxyForm,
      /^HTTP\/1\.1 307[^]*\r\nlocation: http:\/\/payments\/\/ledger\/admin\/delete\r\n/i,
      'proxy form: absolute, on payments',
    );
    const pathForm = await request(`http://127.0.0.1:${egressPort}/payments/r`);
    t.equal(pathForm.headers.location, '/payments//ledger/admin/delete', 'path form: under the service');
    await pathForm.body.dump();

    if (loopbackName === undefined)
      t.pass('a redirect to a name of this machine', { skip: 'no name other than localhost maps to 127.0.0.1 in /etc/hosts here' });
    else {
      const res = await request(`http://127.0.0.1:${egressPort}/payments/vm`);
      t.equal(res.statusCode, 502, `a redirect to ${loopbackName} (127.0.0.1 in /etc/hosts): 502`);
      t.match(await res.body.text(), /"code":"ERR_UPSTREAM_PROTOCOL"/);
      t.ok(
        orders.events.some((e) => e.name === 'warden.upstream.failed' && e['warden.rule'] === 'egress.redirect'),
        'rule egress.redirect',
      );
    }

    // A 304 naming the 200's length, and a call pipelined behind it on the same connection.
    const both = await rawExchange(
      egressPort,
      'GET /payments/etag HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: "v1"\r\n\r\nGET /payments/ok HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
      2,
    );
    t.match(
      both,
      /^HTTP\/1\.1 304 [^]*etag: "v1"[^]*\r\n\r\nHTTP\/1\.1 200 [^]*\r\n\r\nok$/i,
      'the 304, then the call behind it, on one connection',
    );
    t.notMatch(both.split('\r\n\r\n')[0] ?? '', /content-length/i, 'the 304 without the 200’s Content-Length');
    t.notOk(
      orders.events.some((e) => e.name === 'warden.upstream.failed' && String(e['url.path']).includes('etag')),
      'no failure recorded for the 304',
    );

    // Framing the inbound listener refuses.
    const before = received.length;
    for (const [text, rule] of [
      [
        'POST /payments/te HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        'framing.te_coding',
      ],
      [
        'GET /payments/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n',
        'framing.duplicate_authorization',
      ],
      [
        'GET /payments/c HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\n\r\n',
        'framing.duplicate_content_type',
      ],
    ] as const) {
      const answer = await rawExchange(egressPort, text, 1);
      t.match(answer, /^HTTP\/1\.1 400 [^]*"code":"ERR_REQUEST_AMBIGUOUS"/, `${rule}: 400 ERR_REQUEST_AMBIGUOUS`);
      t.match(answer, /connection: close/i, `${rule}: and the connection closes`);
      t.ok(
        orders.events.some((e) => e['warden.rule'] === rule),
        `${rule}: recorded`,
      );
    }
    t.equal(received.length, before, 'none of them reached the destination');
  },
);
