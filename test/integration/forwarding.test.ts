/**
 * Forwarding over real sockets: HTTP/1.1 and h2 from undici and curl, header hygiene in both
 * directions, X-Forwarded-*, request ids, traceparent.
 */
import { createServer } from 'node:http';
import { connect, constants as h2constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { curl, fetchText, rawTlsRequest, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import { testCertificate } from '../support/certs.js';

t.test('HTTP/1.1 and h2, from undici and from curl, reach the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const cert = await testCertificate();

  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const res = await fetchText(`${s.url}/echo?x=1`, agent, {
      method: 'POST',
      body: '{"a":1}',
      headers: { 'content-type': 'application/json' },
    });
    t.equal(res.status, 200, `undici ${h2 ? 'h2' : 'h1'}`);
    const echo = res.json<{ method: string; url: string; bodyBytes: number; headers: Record<string, string> }>();
    t.equal(echo.method, 'POST');
    t.equal(echo.url, '/echo?x=1');
    t.equal(echo.bodyBytes, 7);
    t.equal(echo.headers.host, `localhost:${s.port}`, 'Host (or :authority) passed on');
  }
  // Answered in full, so not `warden.aborted` in the access log. Over h2 Node may close a stream
  // before its last write reports back, so the response's 'finish' is not the sign of that.
  await new Promise((r) => setTimeout(r, 400)); // access lines go out in batches (line-batcher.ts)
  const answered = s.logs.filter((l) => l.msg === 'request' && l['url.path'] === '/echo');
  t.same(
    answered.map((l) => `${String(l['network.protocol.version'])} ${l['warden.aborted'] === true ? 'aborted' : 'complete'}`),
    ['1.1 complete', '2 complete'],
    'both POSTs are logged as complete',
  );

  for (const version of ['--http1.1', '--http2']) {
    const r = await curl([version, '--cacert', cert.certFile, `${s.url}/echo`]);
    t.equal(r.status, 200, `curl ${version}`);
    t.equal(r.version, version === '--http2' ? '2' : '1.1', 'negotiated by ALPN');
  }

  // Expect: 100-continue, with a body read whole before forwarding (≤ 16 KiB) and a streamed one.
  for (const version of ['--http1.1', '--http2']) {
    for (const bytes of [100, 20_000]) {
      const started = Date.now();
      const r = await curl(
        [
          version,
          // Without a 100 Continue, curl would wait this long before sending the body anyway.
          '--expect100-timeout',
          '10',
          '--cacert',
          cert.certFile,
          '-H',
          'Expect: 100-continue',
          '-H',
          'content-type: application/json',
          '--data-binary',
          '@-',
          `${s.url}/echo`,
        ],
        Buffer.alloc(bytes, 0x61),
      );
      t.equal(r.status, 200, `curl ${version}, Expect: 100-continue, ${bytes} bytes`);
      t.ok(Date.now() - started < 5000, `100 Continue came at once (${Date.now() - started} ms)`);
      const echo = JSON.parse(r.body) as { bodyBytes: number; headers: Record<string, string> };
      t.equal(echo.bodyBytes, bytes, 'the whole body reached the backend');
      t.equal(echo.headers['content-length'], String(bytes), 'with its Content-Length');
      t.equal(echo.headers.expect, undefined, 'Expect answered by the sidecar, not passed on');
    }
  }
});

t.test('hop-by-hop and internal headers never leak, in either direction', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { headers: { internal: ['x-warden-*', 'x-internal-token'] } });
  const cert = await testCertificate();
  const common = {
    'x-warden-user': 'admin',
    'x-internal-token': 'forged',
    'proxy-authorization': 'Basic Zm9vOmJhcg==',
    authorization: 'Bearer external',
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    // CGI and WSGI servers read these as X-Warden-User, X-Forwarded-For, X-Internal-Token, X-Request-Id.
    x_warden_user: 'admin',
    X_Forwarded_For: '6.6.6.6',
    x_internal_token: 'forged',
    x_request_id: 'forged',
    x_custom_name: 'kept',
  };
  const hopByHop = { connection: 'keep-alive, x-named', 'x-named': 'hop', 'keep-alive': 'timeout=5', upgrade: 'h2c', te: 'trailers' };
  const checkRequest = (label: string) => {
    const seen = backend.requests.at(-1)?.headers ?? {};
    for (const name of ['x-warden-user', 'x-internal-token', 'proxy-authorization', 'x-named', 'keep-alive', 'upgrade', 'te']) {
      t.notOk(name in seen, `request ${name} stripped (${label})`);
    }
    for (const name of ['x_warden_user', 'x_forwarded_for', 'x_internal_token', 'x_request_id'])
      t.notOk(name in seen, `request ${name} stripped: an underscored spelling of a controlled header (${label})`);
    t.equal(seen.x_custom_name, 'kept', `other underscored names kept (${label})`);
    t.equal(seen.authorization, 'Bearer external', `end-to-end headers kept (${label})`);
    t.equal(seen.traceparent, common.traceparent, `traceparent passed on (${label})`);
  };
  const checkResponse = (label: string, headers: Record<string, unknown>) => {
    for (const name of ['x-named-hop', 'proxy-authenticate', 'trailer', 'x-warden-internal']) {
      t.notOk(name in headers, `response ${name} stripped (${label})`);
    }
    // The sidecar's own connection may say Keep-Alive; the backend's "timeout=5" must not pass.
    t.not(headers['keep-alive'], 'timeout=5', `backend keep-alive not forwarded (${label})`);
    t.equal(headers['x-kept'], 'yes');
  };

  // HTTP/1.1 from curl, which sends hop-by-hop headers as told (undici refuses to).
  const args = ['--http1.1', '--cacert', cert.certFile, '-D', '-', `${s.url}/response-headers`];
  for (const [k, v] of Object.entries({ ...common, ...hopByHop })) args.unshift('-H', `${k}: ${v}`);
  const r = await curl(args);
  t.equal(r.status, 200);
  checkRequest('h1');
  const responseHeaders = Object.fromEntries(
    r.body
      .split('\r\n\r\n')[0]!
      .split('\r\n')
      .slice(1)
      .map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  checkResponse('h1', responseHeaders);

  // h2 from undici (connection-specific headers cannot exist in h2; the rest can).
  const agent = testAgent(s.ca, { h2: true });
  t.teardown(() => agent.close());
  const res = await fetchText(`${s.url}/response-headers`, agent, { headers: common });
  t.equal(res.status, 200);
  checkRequest('h2');
  checkResponse('h2', res.headers);
});

t.test('a Connection header naming a field the sidecar checks is refused, not obeyed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const cert = await testCertificate();
  const withConnection = (connection: string, ...more: string[]) =>
    curl(['--http1.1', '--cacert', cert.certFile, '-H', `Connection: ${connection}`, ...more, `${s.url}/echo`]);
  const before = backend.requests.length;
  // Obeyed, the JSON body checked as JSON would reach the backend untyped, which Rack and PHP read as a form.
  for (const connection of ['Content-Type', 'keep-alive, content-type', 'Content-Encoding', 'cookie', 'Host', 'authorization']) {
    const json = ['-H', 'content-type: application/json', '-H', 'cookie: a=b', '--data-binary', '{"note":"&_method=DELETE&"}'];
    const r = await withConnection(connection, ...json);
    t.equal(r.status, 400, `Connection: ${connection}`);
    t.match(JSON.parse(r.body), { code: 'ERR_REQUEST_AMBIGUOUS', detail: /Connection header that names/ });
  }
  t.equal(backend.requests.length, before, 'none reached the backend');
  for (const connection of ['keep-alive', 'close', 'Keep-Alive, x-named', 'TE']) {
    const r = await withConnection(connection, '-H', 'x-named: hop');
    t.equal(r.status, 200, `Connection: ${connection} still works`);
    if (/x-named/i.test(connection))
      t.notOk('x-named' in (backend.requests.at(-1)?.headers ?? {}), 'and a field it names is still removed');
  }
});

