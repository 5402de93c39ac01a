/**
 * The demo IdP is a real oidc-provider: tokens over HTTP, introspection with each client
 * authentication method Warden supports, revocation, RFC 9068 JWT access tokens verified against
 * its JWKS, and the test knobs (introspection count and delay, going down).
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { createRemoteJWKSet, importPKCS8, jwtVerify, SignJWT } from 'jose';
import { request } from 'undici';
import { startDemoIdp, type DemoIdp } from '../../../src/dev/demo-idp.js';

type Auth = 'basic' | 'post' | 'privateKeyJwt';

/** Introspects `token` as Warden would, authenticating with `auth`; `aud` is the private_key_jwt assertion audience. */
async function introspect(idp: DemoIdp, token: string, auth: Auth = 'basic', aud = idp.introspectionEndpoint) {
  const form = new URLSearchParams({ token });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const { basic, post, privateKeyJwt } = idp.introspectionClients;
  if (auth === 'basic') headers.authorization = `Basic ${Buffer.from(`${basic.clientId}:${basic.clientSecret}`).toString('base64')}`;
  if (auth === 'post') {
    form.set('client_id', post.clientId);
    form.set('client_secret', post.clientSecret);
  }
  if (auth === 'privateKeyJwt') {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: privateKeyJwt.alg, kid: privateKeyJwt.kid })
      .setIssuer(privateKeyJwt.clientId)
      .setSubject(privateKeyJwt.clientId)
      .setAudience(aud)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(await importPKCS8(privateKeyJwt.privateKeyPem, privateKeyJwt.alg));
    form.set('client_id', privateKeyJwt.clientId);
    form.set('client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    form.set('client_assertion', assertion);
  }
  const res = await request(idp.introspectionEndpoint, { method: 'POST', headers, body: form.toString() });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function start(t: { teardown(fn: () => unknown): void }) {
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  return idp;
}

t.test('an opaque token introspects as active with each client auth method, then inactive once revoked', async (t) => {
  const idp = await start(t);
  t.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  t.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
  const issued = await idp.issueToken({ scope: 'orders:read pets:read' });
  t.equal(issued.scope, 'orders:read pets:read');
  t.equal(issued.expiresIn, 600);
  t.notMatch(issued.accessToken, /^eyJ/, 'opaque, not a JWT');

  const now = Math.floor(Date.now() / 1000);
  for (const auth of ['basic', 'post', 'privateKeyJwt'] as const) {
    const { status, body } = await introspect(idp, issued.accessToken, auth);
    t.equal(status, 200, auth);
    t.match(body, { active: true, scope: 'orders:read pets:read', client_id: idp.demoClient.clientId, iss: idp.issuer }, auth);
    t.ok(Math.abs((body.exp as number) - (now + 600)) <= 5, `${auth}: exp is issue time + ttl`);
  }
  // private_key_jwt: oidc-provider accepts the issuer, the token endpoint or the introspection endpoint as aud.
  for (const aud of [idp.issuer, idp.tokenEndpoint])
    t.match((await introspect(idp, issued.accessToken, 'privateKeyJwt', aud)).body, { active: true });
  t.equal(
    (await introspect(idp, issued.accessToken, 'privateKeyJwt', 'https://elsewhere.example')).status,
    401,
    'any other aud is refused',
  );

  await idp.revoke(issued.accessToken);
  t.same((await introspect(idp, issued.accessToken)).body, { active: false });
  t.same((await introspect(idp, 'no-such-token')).body, { active: false });
});

t.test('tokens for other clients and wrong credentials', async (t) => {
  const idp = await start(t);
  const other = await idp.issueToken({ clientId: 'svc-orders', scope: 'orders:write' });
  t.match((await introspect(idp, other.accessToken)).body, { active: true, client_id: 'svc-orders', scope: 'orders:write' });
  await idp.revoke(other.accessToken);
  t.match((await introspect(idp, other.accessToken)).body, { active: false });
  t.equal((await idp.issueToken()).scope, 'orders:read orders:write pets:read pets:write', 'every demo scope by default');
  t.equal((await idp.issueToken({ scope: 'admin orders:read' })).scope, 'orders:read', 'a scope the IdP does not know is dropped');

  const { status, body } = await request(idp.introspectionEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      token: other.accessToken,
      client_id: idp.introspectionClients.post.clientId,
      client_secret: 'wrong',
    }).toString(),
  }).then(async (r) => ({ status: r.statusCode, body: await r.body.json() }));
  t.equal(status, 401);
  t.match(body, { error: 'invalid_client' });
});

t.test('with the JWT resource the IdP issues an RFC 9068 access token verifiable against its JWKS', async (t) => {
  const idp = await start(t);
  const issued = await idp.issueToken({ resource: 'urn:warden:demo-api', scope: 'orders:read orders:write' });
  const { payload, protectedHeader } = await jwtVerify(issued.accessToken, createRemoteJWKSet(new URL(idp.jwksUri)), {
    issuer: idp.issuer,
    audience: 'urn:warden:demo-api',
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  t.equal(protectedHeader.alg, 'ES256');
  t.match(payload, { scope: 'orders:read orders:write', client_id: idp.demoClient.clientId, sub: idp.demoClient.clientId });
  t.ok((payload.exp ?? 0) - (payload.iat ?? 0) === 600);
  // oidc-provider refuses to introspect (or revoke) structured tokens.
  t.match(await introspect(idp, issued.accessToken), { status: 400, body: { error: 'unsupported_token_type' } });
  await t.rejects(idp.issueToken({ resource: 'urn:other-api' }), /invalid_target/);
});

t.test('introspection is counted and can be slowed down', async (t) => {
  const idp = await start(t);
  const { accessToken } = await idp.issueToken();
  t.equal(idp.introspectionCount, 0, 'issuing does not count');
  await introspect(idp, accessToken);
  await introspect(idp, accessToken, 'post');
  t.equal(idp.introspectionCount, 2);
  idp.resetCounts();
  t.equal(idp.introspectionCount, 0);

  idp.setIntrospectionDelay(200);
  let started = performance.now();
  t.match((await introspect(idp, accessToken)).body, { active: true });
  t.ok(performance.now() - started >= 195, 'the delay applies');
  idp.setIntrospectionDelay(0);
  started = performance.now();
  await introspect(idp, accessToken);
  t.ok(performance.now() - started < 200, 'and can be removed');
  t.equal(idp.introspectionCount, 2);
});

t.test('close() takes the IdP down: connections are refused', async (t) => {
  const idp = await start(t);
  const { accessToken } = await idp.issueToken();
  await idp.close();
  await t.rejects(introspect(idp, accessToken), { code: 'ECONNREFUSED' });
  await t.rejects(idp.issueToken(), { code: 'ECONNREFUSED' });
  await idp.close(); // idempotent: the teardown closes again
});
