/**
 * CORS preflights (routing.cors_preflight). A browser sends `OPTIONS` with `Origin` and
 * `Access-Control-Request-Method` before a non-simple cross-origin call, without credentials; the
 * backend's CORS handling answers it. Under `refuse` (the default) a path without an OPTIONS route
 * answers 405 as before (red team 29, resp F3); under `forward` an exact preflight for a method the
 * path has a route for reaches the backend without authentication, and anything else is as before.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:http2';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';
import { testAgent, fetchText } from '../support/clients.js';
import { startForgedIssuer } from '../support/token-forge.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A backend whose CORS handling answers preflights (204 with Access-Control-*), and 200 to the rest. */
async function corsBackend(t: { teardown(fn: () => unknown): void }) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.once('end', () => {
      if (req.method === 'OPTIONS' && req.headers.origin !== undefined) {
        res.writeHead(204, {
          'access-control-allow-origin': req.headers.origin,
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '',
          'access-control-max-age': '600',
        });
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const DOCUMENT = JSON.stringify({
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
  security: [{ bearer: [] }],
  paths: {
    '/json/{id}': {
      post: {
        operationId: 'postJson',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
        responses: { '200': { description: 'ok' } },
      },
    },
    '/with-options': {
      get: { operationId: 'getWithOptions', responses: { '200': { description: 'ok' } } },
      options: { operationId: 'optionsOwn', responses: { '204': { description: 'own' } } },
    },
  },
});

/** An OPTIONS preflight with a JSON body (undici will not send one), over HTTP/1.1 or h2. */
async function optionsWithBody(port: number, ca: string, h2: boolean): Promise<{ status: number; text: string }> {
  const body = '{"a":1}';
  if (h2) {
    const session = connect(`https://localhost:${port}`, { ca, host: '127.0.0.1' });
    try {
      const stream = session.request({ ':method': 'OPTIONS', ':path': '/json/1', ...PREFLIGHT, 'content-type': 'application/json' });
      stream.end(body);
      const [status, text] = await Promise.all([
        new Promise<number>((resolve) => stream.once('response', (h) => resolve(Number(h[':status'])))),
        text_(stream),
      ]);
      return { status, text };
    } finally {
      session.close();
    }
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca,
        agent: false,
        method: 'OPTIONS',
        path: '/json/1',
        headers: { ...PREFLIGHT, 'content-type': 'application/json', 'content-length': String(body.length) },
      },
      (res) => void text_(res).then((text) => resolve({ status: res.statusCode ?? 0, text }), reject),
    );
    req.once('error', reject);
    req.end(body);
  });
}

async function text_(stream: AsyncIterable<Buffer | string>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text;
}

const PREFLIGHT = {
  origin: 'https://app.example',
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'content-type',
};