t.test(
  'fields a Connection header names are gone before any stage reads them: a required header parameter named there is missing, not validated then dropped',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const doc = `openapi: 3.1.0
info: { title: t, version: "1" }
paths:
  /items:
    get:
      operationId: items
      security: []
      parameters:
        - { name: X-Tenant, in: header, required: true, schema: { type: string } }
      responses: { "200": { description: ok } }
`;
    const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(doc), allow_public: true } });
    const cert = await testCertificate();
    const get = (...headers: string[]) =>
      curl(['--http1.1', '--cacert', cert.certFile, ...headers.flatMap((h) => ['-H', h]), `${s.url}/items`]);
    const sent = await get('X-Tenant: acme');
    t.equal(sent.status, 200, 'with X-Tenant: 200');
    t.equal(backend.requests.at(-1)?.headers['x-tenant'], 'acme', 'and the backend gets it');
    const before = backend.requests.length;
    const named = await get('X-Tenant: acme', 'Connection: close, X-Tenant');
    t.equal(named.status, 400, 'X-Tenant named by Connection: it is not sent, so the request lacks it');
    t.match(JSON.parse(named.body), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/header/x-tenant', message: 'is required' }] });
    t.equal(backend.requests.length, before, 'the backend never got a request without X-Tenant');
  },
);

t.test(
  'Connection naming Transfer-Encoding or X-Forwarded-For changes no check: framing still refused, the client still the one behind the proxy',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url, {
      headers: { trusted_proxies: ['127.0.0.1'] },
      access: { clients: { deny: ['203.0.113.7'] } },
    });
    const raw = (request: string) => rawTlsRequest(s.port, s.ca, request);
    const before = backend.requests.length;
    const chunked = '5\r\nhello\r\n0\r\n\r\n';
    const http10 = await raw(
      `POST /echo HTTP/1.0\r\nhost: localhost\r\nconnection: transfer-encoding\r\ntransfer-encoding: chunked\r\n\r\n${chunked}`,
    );
    t.match(
      http10,
      /^HTTP\/1\.1 400 [\s\S]*"code":"ERR_REQUEST_AMBIGUOUS"[\s\S]*Transfer-Encoding in HTTP\/1\.0/,
      'Transfer-Encoding in HTTP/1.0 is refused though Connection names it',
    );
    const coded = await raw(
      `POST /echo HTTP/1.1\r\nhost: localhost\r\nconnection: transfer-encoding\r\ntransfer-encoding: gzip, chunked\r\n\r\n${chunked}`,
    );
    t.match(
      coded,
      /^HTTP\/1\.1 400 [\s\S]*"code":"ERR_REQUEST_AMBIGUOUS"[\s\S]*other than/,
      'a coding besides chunked is refused though Connection names it',
    );
    t.equal(backend.requests.length, before, 'neither reached the backend');
    const denied = await raw(
      `GET /echo HTTP/1.1\r\nhost: localhost\r\nx-forwarded-for: 203.0.113.7\r\nconnection: keep-alive, X-Forwarded-For\r\n\r\n`,
    );
    t.match(denied, /^HTTP\/1\.1 403 /, 'the denied client behind the trusted proxy is still denied when Connection names X-Forwarded-For');
  },
);

t.test('X-Forwarded-* from the socket; request ids generated or kept', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());

  // Other headers backends and their libraries read the client's address from (request-ip, PHP's HTTP_CLIENT_IP).
  const clientAddress = {
    'x-client-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'x-cluster-client-ip': '6.6.6.6',
    'x-original-forwarded-for': '6.6.6.6',
    'cf-connecting-ip': '6.6.6.6',
    'fastly-client-ip': '6.6.6.6',
    x_client_ip: '6.6.6.6',
  };
  const res = await fetchText(`${s.url}/echo`, agent, {
    headers: { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'http', forwarded: 'for=6.6.6.6', ...clientAddress },
  });
  const seen = res.json<{ headers: Record<string, string> }>().headers;
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'spoofed X-Forwarded-For replaced');
  t.equal(seen['x-forwarded-proto'], 'https');
  t.equal(seen['x-forwarded-host'], `localhost:${s.port}`);
  t.notOk('forwarded' in seen, 'an untrusted client’s Forwarded dropped; Warden writes none');
  t.equal(seen['x-real-ip'], '127.0.0.1', 'X-Real-IP: the client Warden saw');
  for (const name of Object.keys(clientAddress)) t.notOk(name in seen, `${name} from an untrusted client dropped`);
  t.match(seen['x-request-id'], /^[0-9a-f-]{36}$/, 'request id generated');
  t.equal(res.headers['x-request-id'], seen['x-request-id'], 'and returned to the client');

  // An untrusted caller's id is replaced: it could give its requests someone else's (docs/adversarial.md 276).
  const replaced = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-request-id': 'abc-123' } });
  t.match(
    replaced.json<{ headers: Record<string, string> }>().headers['x-request-id'],
    /^[0-9a-f-]{36}$/,
    "an untrusted caller's id replaced",
  );
  t.match(replaced.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'the caller is told the one used');
  const junk = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-request-id': 'has spaces and {json}' } });
  t.not(junk.json<{ headers: Record<string, string> }>().headers['x-request-id'], 'has spaces and {json}', 'malformed ids replaced');

  const trusted = await startTestSidecar(t, backend.url, { headers: { trusted_proxies: ['127.0.0.0/8'] } });
  const viaProxy = await fetchText(`${trusted.url}/echo`, agent, {
    headers: {
      'x-forwarded-for': '6.6.6.6, 203.0.113.9',
      'true-client-ip': '6.6.6.6',
      x_client_ip: '6.6.6.6',
      'x-real-ip': '6.6.6.6',
      forwarded: 'for=6.6.6.6',
    },
  });
  const seenViaProxy = viaProxy.json<{ headers: Record<string, string> }>().headers;
  // A front that neither sets nor strips X-Request-Id passes the client's own: replaced unless listed (red team 29).
  const notListed = await fetchText(`${trusted.url}/echo`, agent, { headers: { 'x-request-id': 'abc-123' } });
  t.not(
    notListed.json<{ headers: Record<string, string> }>().headers['x-request-id'],
    'abc-123',
    "a trusted proxy's id replaced unless trusted_proxy_headers lists x-request-id",
  );
  const listing = await startTestSidecar(t, backend.url, {
    headers: { trusted_proxies: ['127.0.0.0/8'], trusted_proxy_headers: ['x-request-id'] },
  });
  const kept = await fetchText(`${listing.url}/echo`, agent, { headers: { 'x-request-id': 'abc-123' } });
  t.equal(kept.json<{ headers: Record<string, string> }>().headers['x-request-id'], 'abc-123', "listed: a trusted proxy's id kept");
  t.equal(kept.headers['x-request-id'], 'abc-123', 'and returned to the caller');
  t.equal(seenViaProxy['x-forwarded-for'], '6.6.6.6, 203.0.113.9, 127.0.0.1', 'appended when the peer is trusted');
  // What a client behind an ordinary front (which neither sets nor strips these) wrote itself: the
  // backend reads the client Warden's policy used (red team 28 F2, F6).
  t.notOk('true-client-ip' in seenViaProxy, 'a client address header not in trusted_proxy_headers: dropped from a trusted proxy too');
  t.equal(seenViaProxy['x-real-ip'], '203.0.113.9', "X-Real-IP: the client Warden computed (nginx's X-Real-IP $remote_addr)");
  // None of Warden's own: one naming only the client contradicted X-Forwarded-For's chain, and
  // Symfony (Drupal's default) answers 400 to a trusted Forwarded and X-Forwarded-For that differ (review rt28 F1).
  t.notOk('forwarded' in seenViaProxy, 'Forwarded not in trusted_proxy_headers: dropped, none written');
  t.notOk('x_client_ip' in seenViaProxy, 'never an underscored spelling');
});

