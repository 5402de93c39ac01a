/**
 * What a caller or a hostile IdP can make of the sidecar's calls to identity providers: junk
 * tokens are the IdP's verdict on those tokens, not an IdP outage (the circuit stays closed for
 * everyone else); a JWKS endpoint that rate-limits, is missing or answers a page is a failing
 * IdP, so forged kids cannot cost a fetch each; a key set past the 1 MiB answer cap is refused,
 * not parsed; an https issuer's discovery cannot send secrets and tokens over plain http.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import t from 'tap';
import { request } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { spawnWarden, startTestSidecar, testConfigYaml } from '../support/sidecar.js';

type Teardown = { teardown(fn: () => unknown): void };

/** A plain HTTP server answering with `handle`, counting its requests by path. */
async function server(t: Teardown, handle: (req: IncomingMessage, res: ServerResponse, url: string) => void) {
  const seen: string[] = [];
  const s = createHttpServer((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    handle(req, res, `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    s.closeAllConnections();
    s.close();
  });
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, seen };
}

const send = (res: ServerResponse, status: number, type: string, body: string) =>
  void res.writeHead(status, { 'content-type': type }).end(body);

t.test('junk tokens the IdP refuses with 400 are 401s and leave the circuit closed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const s = await startTestSidecar(t, backend.url, {
    tokens: {
      issuers: [demoIssuer(idp)],
      idp: { breaker: { failures: 3, open_for: '30s' } },
    },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const call = (token: string) => fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
  // Shaped like a JWT (three segments, but a `~` no base64 holds: not a JWS, nor a respelled one,
  // so introspected): oidc-provider answers 400 unsupported_token_type.
  for (let i = 0; i < 6; i++) {
    const junk = await call(`eyJhbGciOiJub25lIn0.eyJ${i}9.N~`);
    t.equal(junk.status, 401, `junk token ${i}: 401`);
    t.equal(junk.json().code, 'ERR_AUTHN_TOKEN_INACTIVE');
  }
  t.equal((await call((await idp.issueToken()).accessToken)).status, 200, 'a good token afterwards: the circuit is closed');
  t.notOk(
    s.events.some((e) => e.name === 'warden.authn.idp_unavailable'),
    'no junk token counted as an IdP failure',
  );
});

t.test(
  'a JWKS endpoint that answers 429, 404, a page or a set jose refuses opens the circuit: forged kids do not cost a fetch each',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const good = { ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)), kid: 'good', alg: 'ES256' };
    for (const [status, type, body] of [
      [429, 'application/json', '{"error":"slow_down"}'],
      [404, 'text/html', '<h1>Not found</h1>'],
      [200, 'text/html', '<h1>Maintenance</h1>'],
      // A "keys" array with an entry that is not a JSON object (a broken deploy): jose refuses the
      // whole set, so it was no good fetch either (it counted as one, and started no cooldown).
      [200, 'application/json', JSON.stringify({ keys: [good, null] })],
      [200, 'application/json', JSON.stringify({ keys: [good, ['kty', 'EC']] })],
    ] as const) {
      const idp = await server(t, (req, res, issuer) =>
        req.url === '/.well-known/openid-configuration'
          ? send(res, 200, 'application/json', JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }))
          : send(res, status, type, body),
      );
      const s = await startTestSidecar(t, backend.url, {
        tokens: { issuers: [{ id: 'idp', issuer: idp.url, audience: ['api'] }], idp: { breaker: { failures: 3, open_for: '30s' } } },
      });
      const agent = testAgent(s.ca);
      t.teardown(() => agent.close());
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const now = Math.floor(Date.now() / 1000);
      const statuses = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const forged = await new SignJWT({ sub: 'x' })
          .setProtectedHeader({ alg: 'ES256', kid: randomUUID() })
          .setIssuer(idp.url)
          .setAudience('api')
          .setExpirationTime(now + 60)
          .sign(privateKey);
        statuses.add((await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${forged}` } })).status);
      }
      const fetches = idp.seen.filter((u) => u === '/jwks').length;
      t.ok(fetches <= 4, `JWKS ${status} ${type} ${body.slice(0, 12)}: ${fetches} fetches for 20 forged kids (the breaker opens after 3)`);
      t.same([...statuses], [503], 'each refused as the IdP being unavailable');
    }
  },
);

t.test('a key set larger than the 1 MiB answer cap is refused, not parsed', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let size = 0;
  const idp = await server(t, (req, res, issuer) => {
    if (req.url === '/.well-known/openid-configuration')
      return send(res, 200, 'application/json', JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    const body = JSON.stringify({ keys: [jwk], padding: 'x'.repeat(1536 * 1024) });
    size = body.length;
    send(res, 200, 'application/json', body);
  });
  const s = await startTestSidecar(t, backend.url, { tokens: { issuers: [{ id: 'idp', issuer: idp.url, audience: ['api'] }] } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = await new SignJWT({ sub: 'x' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(idp.url)
    .setAudience('api')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
    .sign(privateKey);
  const res = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
  t.ok(size > 1024 * 1024, `the key set is ${size} bytes`);
  t.equal(res.status, 503, 'refused as a broken IdP');
  t.equal(res.json().code, 'ERR_IDP_UNAVAILABLE');
});

t.test('an https issuer whose discovery names plain-http endpoints is refused; nothing goes over http', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  const plain = await server(t, (_req, res) => send(res, 200, 'application/json', '{"active":true}'));
  const tls = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const issuer = `https://localhost:${(tls.address() as AddressInfo).port}`;
    if (req.url === '/.well-known/openid-configuration')
      return send(
        res,
        200,
        'application/json',
        JSON.stringify({ issuer, jwks_uri: `${plain.url}/jwks`, introspection_endpoint: `${plain.url}/introspect` }),
      );
    send(res, 404, 'application/json', '{}');
  });
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    tls.closeAllConnections();
    tls.close();
  });
  const issuer = `https://localhost:${(tls.address() as AddressInfo).port}`;
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      tokens: { issuers: [{ id: 'corp', issuer, audience: ['api'], introspection: { client_id: 'sidecar', client_secret: 's3cret' } }] },
    }),
    // The IdP's certificate is the test one: trusted by this process alone.
    { NODE_EXTRA_CA_CERTS: cert.certFile },
  );
  const res = await request(`${warden.url}/x`, {
    dispatcher: testAgent(cert.certPem),
    headers: { authorization: 'Bearer opaque-caller-token' },
  });
  const body = (await res.body.json()) as { code?: string };
  t.equal(res.statusCode, 503);
  t.equal(body.code, 'ERR_IDP_UNAVAILABLE');
  t.same(plain.seen, [], 'no secret, token or key fetch went over plain http');
  await warden
    .waitFor((l) => /plain http for an https issuer/.test(JSON.stringify(l)), 5000)
    .then(
      () => t.pass('the reason is logged'),
      () => t.fail('the reason is logged'),
    );
});
