/**
 * Discovery for an issuer with a path (`http://h/tenant1`). RFC 8414 §3.1 puts the well-known segment
 * between host and path (`/.well-known/oauth-authorization-server/tenant1`); Warden asked only the
 * appended forms (`/tenant1/.well-known/…`), so a plain OAuth server publishing its metadata where
 * the RFC says got 503 on every token, and the log said the IdP was "not reachable" though it had
 * answered 404 (red team 27c). Asked now, in order: OIDC Discovery's appended
 * `/tenant1/.well-known/openid-configuration`, RFC 8414's inserted form, then the legacy appended
 * `/tenant1/.well-known/oauth-authorization-server`; a document naming another issuer is refused.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const INSERTED = '/.well-known/oauth-authorization-server/tenant1';
const OIDC = '/tenant1/.well-known/openid-configuration';
const LEGACY = '/tenant1/.well-known/oauth-authorization-server';

/**
 * An authorization server for the issuer `<origin>/tenant1` whose metadata is at `at` (or nowhere),
 * naming `named` as its issuer (its own by default); it records the paths asked.
 */
async function tenantServer(t: Teardown, at: string | undefined, named?: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === at) return json({ issuer: named ?? issuer, jwks_uri: `${issuer}/jwks` });
    if (req.url === '/tenant1/jwks') return json({ keys: [jwk] });
    res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant1`;
  const token = () =>
    new SignJWT({ sub: 'alice', client_id: 'app' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience('api')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 120)
      .sign(privateKey);
  return { issuer, asked, token };
}

async function sidecarFor(t: Teardown, issuer: string) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { tokens: { issuers: [{ id: 'as', issuer, audience: ['api'] }] } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  return { ...s, call: async (token: string) => fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } }) };
}

const discoveryAsked = (asked: string[]) => asked.filter((p) => p.includes('/.well-known/'));

t.test('metadata where RFC 8414 §3.1 puts it, between host and path: found', async (t) => {
  const as = await tenantServer(t, INSERTED);
  const s = await sidecarFor(t, as.issuer);
  const res = await s.call(await as.token());
  t.equal(res.status, 200, 'a token of the issuer: 200');
  t.same(discoveryAsked(as.asked), [OIDC, INSERTED], 'OIDC Discovery first, then the RFC 8414 form, where it stopped');
});

t.test('the appended forms still work: OIDC alone is asked of an OpenID provider; the legacy oauth form last', async (t) => {
  for (const [at, expected] of [
    [OIDC, [OIDC]],
    [LEGACY, [OIDC, INSERTED, LEGACY]],
  ] as const) {
    const as = await tenantServer(t, at);
    const s = await sidecarFor(t, as.issuer);
    t.equal((await s.call(await as.token())).status, 200, `metadata at ${at}: 200`);
    t.same(discoveryAsked(as.asked), expected, `metadata at ${at}: asked ${expected.join(', ')}`);
  }
});

t.test('a document at the RFC 8414 form naming another issuer is refused (mix-up)', async (t) => {
  const as = await tenantServer(t, INSERTED, 'http://127.0.0.1:1/tenant1');
  const s = await sidecarFor(t, as.issuer);
  const res = await s.call(await as.token());
  t.equal(res.status, 503, '503: no metadata of this issuer');
  t.ok(
    s.logs.some((l) => /names issuer "http:\/\/127\.0\.0\.1:1\/tenant1"/.test(String(l.err))),
    'the log names the issuer the document claimed',
  );
});

t.test('no metadata anywhere: the log says what the IdP answered, not that it was unreachable', async (t) => {
  const as = await tenantServer(t, undefined);
  const s = await sidecarFor(t, as.issuer);
  t.equal((await s.call(await as.token())).status, 503, '503');
  t.same(discoveryAsked(as.asked).slice(0, 3), [OIDC, INSERTED, LEGACY], 'all three forms asked');
  const warned = s.logs.filter((l) => l.level === 'warn' || (typeof l.level === 'number' && l.level >= 40));
  t.notOk(
    warned.some((l) => /not reachable/.test(String(l.msg))),
    'not "not reachable"',
  );
  t.ok(
    warned.some((l) => /answered 404/.test(`${String(l.msg)} ${String(l.err)}`)),
    `the status is logged: ${JSON.stringify(warned.map((l) => [l.msg, l.err]))}`,
  );
});