t.test(
  'what a proxy asserts about the caller (certificate, user, other X-Forwarded-*) only from a trusted proxy that is said to set it',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url);
    // Each is read by some backend as the proxy's word: Spring and Tomcat build URLs from
    // X-Forwarded-Port/-Prefix, RFC 9440 servers take Client-Cert as the caller's certificate, Apache
    // modules and ALB/Azure/IAP/oauth2-proxy integrations take the user from these (defect 167).
    const asserted: Record<string, string> = {
      'x-forwarded-port': '1',
      'x-forwarded-prefix': '/evil',
      'x-forwarded-ssl': 'on',
      'x-forwarded-scheme': 'http',
      'x-forwarded-server': 'evil',
      'x-forwarded-uri': '/admin',
      'x-forwarded-user': 'admin',
      'client-cert': ':MIIB:',
      'client-cert-chain': ':MIIB:',
      'x-client-cert': 'forged',
      'x-ssl-cert': 'forged',
      'x-ssl-client-verify': 'SUCCESS',
      'x-ssl-client-s-dn': 'CN=admin',
      'ssl-client-verify': 'SUCCESS',
      'x-arr-clientcert': 'forged',
      'x-amzn-mtls-clientcert': 'forged',
      'remote-user': 'admin',
      'x-remote-user': 'admin',
      'x-amzn-oidc-identity': 'admin',
      'x-amzn-oidc-data': 'e30.e30.',
      'x-ms-client-principal-name': 'admin',
      'x-goog-authenticated-user-email': 'accounts.google.com:admin@example.com',
      'x-auth-request-user': 'admin',
      'x-envoy-external-address': '6.6.6.6',
      x_forwarded_prefix: '/evil',
      x_remote_user: 'admin',
      // gunicorn takes SCRIPT_NAME from a header named so and routes on the path after its first
      // occurrence (`GET /public/admin/users` ran /admin/users, denied); Flask's widely copied
      // ReverseProxied middleware does the same with X-Script-Name (red team 27d).
      'x-script-name': '/public',
      'script-name': '/public',
      script_name: '/public',
      x_script_name: '/public',
      // PHP builds HTTP_CLIENT_IP from `Client-IP` (the "real client IP" helpers read it first);
      // request-ip also reads X-Forwarded, Forwarded-For, X-AppEngine-User-IP, CF-Pseudo-IPv4 (red team 27e).
      'client-ip': '6.6.6.6',
      'x-forwarded': 'for=6.6.6.6',
      'forwarded-for': '6.6.6.6',
      'x-appengine-user-ip': '6.6.6.6',
      'cf-pseudo-ipv4': '6.6.6.6',
      // CloudFront's viewer mTLS, Google Cloud load balancers', Cloudflare's, nginx/HAProxy recipes' (red team 28).
      'cloudfront-viewer-cert-present': '1',
      'cloudfront-viewer-cert-subject': 'CN=admin',
      'cloudfront-viewer-address': '6.6.6.6:443',
      'x-client-cert-present': 'true',
      'x-client-cert-chain-verified': 'true',
      'x-client-cert-spiffe': 'spiffe://example.org/ns/admin',
      'cf-client-cert-sha256': '00ff',
      'x-client-verify': 'SUCCESS',
      'x-client-dn': 'CN=admin',
      'x-client-certificate': 'forged',
      'x-ssl-subject': 'CN=admin',
      'x-ssl-issuer': 'CN=Corp Root',
      'x-ssl-verified': '1',
      // The scheme and host under other names: Tornado (xheaders) and Jupyter read X-Scheme before
      // X-Forwarded-Proto, CodeIgniter Front-End-Https; X-Host, X-Original-Host and X-Http-Host are
      // read as the host by URL-building helpers (review1 F2).
      'x-scheme': 'http',
      'x-url-scheme': 'http',
      'front-end-https': 'off',
      'x-host': 'evil.example',
      'x-original-host': 'evil.example',
      'x-http-host': 'evil.example',
      x_scheme: 'http',
      x_url_scheme: 'http',
      front_end_https: 'off',
      x_original_host: 'evil.example',
    };
    // Half of them listed in headers.trusted_proxy_headers (exact names, and one prefix): only those
    // pass from the trusted proxy. The others an ordinary front neither sets nor strips, so a client
    // behind it wrote its own (red team 28 F2).
    const dashed = Object.keys(asserted).filter((name) => !name.includes('_'));
    const listed = new Set(dashed.filter((_, i) => i % 2 === 0 && !dashed[i]!.startsWith('x-amzn-oidc-')));
    const trusted = await startTestSidecar(t, backend.url, {
      headers: { trusted_proxies: ['127.0.0.0/8'], trusted_proxy_headers: [...listed, 'x-amzn-oidc-*'] },
    });
    for (const name of dashed) if (name.startsWith('x-amzn-oidc-')) listed.add(name);
    t.ok(listed.size > 10 && listed.size < dashed.length - 10, 'both kinds tried');
    for (const h2 of [false, true]) {
      const agent = testAgent(s.ca, { h2 });
      t.teardown(() => agent.close());
      const direct = await fetchText(`${s.url}/echo`, agent, { headers: asserted });
      t.equal(direct.status, 200);
      const seen = direct.json<{ headers: Record<string, string> }>().headers;
      for (const name of Object.keys(asserted)) t.notOk(name in seen, `${h2 ? 'h2' : 'h1'}: ${name} from an untrusted client dropped`);
      t.equal(seen['x-forwarded-proto'], 'https', 'the forwarding headers Warden sets are still set');

      const viaProxy = await fetchText(`${trusted.url}/echo`, agent, { headers: asserted });
      const seenViaProxy = viaProxy.json<{ headers: Record<string, string> }>().headers;
      for (const [name, value] of Object.entries(asserted)) {
        if (name.includes('_')) t.notOk(name in seenViaProxy, `${name}: never an underscored spelling`);
        else if (listed.has(name)) t.equal(seenViaProxy[name], value, `${h2 ? 'h2' : 'h1'}: ${name} listed: kept from a trusted proxy`);
        else t.notOk(name in seenViaProxy, `${h2 ? 'h2' : 'h1'}: ${name} not listed: dropped from a trusted proxy too`);
      }
    }
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const plain = await fetchText(`${s.url}/echo`, agent, {
      headers: { 'x-forwardedness': 'a', 'x-envoy': 'b', 'x-user-agent-hint': 'c' },
    });
    const seenPlain = plain.json<{ headers: Record<string, string> }>().headers;
    t.match(seenPlain, { 'x-forwardedness': 'a', 'x-envoy': 'b', 'x-user-agent-hint': 'c' }, 'names that only begin alike pass');
  },
);