for (const mode of ['openapi', 'routes'] as const) {
  const policy =
    mode === 'openapi'
      ? { openapi: { document: openApiFile(DOCUMENT) } }
      : {
          routes: [
            { id: 'json', path: '/json/:id', methods: ['POST'] },
            { id: 'any', path: '/any/*', methods: ['*'] },
          ],
        };

  t.test(`${mode}: routing.cors_preflight refuse (the default) answers a preflight as before`, async (t) => {
    const backend = await corsBackend(t);
    const idp = await startForgedIssuer(t);
    const s = await startTestSidecar(t, backend.url, {
      ...policy,
      tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const res = await fetchText(`${s.url}/json/1`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
    t.equal(res.status, 405, '405 as today');
    t.equal(res.headers.allow, 'POST');
    t.equal(backend.seen.length, 0, 'nothing reached the backend');
    if (mode === 'routes') {
      const any = await fetchText(`${s.url}/any/x`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
      t.equal(any.status, 401, 'a "*" route takes OPTIONS with its authentication, as today');
    }
  });

  t.test(`${mode}: routing.cors_preflight forward`, async (t) => {
    const backend = await corsBackend(t);
    const idp = await startForgedIssuer(t);
    const s = await startTestSidecar(t, backend.url, {
      ...policy,
      routing: { cors_preflight: 'forward' },
      // Overrides passed on: a preflight carrying one must still be no preflight (review rt29-3).
      headers: { overrides: 'forward' },
      tokens: {
        issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }],
        sources: [{ from: 'authorization' }, { from: 'query', name: 'access_token' }],
      },
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const h2agent = testAgent(s.ca, { h2: true });
    t.teardown(() => h2agent.close());

    for (const [name, a] of [
      ['h1', agent],
      ['h2', h2agent],
    ] as const) {
      const before = backend.seen.length;
      const res = await fetchText(`${s.url}/json/1`, a, { method: 'OPTIONS', headers: PREFLIGHT });
      t.equal(res.status, 204, `${name}: the backend answers the preflight`);
      t.equal(res.headers['access-control-allow-origin'], 'https://app.example', `${name}: its Access-Control-* reach the client`);
      t.equal(res.headers['access-control-allow-headers'], 'content-type');
      t.equal(res.headers['access-control-max-age'], '600');
      const got = backend.seen[before];
      t.equal(got?.method, 'OPTIONS', `${name}: the preflight reached the backend, without a token`);
      t.equal(got?.url, '/json/1');
      t.equal(got?.headers.origin, 'https://app.example');
      t.equal(got?.headers['access-control-request-method'], 'POST');
      t.equal(got?.headers.authorization, undefined);
    }
    const seen = backend.seen.length;

    const post = await fetchText(`${s.url}/json/1`, agent, {
      method: 'POST',
      headers: { origin: 'https://app.example', 'content-type': 'application/json' },
      body: '{}',
    });
    t.equal(post.status, 401, 'the request the preflight announced still needs its token');

    const noOrigin = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { 'access-control-request-method': 'POST' },
    });
    t.equal(noOrigin.status, 405, 'OPTIONS without Origin: as today');
    const noMethod = await fetchText(`${s.url}/json/1`, agent, { method: 'OPTIONS', headers: { origin: 'https://app.example' } });
    t.equal(noMethod.status, 405, 'OPTIONS without Access-Control-Request-Method: as today');
    const lacking = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { ...PREFLIGHT, 'access-control-request-method': 'DELETE' },
    });
    t.equal(lacking.status, 405, 'a preflight for a method the path has no route for: 405');
    t.equal(lacking.headers.allow, 'POST');
    const lower = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { ...PREFLIGHT, 'access-control-request-method': 'post' },
    });
    t.equal(lower.status, 405, 'methods are case-sensitive (Fetch sends PATCH as written): "post" names no route');
    const unknown = await fetchText(`${s.url}/nowhere`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
    t.equal(unknown.status, 404, 'a preflight to a path no route declares: 404');
    const withToken = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { ...PREFLIGHT, authorization: 'Bearer forged' },
    });
    t.equal(withToken.status, 405, 'credentials make it no preflight (browsers send none): as today, never forwarded unchecked');
    const withCookie = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { ...PREFLIGHT, cookie: 'session=1' },
    });
    t.equal(withCookie.status, 405, 'a cookie too');
    // A query token source's name: the preflight plan checks no token, and the backend would get it unchecked.
    const withQueryToken = await fetchText(`${s.url}/json/1?access_token=forged`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
    t.equal(withQueryToken.status, 405, 'a token in a query token source too');
    const spelledOtherwise = await fetchText(`${s.url}/json/1?access.token=forged`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
    t.equal(spelledOtherwise.status, 405, "in another spelling (PHP's access.token): any query, where a query source exists");
    const overridden = await fetchText(`${s.url}/json/1`, agent, {
      method: 'OPTIONS',
      headers: { ...PREFLIGHT, 'x-http-method-override': 'DELETE' },
    });
    t.equal(
      overridden.status,
      405,
      'a method override: no preflight, an OPTIONS as any other (before: the DELETE under the preflight plan)',
    );
    for (const h2 of [false, true]) {
      const withBody = await optionsWithBody(s.port, s.ca, h2);
      t.equal(withBody.status, 400, `${h2 ? 'h2' : 'h1'}: a preflight with a body is refused`, { got: withBody });
      t.match(JSON.parse(withBody.text), { code: 'ERR_REQUEST_MALFORMED' });
    }
    t.equal(backend.seen.length, seen, 'none of those reached the backend');
    t.ok(
      s.events.some((e) => e.name === 'warden.http.malformed' && e['warden.rule'] === 'cors.preflight_body'),
      'the refused body raises warden.http.malformed, rule cors.preflight_body',
    );
    const metrics = await fetchText(`${s.adminUrl}/metrics`, agent);
    const route = mode === 'openapi' ? 'postJson' : 'json';
    t.match(metrics.text, new RegExp(`warden_cors_preflights_total\\{[^}]*route="${route}"[^}]*\\} 2`), 'forwarded preflights are counted');

    if (mode === 'openapi') {
      const own = await fetchText(`${s.url}/with-options`, agent, {
        method: 'OPTIONS',
        headers: { ...PREFLIGHT, 'access-control-request-method': 'GET' },
      });
      t.equal(own.status, 401, "a path's own options operation takes its OPTIONS, with its security");
    } else {
      const any = await fetchText(`${s.url}/any/x`, agent, { method: 'OPTIONS', headers: PREFLIGHT });
      t.equal(any.status, 204, 'a "*" route: its preflights are forwarded too');
      const plain = await fetchText(`${s.url}/any/x`, agent, { method: 'OPTIONS' });
      t.equal(plain.status, 401, 'a plain OPTIONS there keeps its authentication');
    }
  });
}
