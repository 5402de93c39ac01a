/**
 * Egress in proxy form naming the egress listener itself: a backend with HTTP_PROXY set that uses the
 * documented path form (`http://127.0.0.1:15001/payments/…`) sends `GET http://127.0.0.1:15001/payments/…`
 * to the proxy (curl, Python's urllib and requests, undici's ProxyAgent: 127.0.0.1 is proxied unless
 * no_proxy says otherwise). Egress took the target's host as the service: 404
 * ERR_EGRESS_UNKNOWN_SERVICE naming the very service asked for (red-team round 27, F2). A target
 * whose authority is the listener (a loopback host, the egress port) is now the path form.
 */
import { request as httpRequest } from 'node:http';
import t from 'tap';
import { ProxyAgent, request } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { meshSection, ORDERS, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const PAYMENTS = `spiffe://${TRUST_DOMAIN}/ns/payments/sa/api`;

t.test('absolute-form targets naming the egress listener are the path form; every refusal stays', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const payments = await startTestSidecar(t, backend.url, meshSection(ca, PAYMENTS));
  const orders = await startTestSidecar(t, 'http://127.0.0.1:1', {
    ...meshSection(ca, ORDERS),
    egress: { port: 0, services: { payments: { url: `https://localhost:${payments.port}`, spiffe_id: PAYMENTS } } },
  });
  const port = orders.sidecar.egress?.port ?? 0;
  const proxy = `http://127.0.0.1:${port}`;
  /** A request with this exact target and Host, as a proxy client sends it. */
  const raw = (target: string, host: string) =>
    new Promise<{ status: number; code: string | undefined; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: target, headers: { host }, setHost: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          let code: string | undefined;
          try {
            code = (JSON.parse(body) as { code?: string }).code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code, body });
        });
      });
      req.once('error', reject);
      req.end();
    });

  // --noproxy '': no no_proxy of the environment sends curl around the proxy.
  for (const url of [`http://127.0.0.1:${port}/payments/echo?via=curl`, `http://localhost:${port}/payments/echo?via=curl`]) {
    const viaCurl = await curl(['--noproxy', '', '-x', proxy, url]);
    t.equal(viaCurl.status, 200, `curl -x ${proxy} ${url}: served (before: 404 ERR_EGRESS_UNKNOWN_SERVICE)`);
    t.match(viaCurl.body, /"url":"\/echo\?via=curl"/, 'the destination got the path within the service');
  }
  // proxyTunnel: false: plain absolute-form requests, as HTTP_PROXY clients send for http:// URLs (undici tunnels by default).
  const agent = new ProxyAgent({ uri: proxy, proxyTunnel: false });
  t.teardown(() => agent.close());
  const viaUndici = await request(`http://127.0.0.1:${port}/payments/echo?via=undici`, { dispatcher: agent });
  t.equal(viaUndici.statusCode, 200, "undici's ProxyAgent, path form: served");
  t.match(await viaUndici.body.text(), /"url":"\/echo\?via=undici"/);
  const proxyForm = await request('http://payments/echo?via=proxy-form', { dispatcher: agent });
  t.equal(proxyForm.statusCode, 200, 'the proxy form still served');
  await proxyForm.body.dump();
  t.match(await raw(`http://[::1]:${port}/payments/echo`, `[::1]:${port}`), { status: 200 }, 'an IPv6 loopback authority: served');

  // A redirect within the service keeps the path form's rewriting.
  const redirected = await request(`http://127.0.0.1:${port}/payments/redirect?to=${encodeURIComponent('/login?next=1')}`, {
    dispatcher: agent,
  });
  t.equal(redirected.statusCode, 307);
  t.equal(redirected.headers.location, '/payments/login?next=1', 'a redirect inside the destination stays inside it (path form)');
  await redirected.body.dump();

  // What stays refused.
  t.match(
    await raw(`http://127.0.0.1:${port}/payments/echo`, 'attacker.example'),
    { status: 421, code: 'ERR_EGRESS_HOST_REFUSED' },
    'a foreign Host with a self target: 421',
  );
  t.match(
    await raw(`http://127.0.0.1:${port}/payments/echo`, 'payments'),
    { status: 421, code: 'ERR_EGRESS_HOST_REFUSED' },
    'a self target with Host naming the service (path form: the Host names this machine): 421',
  );
  t.match(
    await raw(`http://127.0.0.1:${port === 1 ? 2 : port - 1}/payments/echo`, '127.0.0.1'),
    { status: 404, code: 'ERR_EGRESS_UNKNOWN_SERVICE' },
    'loopback on another port is not this listener: a service named 127.0.0.1, unknown',
  );
  t.match(
    await raw(`http://192.0.2.1:${port}/payments/echo`, `192.0.2.1:${port}`),
    { status: 404, code: 'ERR_EGRESS_UNKNOWN_SERVICE' },
    'another address on the egress port is not this listener: a service named 192.0.2.1, unknown',
  );
  t.match(
    await raw(`http://127.0.0.1:${port}/nosuch/echo`, `127.0.0.1:${port}`),
    { status: 404, code: 'ERR_EGRESS_UNKNOWN_SERVICE' },
    'an unknown service in the path: 404',
  );
  t.match(
    await raw(`http://127.0.0.1:${port}/%2e%2e/payments/echo`, `127.0.0.1:${port}`),
    { status: 404 },
    'an escape in the path: no service',
  );
  t.match(
    await raw(`http://127.0.0.1:${port}/`, `127.0.0.1:${port}`),
    { status: 404, code: 'ERR_EGRESS_UNKNOWN_SERVICE' },
    'no service at all: 404',
  );
  t.match(
    await raw(`http://user:pw@127.0.0.1:${port}/payments/echo`, 'attacker.example'),
    { status: 421 },
    'userinfo and a foreign Host: 421',
  );
  t.match(await raw(`https://127.0.0.1:${port}/payments/echo`, `127.0.0.1:${port}`), { status: 404 }, 'https:// in proxy form: not served');
});