t.test(
  'header names a CGI-style server folds into another header (".", other punctuation; Content_Type) never reach the backend',
  async (t) => {
    // lighttpd's CGI/FastCGI mapping turns every character but letters and digits into "_", and
    // `php -S` turns "." into "_": `X.Warden.User` was HTTP_X_WARDEN_USER, `User.Agent` carried an
    // injection past the waf as HTTP_USER_AGENT; php -S let `Content_Type` set CONTENT_TYPE (red team 27e).
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const s = await startTestSidecar(t, backend.url, { headers: { internal: ['x-warden-*', 'x-internal-token'] } });
    const odd: Record<string, string> = {
      'x.warden.user': 'admin',
      'x.internal.token': 'forged',
      'x.forwarded.client.cert': 'By=x;URI=spiffe://td/admin',
      'x.real.ip': '9.9.9.9',
      'x.http.method.override': 'DELETE',
      'x.original.url': '/admin',
      'user.agent': "1' OR 1=1 --",
      'x~tenant': 'evil',
      "x'tenant": 'evil',
      'x!tenant': 'evil',
      'x*tenant': 'evil',
      'x+tenant': 'evil',
      'x|tenant': 'evil',
      'x^tenant': 'evil',
      'x#tenant': 'evil',
      x$tenant: 'evil',
      'x%tenant': 'evil',
      'x&tenant': 'evil',
      'x`tenant': 'evil',
      content_type: 'application/json',
      content_length: '5',
      'content.type': 'application/json',
    };
    for (const h2 of [false, true]) {
      const agent = testAgent(s.ca, { h2 });
      t.teardown(() => agent.close());
      const res = await fetchText(`${s.url}/echo`, agent, { headers: { ...odd, 'x-tenant': 'acme', x_plain_name: 'kept' } });
      t.equal(res.status, 200, `${h2 ? 'h2' : 'h1'}: answered`);
      const seen = res.json<{ headers: Record<string, string> }>().headers;
      for (const name of Object.keys(odd)) t.notOk(name in seen, `${h2 ? 'h2' : 'h1'}: ${name} dropped`);
      t.equal(seen['x-tenant'], 'acme', 'an ordinary header passes');
      t.equal(seen['x_plain_name'], 'kept', 'an underscored name of nothing controlled passes');
    }
  },
);

t.test('method and path overrides: refused over h1 and h2 with their event; forwarded when configured', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const forwarding = await startTestSidecar(t, backend.url, { headers: { overrides: 'forward' } });
  const tries: [string, Record<string, string>][] = [
    ['/echo', { 'x-http-method-override': 'DELETE' }],
    ['/echo', { 'x-original-url': '/admin' }],
    ['/echo?_method=DELETE', {}],
    // CGI, WSGI and Rack read these as the dashed names (HTTP_X_HTTP_METHOD_OVERRIDE).
    ['/echo', { x_http_method_override: 'DELETE' }],
    ['/echo', { 'x-original_url': '/admin' }],
  ];
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    for (const [path, headers] of tries) {
      const what = `${h2 ? 'h2' : 'h1'} ${path} ${JSON.stringify(headers)}`;
      const before = backend.requests.length;
      const refused = await fetchText(`${s.url}${path}`, agent, { method: 'POST', headers });
      t.equal(refused.status, 400, what);
      t.match(refused.headers['content-type'], /application\/problem\+json/, what);
      t.equal(refused.json<{ code: string }>().code, 'ERR_REQUEST_OVERRIDE', what);
      t.equal(backend.requests.length, before, `${what}: not forwarded`);

      const forwarded = await fetchText(`${forwarding.url}${path}`, agent, { method: 'POST', headers });
      t.equal(forwarded.status, 200, `${what}: forwarded with overrides: forward`);
      const seen = forwarded.json<{ url: string; headers: Record<string, string> }>();
      t.equal(seen.url, path, `${what}: query kept`);
      for (const [name, value] of Object.entries(headers)) {
        // X-Original-URL is a header the waf inspects: its underscored spelling would pass uninspected (defect 170).
        if (name === 'x-original_url') t.notOk(name in seen.headers, `${what}: ${name} dropped, X-Original-URL is inspected`);
        else t.equal(seen.headers[name], value, `${what}: ${name} kept`);
      }
    }
  }
  const events = s.events.filter((e) => e.name === 'warden.http.smuggling');
  t.equal(events.length, tries.length * 2, 'one warden.http.smuggling event per refusal');
  t.same(
    [...new Set(events.map((e) => e['warden.rule']))].sort(),
    ['overrides.method_parameter', 'overrides.x_http_method_override', 'overrides.x_original_url'],
    'named by rule',
  );
});

