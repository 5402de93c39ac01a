/**
 * Red team 29, F2: behind a caching front (Varnish's stock VCL stores any 200 without
 * Cache-Control unless the request carries Authorization or Cookie), an answer to a request Warden
 * authenticated from another header (`tokens.sources: {from: header}`), or admitted by
 * access.clients, was stored under its URL and served to other callers, anonymous ones included.
 * Such routes' responses now say `Cache-Control: private` (RFC 9111 §3.5's rule for Authorization,
 * extended to Warden's decisions), unless the backend said private, no-store, public or s-maxage.
 * A `Vary` naming the minted header also names the header the token came in.
 */
import t from 'tap';
import type { AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

/** Answers with the Cache-Control (`cc`) and Vary (`vary`) the query asks for; `cc=none` sends none. */
async function startBackend(t: Teardown): Promise<string> {
  const server = createHttpServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const headers: Record<string, string | string[]> = { 'content-type': 'application/json', 'x-app': '1' };
    const cc = q.getAll('cc');
    if (cc.length === 1) headers['cache-control'] = cc[0] as string;
    else if (cc.length > 1) headers['cache-control'] = cc;
    const vary = q.get('vary');
    if (vary !== null) headers.vary = vary;
    res.writeHead(200, headers);
    res.end(JSON.stringify({ user: req.headers.authorization === undefined ? 'anonymous' : 'someone' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('responses on routes that decide who the caller is are private to shared caches', async (t) => {
  const idp = await startForgedIssuer(t);
  const backend = await startBackend(t);
  const s = await startTestSidecar(t, backend, {
    tokens: {
      issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { algorithms: ['ES256'] } }],
      sources: [{ from: 'authorization' }, { from: 'header', name: 'X-Api-Token' }],
      mint: { audience: 'be' },
    },
    routes: [
      { id: 'public', path: '/public/*', authn: { mode: 'off' } },
      { id: 'partners', path: '/partners/*', authn: { mode: 'off' }, access: { clients: { allow: ['127.0.0.1/32'] } } },
      { id: 'me', path: '/me' },
    ],
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'alice', exp: now + 300, iat: now, jti: 'j1' });
  const withToken = { headers: { 'x-api-token': token } };
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const label = h2 ? 'h2' : 'HTTP/1.1';
    const cacheControl = async (path: string, options: { headers?: Record<string, string> } = withToken) => {
      const res = await fetchText(`${s.url}${path}`, agent, options);
      t.equal(res.status, 200, `${label} ${path}: 200`);
      return res.headers['cache-control'];
    };

    // A token from a header source, the backend silent on caching: Varnish's stock VCL stored it.
    t.equal(await cacheControl('/me'), 'private', `${label}: a header-source token's answer is private`);
    t.equal(await cacheControl('/me?cc=max-age%3D60'), 'max-age=60, private', `${label}: appended to the backend's max-age`);
    t.equal(
      await cacheControl('/me?cc=max-age%3D60&cc=must-revalidate'),
      'max-age=60, must-revalidate, private',
      `${label}: must-revalidate alone does not make it shareable`,
    );
    t.equal(
      await cacheControl('/me?cc=private%3D%22set-cookie%22'),
      'private="set-cookie", private',
      `${label}: a private naming fields keeps the rest shareable: marked`,
    );
    t.equal(
      await cacheControl('/me?cc=no-cache%3D%22a%2C%20no-store%22'),
      'no-cache="a, no-store", private',
      `${label}: a directive inside a quoted value is not one`,
    );
    // The backend's own word on shared caches stands.
    for (const cc of ['public, max-age=60', 'no-store', 'private', 'max-age=0, PRIVATE', 's-maxage=30', 'max-age=5,s-maxage="30"']) {
      t.equal(await cacheControl(`/me?cc=${encodeURIComponent(cc)}`), cc, `${label}: the backend's "${cc}" kept as sent`);
    }
    // The Authorization source too, though RFC 9111 §3.5 covers it: not every cache follows it.
    t.equal(await cacheControl('/me', { headers: { authorization: `Bearer ${token}` } }), 'private', `${label}: Authorization source too`);

    // Vary on the minted Authorization, which the front never sees: the token's own header is added.
    const varied = await fetchText(`${s.url}/me?cc=public%2C%20max-age%3D60&vary=Accept%2C%20Authorization`, agent, withToken);
    t.equal(varied.headers.vary, 'Accept, Authorization, x-api-token', `${label}: Vary names the token's source header too`);
    t.equal(varied.headers['cache-control'], 'public, max-age=60', `${label}: public kept`);
    const accept = await fetchText(`${s.url}/me?vary=Accept`, agent, withToken);
    t.equal(accept.headers.vary, 'Accept', `${label}: a Vary without the minted header is left alone`);

    // access.clients decided: marked. No decision: left as the backend sent it.
    t.equal(await cacheControl('/partners/x', {}), 'private', `${label}: an access.clients route's answer is private`);
    t.equal(await cacheControl('/public/x', {}), undefined, `${label}: a public route's answer is unchanged`);
    t.equal(await cacheControl('/public/x?cc=max-age%3D60', {}), 'max-age=60', `${label}: its Cache-Control too`);
  }
});

t.test("Warden's own refusals keep no-store on such a route", async (t) => {
  const idp = await startForgedIssuer(t);
  const backend = await startBackend(t);
  const s = await startTestSidecar(t, backend, {
    tokens: {
      issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { algorithms: ['ES256'] } }],
      sources: [{ from: 'header', name: 'x-api-token' }],
    },
    routes: [{ id: 'me', path: '/me' }],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const refused = await fetchText(`${s.url}/me`, agent);
  t.equal(refused.status, 401, 'no token: 401');
  t.equal(refused.headers['cache-control'], 'no-store', 'the refusal keeps no-store');
});