t.test('a _method field in a POST body: refused on a route nothing else reads the body of, over h1 and h2', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The passthrough route: no validation, no waf, no scan — before, every one of these was forwarded unread.
  const s = await startTestSidecar(t, backend.url);
  const forwarding = await startTestSidecar(t, backend.url, { headers: { overrides: 'forward' } });
  const boundary = 'xYzBoundary';
  const multipart = (parts: [string, string, string?][]) =>
    parts
      .map(
        ([name, value, filename]) =>
          `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"\r\nContent-Type: application/octet-stream` : ''}\r\n\r\n${value}\r\n`,
      )
      .join('') + `--${boundary}--\r\n`;
  const multipartType = `multipart/form-data; boundary=${boundary}`;
  type Try = [what: string, contentType: string | undefined, body: string];
  const refused: Try[] = [
    ['form', 'application/x-www-form-urlencoded', 'name=a&_method=DELETE'],
    ['form, %5F-encoded', 'application/x-www-form-urlencoded; charset=utf-8', 'name=a&%5Fmethod=DELETE'],
    ['form, PHP reading (leading space, brackets)', 'application/x-www-form-urlencoded', '+_method[]=DELETE'],
    ['no Content-Type (Rack reads a form)', undefined, '_method=DELETE'],
    ['JSON', 'application/json', '{"name":"a","_method":"DELETE"}'],
    ['JSON, vendor +json', 'application/vnd.api+json', '{"_method":"PATCH"}'],
    ['JSON, duplicate members (PHP keeps the last)', 'application/json', '{"_method":"PUT","_method":"DELETE"}'],
    ['JSON with a BOM (Express drops it)', 'application/json', '\ufeff{"_method":"DELETE"}'],
    [
      'multipart field',
      multipartType,
      multipart([
        ['name', 'a'],
        ['_method', 'DELETE'],
      ]),
    ],
    ['multipart file part named _method', multipartType, multipart([['_method', 'DELETE', 'm.txt']])],
    // Catalyst's REST::ForBrowsers reads Plack's x-tunneled-method from the body too; System.Web.Mvc
    // a form field X-HTTP-Method-Override (red team 26).
    ['form, x-tunneled-method', 'application/x-www-form-urlencoded', 'name=a&x-tunneled-method=DELETE'],
    ['form, X-HTTP-Method-Override', 'application/x-www-form-urlencoded', 'name=a&X-HTTP-Method-Override=DELETE'],
    ['JSON, x-tunneled-method', 'application/json', '{"x-tunneled-method":"DELETE"}'],
    ['multipart field x-tunneled-method', multipartType, multipart([['x-tunneled-method', 'DELETE']])],
  ];
  const forwarded: Try[] = [
    ['form without one', 'application/x-www-form-urlencoded', 'name=a&payment_method=card'],
    ['JSON with a nested one (no framework reads it)', 'application/json', '{"order":{"_method":"DELETE"}}'],
    ['text/plain (no framework reads fields from it)', 'text/plain', '_method=DELETE'],
    [
      'multipart without one',
      multipartType,
      multipart([
        ['name', 'a'],
        ['file', 'x'.repeat(100_000), 'big.bin'],
      ]),
    ],
  ];
  const send = (url: string, agent: ReturnType<typeof testAgent>, method: string, [, contentType, body]: Try) =>
    fetchText(url, agent, { method, body, headers: contentType === undefined ? {} : { 'content-type': contentType } });
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    for (const attempt of refused) {
      const what = `${h2 ? 'h2' : 'h1'} ${attempt[0]}`;
      const before = backend.requests.length;
      const r = await send(`${s.url}/echo`, agent, 'POST', attempt);
      t.equal(r.status, 400, what);
      t.equal(r.json<{ code: string }>().code, 'ERR_REQUEST_OVERRIDE', what);
      t.equal(backend.requests.length, before, `${what}: not forwarded`);
      const through = await send(`${forwarding.url}/echo`, agent, 'POST', attempt);
      t.equal(through.status, 200, `${what}: forwarded with overrides: forward`);
      // Only a POST is overridden (Rack, Symfony, Laravel, Spring, method-override): a PUT carries it on.
      const put = await send(`${s.url}/echo`, agent, 'PUT', attempt);
      t.equal(put.status, 200, `${what}: a PUT is forwarded`);
    }
    for (const attempt of forwarded) {
      const what = `${h2 ? 'h2' : 'h1'} ${attempt[0]}`;
      const r = await send(`${s.url}/echo`, agent, 'POST', attempt);
      t.equal(r.status, 200, what);
      t.equal(r.json<{ bodyBytes: number }>().bodyBytes, Buffer.byteLength(attempt[2]), `${what}: the whole body forwarded`);
      t.equal(backend.requests.at(-1)?.sha256 !== undefined, true, `${what}: body ended at the backend`);
    }
    // A multipart body that cannot be taken apart cannot be told free of a _method: refused.
    const before = backend.requests.length;
    const broken = await send(`${s.url}/echo`, agent, 'POST', ['no boundary', 'multipart/form-data', '_method=DELETE']);
    t.equal(broken.status, 400, `${h2 ? 'h2' : 'h1'} multipart without a boundary`);
    t.equal(broken.json<{ code: string }>().code, 'ERR_REQUEST_INVALID');
    t.equal(backend.requests.length, before, 'not forwarded');
    // busboy skipped a part whose Content-Disposition it cannot parse, PHP 8.2 read its _method:
    // forwarded (200) before; and `name='_method'` was a field named '_method' with its quotes.
    for (const disposition of ['form-data; name="_method";', 'form-data; name= "_method"', "form-data; name='_method'"]) {
      const hidden = `--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\nDELETE\r\n--${boundary}--\r\n`;
      const r = await send(`${s.url}/echo`, agent, 'POST', [disposition, multipartType, hidden]);
      t.equal(r.status, 400, `${h2 ? 'h2' : 'h1'} ${disposition}: 400`);
      t.equal(r.json<{ code: string }>().code, 'ERR_REQUEST_INVALID', `${disposition}: ERR_REQUEST_INVALID`);
      t.equal(s.events.at(-1)?.['warden.rule'], 'overrides.multipart', `${disposition}: rule overrides.multipart`);
      t.equal(backend.requests.length, before, `${disposition}: not forwarded`);
    }
  }
  const events = s.events.filter((e) => e.name === 'warden.http.smuggling' && e['warden.rule'] === 'overrides.method_field');
  t.equal(events.length, refused.length * 2, 'one warden.http.smuggling event per refusal, rule overrides.method_field');
});

t.test("access log: the backend's time (upstream_ms) apart from the whole (duration_ms)", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    routes: [
      { id: 'slow', path: '/slow' },
      { id: 'closed', path: '/closed', access: { action: 'deny' } },
    ],
  });
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    t.equal((await fetchText(`${s.url}/slow?ms=150`, agent)).status, 200);
    t.equal((await fetchText(`${s.url}/closed`, agent)).status, 403);
  }
  await new Promise((r) => setTimeout(r, 400)); // access lines go out in batches (line-batcher.ts)
  const lines = s.logs.filter((l) => l.msg === 'request');
  const slow = lines.filter((l) => l['url.path'] === '/slow');
  t.equal(slow.length, 2, 'one line per protocol');
  for (const l of slow) {
    const upstream = l.upstream_ms as number;
    const whole = l.duration_ms as number;
    t.ok(
      upstream >= 145 && upstream <= whole,
      `HTTP/${String(l['network.protocol.version'])}: the backend took ${upstream} of ${whole} ms`,
    );
  }
  const refused = lines.filter((l) => l['url.path'] === '/closed');
  t.equal(refused.length, 2);
  t.ok(
    refused.every((l) => !('upstream_ms' in l)),
    'a request the sidecar answered itself has no upstream time',
  );
});

t.test("a 304 that keeps the 200's Content-Length reaches the client whole, over HTTP/1.1 and h2", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {});
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const res = await fetchText(`${s.url}/page`, agent, { headers: { 'if-none-match': '"v1"' } });
    t.equal(res.status, 304, h2 ? 'h2' : 'HTTP/1.1');
    t.equal(res.headers.etag, '"v1"');
  }
  t.notOk(
    s.events.some((e) => e.name === 'warden.upstream.failed'),
    'no upstream failure reported',
  );
});

t.test('access log: an operationId with quotes is escaped, not spliced into the line', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const id = 'list","level":"fatal","injected":"yes';
  const document = openApiFile(
    `openapi: 3.0.3\ninfo: { title: t, version: '1' }\npaths:\n  /items:\n    get:\n      operationId: '${id}'\n      responses: { '200': { description: ok } }\n`,
  );
  const s = await startTestSidecar(t, backend.url, { openapi: { document, allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${s.url}/items`, agent)).status, 200);
  await new Promise((r) => setTimeout(r, 400)); // access lines go out in batches (line-batcher.ts)
  const line = s.logs.find((l) => l.msg === 'request' && l['url.path'] === '/items');
  t.ok(line, 'the access line parses');
  t.equal(line?.['http.route'], id, 'the whole operationId is the route');
  t.equal(line?.level, 'info');
  t.notOk(line && 'injected' in line, 'no field forged');
});

t.test('routing and the access stage over real connections; refusals never reach the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    routes: [
      { id: 'api', path: '/api/*', methods: ['GET'] },
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
      { id: 'partners', path: '/partners/*', access: { clients: { allow: ['10.0.0.0/8'] } } },
    ],
  });
  const agent = testAgent(s.ca, { h2: true });
  t.teardown(() => agent.close());
  const cases: [string, string, number, string | undefined][] = [
    ['GET', '/api/x', 200, undefined],
    ['GET', '/admin/x', 403, 'ERR_ACCESS_DENIED'],
    ['GET', '/%61dmin/x', 403, 'ERR_ACCESS_DENIED'],
    ['GET', '/api/../admin/x', 403, 'ERR_ACCESS_DENIED'],
    ['GET', '/partners/x', 403, 'ERR_ACCESS_DENIED'],
    ['GET', '/nowhere', 404, 'ERR_ROUTE_NOT_FOUND'],
    ['POST', '/api/x', 405, 'ERR_METHOD_NOT_ALLOWED'],
    ['GET', '/api%2F..%2Fadmin', 400, 'ERR_PATH_INVALID'],
  ];
  for (const [method, path, status, code] of cases) {
    backend.requests.length = 0;
    const res = await fetchText(`${s.url}${path}`, agent, { method: method as 'GET' });
    t.equal(res.status, status, `${method} ${path} → ${status}`);
    if (code) {
      t.equal(res.headers['content-type'], 'application/problem+json');
      t.equal(res.json().code, code);
      t.equal(backend.requests.length, 0, `${method} ${path} never reached the backend`);
    } else t.equal(backend.requests[0]?.url, path.replace('/%61dmin', '/admin'));
  }
  t.ok(s.events.some((e) => e.name === 'warden.access.denied' && e['warden.rule'] === 'access.action'));
  t.ok(s.events.some((e) => e.name === 'warden.access.denied' && e['warden.rule'] === 'access.clients.allow'));
});

t.test("a subtree rule's root with a format suffix or padding is refused, not passed by the catch-all (row 22b)", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    rate_limits: { key: ['ip'] },
    routes: [
      { id: 'files', path: '/files/*', rate_limit: { rate: 1, per: '1h' } },
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
      { id: 'rest', path: '/*', rate_limit: false },
    ],
  });
  const agent = testAgent(s.ca, { h2: true });
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${s.url}/files/a`, agent)).status, 200, 'the one request /files/* allows an hour');
  const cases: [string, number][] = [
    ['/files/a', 429],
    // Rails reads these as `/files` and `/admin`, the roots of the rules beside them.
    ['/files.json', 400],
    ['/files.', 400],
    ['/files%20', 400],
    ['/Files.json', 400],
    ['/admin/x', 403],
    ['/admin.json', 400],
    ['/admin%20', 400],
    ['/Admin.json', 400],
    ['/readme.json', 200],
  ];
  for (const [path, status] of cases) {
    backend.requests.length = 0;
    const res = await fetchText(`${s.url}${path}`, agent);
    t.equal(res.status, status, `${path} → ${status}`);
    if (status === 400) t.equal(res.json().code, 'ERR_PATH_INVALID', path);
    t.equal(backend.requests.length, status === 200 ? 1 : 0, `${path} ${status === 200 ? 'reached' : 'never reached'} the backend`);
  }
});

t.test('h2: a method HTTP/1.1 could not carry (lower case, unregistered) is refused, even under passthrough', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    routing: { unmatched: 'passthrough' },
    routes: [{ id: 'admin', path: '/admin/*', access: { action: 'deny' } }],
  });
  const session = connect(s.url, { ca: s.ca });
  t.teardown(() => session.close());
  const ask = (method: string, path: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': path });
      let status = 0;
      let body = '';
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
      stream.end();
    });
  t.equal((await ask('GET', '/admin/x')).status, 403, 'GET /admin/x: the route denies it');
  backend.requests.length = 0;
  // Matched by no route, these fell to passthrough's default policy before.
  for (const method of ['get', 'Get', 'delete', 'FOO']) {
    const r = await ask(method, '/admin/x');
    t.equal(r.status, 400, `${method} /admin/x`);
    // (Before, the test backend's own parser refused it: a 400 with no problem body, after Warden forwarded it.)
    t.match(r.body, /"code":"ERR_REQUEST_MALFORMED".*registered HTTP method/, 'refused by the sidecar');
  }
  t.equal(backend.requests.length, 0, 'none reached the backend');
  t.equal((await ask('PATCH', '/other')).status, 200, 'registered methods still pass through');
});

/** A backend that answers every request at once, with `headers`, without reading its body. */
async function answeringBackend(t: Teardown, status: number, headers: Record<string, string | string[]>): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-length': '2', ...headers });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test('an upload the backend answers before reading it: the exchange ends at once, h2 and HTTP/1.1', async (t) => {
  // As backends do with their own 401 or 413. Over h2 the request stream stayed open after the
  // response: the client hung with a flow-control window sent, and at request_timeout a false 408
  // was raised for the request answered 200.
  const backendUrl = await answeringBackend(t, 200, { 'content-type': 'text/plain' });
  const s = await startTestSidecar(t, backendUrl, { limits: { request_timeout: '60s', max_body_bytes: '16MiB' } });
  const cert = await testCertificate();
  const SIZE = 1024 * 1024;
  const CHUNK = Buffer.alloc(16 * 1024, 0x61);
  const session = connect(s.url, { ca: s.ca });
  t.teardown(() => session.destroy());

  // Streamed (over 16 KiB, or no length), read by no stage.
  const h2Upload = (declared: boolean) =>
    new Promise<{ status: number; body: string; rstCode: number | undefined } | 'hung'>((resolve) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/early',
        'content-type': 'application/octet-stream',
        ...(declared ? { 'content-length': String(SIZE) } : {}),
      });
      let status = 0;
      let body = '';
      const hung = setTimeout(() => {
        stream.close(h2constants.NGHTTP2_CANCEL);
        resolve('hung');
      }, 10_000);
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(hung);
        resolve({ status, body, rstCode: stream.rstCode });
      });
      let left = SIZE;
      const pump = () => {
        while (left > 0 && !stream.destroyed) {
          left -= CHUNK.length;
          if (!stream.write(CHUNK)) return void stream.once('drain', pump);
        }
        if (left <= 0) stream.end();
      };
      pump();
    });
  for (const declared of [true, false]) {
    const label = `h2, ${declared ? 'Content-Length' : 'no length'}`;
    const r = await h2Upload(declared);
    if (r === 'hung') {
      t.fail(`${label}: the stream was still open 10 s after the response`);
      continue;
    }
    t.equal(r.status, 200, `${label}: answered`);
    t.equal(r.body, 'ok', `${label}: the whole response`);
    t.equal(r.rstCode, h2constants.NGHTTP2_NO_ERROR, `${label}: the stream ended with NO_ERROR`);
  }
  session.close(); // before the sidecar's drain, which would wait for it
  // HTTP/1.1 ends such an exchange by itself (unchanged).
  for (const chunked of [false, true]) {
    const r = await curl(
      [
        '--http1.1',
        '-m',
        '10',
        '--cacert',
        cert.certFile,
        '-H',
        'content-type: application/octet-stream',
        ...(chunked ? ['-H', 'transfer-encoding: chunked'] : []),
        '--data-binary',
        '@-',
        `${s.url}/early`,
      ],
      Buffer.alloc(SIZE, 0x61),
    );
    t.equal(r.code, 0, `HTTP/1.1${chunked ? ', chunked' : ''}: curl finished (${r.stderr.trim()})`);
    t.equal(r.status, 200);
  }

  await new Promise((r) => setTimeout(r, 400)); // access lines go out in batches (line-batcher.ts)
  const lines = s.logs.filter((l) => l.msg === 'request' && l['url.path'] === '/early');
  t.same(
    lines.map(
      (l) =>
        `${String(l['network.protocol.version'])} ${String(l['http.response.status_code'])} ${l['warden.aborted'] === true ? 'aborted' : 'complete'}`,
    ),
    ['2 200 complete', '2 200 complete', '1.1 200 complete', '1.1 200 complete'],
    'each logged as answered 200 and complete',
  );
  t.same(
    s.events.filter((e) => e.name === 'warden.http.limit_exceeded'),
    [],
    'no limit exceeded (a false 408 at request_timeout before)',
  );
});

t.test('a backend response repeating a single-value field: 502 on HTTP/1.1 and h2 alike; Set-Cookie twice passes', async (t) => {
  // Over h2 Node cannot send it (ERR_HTTP2_HEADER_SINGLE_VALUE): 502, where HTTP/1.1 passed both on.
  const cases: [string, number, Record<string, string | string[]>, string | undefined][] = [
    ['location', 302, { location: ['/a', '/b'] }, 'upstream.duplicate_location'],
    ['content-type', 200, { 'content-type': ['text/plain', 'text/html'] }, 'upstream.duplicate_content_type'],
    ['set-cookie', 200, { 'set-cookie': ['a=1; Path=/', 'b=2; Path=/'] }, undefined],
  ];
  for (const [field, status, headers, rule] of cases) {
    const s = await startTestSidecar(t, await answeringBackend(t, status, headers));
    for (const h2 of [false, true]) {
      const label = `${field} twice, ${h2 ? 'h2' : 'HTTP/1.1'}`;
      const agent = testAgent(s.ca, { h2 });
      t.teardown(() => agent.close());
      const res = await fetchText(`${s.url}/dup`, agent);
      if (rule === undefined) {
        t.equal(res.status, 200, `${label}: passed on`);
        t.same(res.headers['set-cookie'], headers['set-cookie'], `${label}: both cookies`);
        continue;
      }
      t.equal(res.status, 502, `${label}: refused`);
      t.equal(res.json().code, 'ERR_UPSTREAM_PROTOCOL', label);
      t.equal(res.json().detail, `The backend's response has more than one ${field} header.`, `${label}: the detail names the field`);
    }
    const failed = s.events.filter((e) => e.name === 'warden.upstream.failed');
    t.same(
      failed.map((e) => e['warden.rule']),
      rule === undefined ? [] : [rule, rule],
      `${field}: ${rule === undefined ? 'no failure' : `rule ${rule}, on both protocols`}`,
    );
  }
});

t.test('a Host (or :authority) with userinfo, a list or white space is refused, over HTTP/1.1 and h2', async (t) => {
  // RFC 9110 §4.2.4, §7.2: it reached the backend as Host and X-Forwarded-Host, where a backend that
  // checks Host by its prefix and builds absolute URLs from it names the other host (adversarial.md 200).
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const cert = await testCertificate();
  const port = s.port;
  for (const version of ['--http1.1', '--http2']) {
    for (const host of [`localhost@evil.example:${port}`, `evil@localhost:${port}`, `a.example,evil.example`]) {
      const r = await curl([
        version,
        '-s',
        '--cacert',
        cert.certFile,
        '-H',
        `Host: ${host}`,
        '--connect-to',
        `${host}:${port}:127.0.0.1:${port}`,
        `${s.url}/echo`,
      ]);
      t.equal(r.status, 400, `${version} Host ${host}: 400`);
      t.match(r.body, /"code":"ERR_REQUEST_MALFORMED"/);
    }
    for (const host of [`localhost:${port}`, `[::1]:${port}`, `127.0.0.1:${port}`, 'my_host.internal']) {
      const r = await curl([version, '-s', '--cacert', cert.certFile, '-H', `Host: ${host}`, `${s.url}/echo`]);
      t.equal(r.status, 200, `${version} Host ${host}: 200`);
    }
  }
  t.notOk(
    backend.requests.some((r) => /@|,/.test(String(r.headers.host))),
    'the backend never saw them',
  );
});

/**
 * X-Forwarded-Host and -Proto from a trusted proxy: Varnish, Squid, HAProxy (`option forwardfor`)
 * and nginx (a plain proxy_pass) neither set nor strip them, so what reached the backend was the
 * client's own — host-header injection, and behind a caching front a poisoned page for everyone
 * (red team 29, F1). Replaced unless headers.trusted_proxy_headers lists them; listed, believed
 * only in the form Warden takes for Host (adversarial.md 200) and as `http` or `https`.
 */
t.test("a client's X-Forwarded-Host/-Proto through a trusted proxy are replaced unless listed (red team 29 F1)", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { headers: { trusted_proxies: ['127.0.0.0/8'] } });
  const own = `localhost:${s.port}`;
  const sent = [
    ['evil.example', 'http'],
    ['localhost@evil.example', 'https, http'],
    ['evil.example, 127.0.0.1', 'ftp'],
    ['evil.example/x?', ''],
  ];
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    for (const [host, proto] of sent) {
      const res = await fetchText(`${s.url}/echo`, agent, {
        headers: { 'x-forwarded-host': host!, 'x-forwarded-proto': proto!, 'x-forwarded-for': '203.0.113.9' },
      });
      const p = h2 ? 'h2' : 'h1';
      t.equal(res.status, 200, `${p} ${host}: not believed, so not refused either`);
      const seen = res.json<{ headers: Record<string, string> }>().headers;
      t.equal(seen['x-forwarded-host'], own, `${p}: X-Forwarded-Host ${JSON.stringify(host)} replaced by the authority Warden saw`);
      t.equal(seen['x-forwarded-proto'], 'https', `${p}: X-Forwarded-Proto ${JSON.stringify(proto)} replaced by https`);
      t.equal(seen['x-forwarded-for'], `203.0.113.9, 127.0.0.1`, `${p}: X-Forwarded-For's trusted chain as before`);
    }
  }
  // Two of each, as a client behind the front may send them (Node joins them with ", ").
  const twice = await rawTlsRequest(
    s.port,
    s.ca,
    `GET /echo HTTP/1.1\r\nhost: ${own}\r\nx-forwarded-host: evil.example\r\nx-forwarded-host: other.example\r\nx-forwarded-proto: http\r\nx-forwarded-proto: http\r\nconnection: close\r\n\r\n`,
  );
  t.match(twice, /^HTTP\/1\.1 200 /, 'two of each: answered');
  t.match(twice, new RegExp(`"x-forwarded-host":"${own}"`), 'two X-Forwarded-Host: replaced');
  t.match(twice, /"x-forwarded-proto":"https"/, 'two X-Forwarded-Proto: replaced');
});

t.test(
  'X-Forwarded-Host/-Proto listed in trusted_proxy_headers: believed from a trusted proxy, in the form of a Host and http or https',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const listing = { trusted_proxy_headers: ['x-forwarded-host', 'x-forwarded-proto'] };
    const s = await startTestSidecar(t, backend.url, { headers: { trusted_proxies: ['127.0.0.0/8'], ...listing } });
    // Listed, but the socket is no trusted proxy: replaced, never refused.
    const untrusting = await startTestSidecar(t, backend.url, { headers: { trusted_proxies: ['10.0.0.0/8'], ...listing } });
    const good = [
      ['app.example', 'https'],
      ['app.example:8443', 'http'],
      ['[2001:db8::1]:8443', 'https'],
    ];
    const badHosts = ['localhost@evil.example', 'evil.example, 127.0.0.1', 'evil.example/x?', 'evil.example 127.0.0.1', ':8443'];
    const badProtos = ['ftp', 'https, http', 'HTTPS, HTTP', 'javascript', 'http://evil.example'];
    for (const h2 of [false, true]) {
      const p = h2 ? 'h2' : 'h1';
      const agent = testAgent(s.ca, { h2 });
      t.teardown(() => agent.close());
      for (const [host, proto] of good) {
        const res = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-host': host!, 'x-forwarded-proto': proto! } });
        t.equal(res.status, 200, `${p} ${host} ${proto}: 200`);
        const seen = res.json<{ headers: Record<string, string> }>().headers;
        t.equal(seen['x-forwarded-host'], host, `${p}: a listed X-Forwarded-Host believed`);
        t.equal(seen['x-forwarded-proto'], proto, `${p}: a listed X-Forwarded-Proto believed`);
      }
      // Schemes are case-insensitive (RFC 3986 §3.1): any case believed, and passed on in lower case (review1 F5).
      for (const proto of ['HTTPS', 'Http']) {
        const res = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-host': 'app.example', 'x-forwarded-proto': proto } });
        t.equal(res.status, 200, `${p} X-Forwarded-Proto ${proto}: 200`);
        const seen = res.json<{ headers?: Record<string, string> }>().headers;
        t.equal(seen?.['x-forwarded-proto'], proto.toLowerCase(), `${p}: ${proto} passed on lower-cased`);
      }
      const none = await fetchText(`${s.url}/echo`, agent);
      const seenNone = none.json<{ headers: Record<string, string> }>().headers;
      t.equal(seenNone['x-forwarded-host'], `localhost:${s.port}`, `${p}: listed but not sent: the authority`);
      t.equal(seenNone['x-forwarded-proto'], 'https', `${p}: listed but not sent: https`);

      const before = backend.requests.length;
      for (const host of badHosts) {
        const res = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-host': host, 'x-forwarded-proto': 'https' } });
        t.equal(res.status, 400, `${p} X-Forwarded-Host ${JSON.stringify(host)}: 400`);
        t.match(res.text, /"code":"ERR_REQUEST_MALFORMED"/);
        t.equal(s.events.at(-1)?.['warden.rule'], 'host.form', `${p} X-Forwarded-Host ${JSON.stringify(host)}: rule host.form`);
      }
      for (const proto of badProtos) {
        const res = await fetchText(`${s.url}/echo`, agent, { headers: { 'x-forwarded-host': 'app.example', 'x-forwarded-proto': proto } });
        t.equal(res.status, 400, `${p} X-Forwarded-Proto ${JSON.stringify(proto)}: 400`);
        t.match(res.text, /"code":"ERR_REQUEST_MALFORMED"/);
        t.equal(s.events.at(-1)?.['warden.rule'], 'proto.form', `${p} X-Forwarded-Proto ${JSON.stringify(proto)}: rule proto.form`);
      }
      t.equal(backend.requests.length, before, `${p}: no refused request reached the backend`);

      const other = testAgent(untrusting.ca, { h2 });
      t.teardown(() => other.close());
      for (const host of ['evil.example', ...badHosts]) {
        const res = await fetchText(`${untrusting.url}/echo`, other, { headers: { 'x-forwarded-host': host, 'x-forwarded-proto': 'ftp' } });
        t.equal(res.status, 200, `${p}: from no trusted proxy, ${JSON.stringify(host)} is not refused`);
        const seen = res.json<{ headers: Record<string, string> }>().headers;
        t.equal(seen['x-forwarded-host'], `localhost:${untrusting.port}`, `${p}: but replaced`);
        t.equal(seen['x-forwarded-proto'], 'https', `${p}: and its X-Forwarded-Proto too`);
      }
    }
    // Two fields of either (Node joins them with ", "), or an empty one: not one host, not one scheme.
    const raw = (fields: string) =>
      rawTlsRequest(s.port, s.ca, `GET /echo HTTP/1.1\r\nhost: localhost:${s.port}\r\n${fields}connection: close\r\n\r\n`);
    const before = backend.requests.length;
    t.match(
      await raw('x-forwarded-host: a.example\r\nx-forwarded-host: b.example\r\n'),
      /^HTTP\/1\.1 400 [\s\S]*ERR_REQUEST_MALFORMED/,
      'two X-Forwarded-Host: 400',
    );
    t.match(await raw('x-forwarded-host:\r\n'), /^HTTP\/1\.1 400 [\s\S]*ERR_REQUEST_MALFORMED/, 'an empty X-Forwarded-Host: 400');
    t.match(
      await raw('x-forwarded-proto: https\r\nx-forwarded-proto: https\r\n'),
      /^HTTP\/1\.1 400 [\s\S]*ERR_REQUEST_MALFORMED/,
      'two X-Forwarded-Proto: 400',
    );
    t.equal(backend.requests.length, before, 'none reached the backend');
    // The same over h2: two fields of a name reach Node's handler joined too.
    const session = connect(s.url, { ca: s.ca });
    t.teardown(() => session.close());
    const h2Twice = (fields: Record<string, string[]>) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/echo', ...fields });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
    t.equal(await h2Twice({ 'x-forwarded-host': ['a.example', 'b.example'] }), 400, 'h2: two X-Forwarded-Host: 400');
    t.equal(await h2Twice({ 'x-forwarded-proto': ['https', 'https'] }), 400, 'h2: two X-Forwarded-Proto: 400');
    t.equal(backend.requests.length, before, 'none reached the backend');
    const believed = await raw('x-forwarded-host: app.example\r\nx-forwarded-proto: http\r\n');
    t.match(believed, /^HTTP\/1\.1 200 /, 'one of each: answered');
    t.match(believed, /"x-forwarded-host":"app\.example"/, 'one X-Forwarded-Host: believed');
    t.match(believed, /"x-forwarded-proto":"http"/, 'one X-Forwarded-Proto: believed');
  },
);

t.test("the caller gets Warden's request id, whatever id the backend answers with (red team 29)", async (t) => {
  const backend = createServer((_req, res) => {
    res.setHeader('x-request-id', ['backend-own-id-123', 'second']);
    res.end('ok');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, `http://127.0.0.1:${(backend.address() as AddressInfo).port}`);
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const res = await fetchText(`${s.url}/x`, agent);
  t.equal(res.status, 200);
  t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, "one id, Warden's");
  const logged = s.logs.find((l) => l.msg === 'request' && l['url.path'] === '/x');
  t.equal(res.headers['x-request-id'], logged?.['warden.request.id'], 'the one in the access line');
});
