/**
 * authn-jwt against a real issuer (discovery + JWKS over HTTP) with test-owned keys: valid tokens
 * reach the backend as a minted token; every classic JWT attack is refused with 401 before the
 * backend; an unknown kid refetches the JWKS at most once per cooldown; keys stay usable while
 * the issuer is down.
 */
import t from 'tap';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';
import { startTestBackend } from '../support/backend.js';
import { fetchText, oneConnectionClient, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);
/** An RFC 8693 act claim `links` actors long: `{sub, act: {sub, act: …}}`. */
const actChain = (links: number): Record<string, unknown> => {
  let act: Record<string, unknown> = { sub: 'svc-0' };
  for (let i = 1; i < links; i++) act = { sub: `svc-${i}`, act };
  return act;
};

t.test('JWT access tokens', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const { url, ca, adminUrl, events } = await startTestSidecar(t, backend.url, {
    service: { name: 'orders' },
    tokens: {
      issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['orders-api'], jwt: { algorithms: ['ES256'], typ: 'at+jwt' } }],
      leeway: '5s',
      max_token_bytes: '4KiB',
      mint: { audience: 'orders-backend', jwks_path: '/.well-known/jwks.json' },
    },
    routes: [
      { id: 'orders', path: '/echo', scopes: { all_of: ['orders:read'] } },
      { id: 'echo-authorization', path: '/echo-authorization', scopes: { all_of: ['orders:read'] } },
      { id: 'public', path: '/public', authn: { mode: 'off' } },
    ],
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const claims = { sub: 'alice', client_id: 'shop-web', scope: 'orders:read', aud: 'orders-api', iss: idp.issuer };
  const call = (token: string | undefined, path = '/echo') =>
    fetchText(`${url}${path}`, agent, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

  await t.test('a valid token: the backend gets a minted token that verifies with the sidecar JWKS, never the external one', async (t) => {
    const external = await idp.sign({ ...claims, exp: now() + 120, iat: now() });
    const before = backend.requests.length;
    const res = await call(external);
    t.equal(res.status, 200);
    const seen = backend.requests[before]?.headers ?? {};
    const auth = String(seen.authorization ?? '');
    t.match(auth, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const minted = auth.slice('Bearer '.length);
    t.not(minted, external, 'the external token is replaced');
    t.notOk(JSON.stringify(seen).includes(external), 'the external token appears nowhere in what the backend received');
    const jwks = createRemoteJWKSet(new URL(`${adminUrl}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(minted, jwks, {
      audience: 'orders-backend',
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    t.equal(protectedHeader.alg, 'ES256');
    t.equal(payload.iss, 'urn:warden:orders');
    t.equal(payload.sub, 'alice');
    t.equal(payload.client_id, 'shop-web');
    t.equal(payload.scope, 'orders:read');
    t.type(payload.jti, 'string');
    t.ok((payload.exp as number) - (payload.iat as number) <= 300, 'default lifetime ≤ 5 min');
    // The same JWKS on the inbound listener, for other services.
    const inbound = await fetchText(`${url}/.well-known/jwks.json`, agent);
    t.equal(inbound.status, 200);
    const published = inbound.json<{ keys: { kid: string }[] }>().keys.map((k) => k.kid);
    t.equal(published.length, 2, 'the signing key and the next one (published a rotation before it signs)');
    t.equal(published[0], protectedHeader.kid, 'the key that signed it first');
    // The minted token is reused for the same source token.
    await call(external);
    t.equal(backend.requests.at(-1)?.headers.authorization, auth, 'cached minted token reused');
  });

  await t.test('a backend echoing the minted token in a response header: the client never gets it', async (t) => {
    const external = await idp.sign({ ...claims, exp: now() + 120, iat: now() });
    const res = await call(external, '/echo-authorization');
    t.equal(res.status, 200);
    t.match(String(backend.requests.at(-1)?.headers.authorization), /^Bearer /, 'the backend got the minted token');
    t.equal(res.headers.authorization, undefined, 'the Authorization header the backend answered with is dropped');
  });

  await t.test('minted exp never exceeds the source token exp', async (t) => {
    const exp = now() + 20;
    await call(await idp.sign({ ...claims, exp }));
    const minted = String(backend.requests.at(-1)?.headers.authorization).slice(7);
    const payload = JSON.parse(Buffer.from(minted.split('.')[1] as string, 'base64url').toString()) as { exp: number };
    t.ok(payload.exp <= exp, `minted exp ${payload.exp} ≤ source exp ${exp}`);
    // A non-integer exp (RFC 7519 allows it): minted rounded down, an integer ≤ the source's.
    await call(await idp.sign({ ...claims, exp: exp + 0.75 }));
    const fractional = String(backend.requests.at(-1)?.headers.authorization).slice(7);
    const floored = (JSON.parse(Buffer.from(fractional.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp;
    t.equal(floored, exp, `source exp ${exp + 0.75}: minted exp ${floored}`);
  });

  await t.test('attacks and bad tokens are refused with 401 before the backend', async (t) => {
    const exp = now() + 120;
    const fetchesBefore = idp.jwksFetches;
    const bigScope = 'x'.repeat(5000);
    const cases: [string, string, string, string][] = [
      ['alg none', idp.unsigned({ ...claims, exp }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.alg'],
      ['HS256 keyed with the public key', idp.hmacWithPublicKey({ ...claims, exp }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.alg'],
      [
        'signed by a foreign key, unknown kid',
        await idp.sign({ ...claims, exp }, { kid: 'attacker-key' }, idp.foreignKey()),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.kid',
      ],
      [
        'signed by a foreign key, our kid',
        await idp.sign({ ...claims, exp }, {}, idp.foreignKey()),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.signature',
      ],
      [
        'jku header',
        await idp.sign({ ...claims, exp }, { jku: 'http://127.0.0.1:1/attacker-jwks' }, idp.foreignKey()),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.header.jku',
      ],
      [
        'x5u header',
        await idp.sign({ ...claims, exp }, { x5u: 'http://127.0.0.1:1/attacker.pem' }),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.header.x5u',
      ],
      ['embedded jwk header', await idp.sign({ ...claims, exp }, { jwk: { kty: 'EC' } }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.header.jwk'],
      [
        'crit header',
        idp.signRaw({ ...claims, exp }, { crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.header.crit',
      ],
      ['expired', await idp.sign({ ...claims, exp: now() - 60 }), 'ERR_AUTHN_TOKEN_EXPIRED', 'jwt.exp'],
      ['not yet valid (nbf)', await idp.sign({ ...claims, exp, nbf: now() + 600 }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.nbf'],
      // Accepted before (jose checks iat only with a maxTokenAge): adversarial.md 209.
      [
        'issued in the future (iat)',
        await idp.sign({ ...claims, exp: now() + 3600 * 24 * 3650, iat: now() + 3600 }),
        'ERR_AUTHN_TOKEN_INVALID',
        'jwt.iat',
      ],
      // Accepted and minted before; far deeper ones gave 500 (a stack overflow signing the minted token).
      [
        'claims nested 33 levels (an act chain)',
        await idp.sign({ ...claims, exp, act: actChain(32) }),
        'ERR_AUTHN_TOKEN_INVALID',
        'token.claims',
      ],
      [
        'claims nested 1000 levels',
        await idp.sign({ ...claims, exp, junk: JSON.parse(`${'['.repeat(1000)}${']'.repeat(1000)}`) as unknown }),
        'ERR_AUTHN_TOKEN_INVALID',
        'token.claims',
      ],
      ['wrong audience', await idp.sign({ ...claims, exp, aud: 'payments-api' }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.aud'],
      ['no audience', await idp.sign({ sub: 'alice', scope: 'orders:read', iss: idp.issuer, exp }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.aud'],
      ['untrusted issuer', await idp.sign({ ...claims, exp, iss: 'https://evil.example' }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.iss'],
      ['no exp', await idp.sign({ ...claims }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.exp'],
      ['wrong typ', await idp.sign({ ...claims, exp }, { typ: 'JWT' }), 'ERR_AUTHN_TOKEN_INVALID', 'jwt.typ'],
      ['oversize token', await idp.sign({ ...claims, exp, scope: bigScope }), 'ERR_AUTHN_TOKEN_MALFORMED', 'token.size'],
      ['garbage in JWS shape', 'eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln', 'ERR_AUTHN_TOKEN_INVALID', 'jwt.format'],
    ];
    for (const [name, token, code, rule] of cases) {
      const before = backend.requests.length;
      const res = await call(token);
      t.equal(res.status, 401, `${name}: 401`);
      t.equal(res.json().code, code, `${name}: ${code}`);
      t.match(String(res.headers['www-authenticate']), /^Bearer realm="orders", error="invalid_(token|request)"/, `${name}: challenge`);
      t.equal(backend.requests.length, before, `${name}: backend not reached`);
      const event = events.filter((e) => e['warden.code'] === code).at(-1);
      t.equal(event?.['warden.rule'], rule, `${name}: event rule ${rule}`);
      t.notOk(JSON.stringify(event).includes(token.slice(-20)), `${name}: the event does not carry the token`);
    }
    // RFC 7515 §4.1.9: typ may carry its media type's `application/` prefix; either spelling, any case (red team 22a).
    for (const typ of ['application/at+jwt', 'AT+JWT', 'Application/At+Jwt'])
      t.equal((await call(await idp.sign({ ...claims, exp }, { typ }))).status, 200, `typ ${typ}: 200`);
    // 32 levels (the payload and an act chain of 31 actors) are accepted.
    t.equal((await call(await idp.sign({ ...claims, exp, act: actChain(31) }))).status, 200, 'claims nested 32 levels: 200');
    t.ok(
      idp.jwksFetches - fetchesBefore <= 1,
      `unknown kid refetched the JWKS at most once per cooldown (${idp.jwksFetches - fetchesBefore})`,
    );
  });

  await t.test('missing, malformed and insufficient credentials', async (t) => {
    const none = await call(undefined);
    t.equal(none.status, 401);
    t.equal(none.json().code, 'ERR_AUTHN_TOKEN_MISSING');
    t.equal(none.headers['www-authenticate'], 'Bearer realm="orders"');
    const basic = await fetchText(`${url}/echo`, agent, { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } });
    t.equal(basic.json().code, 'ERR_AUTHN_TOKEN_MALFORMED');
    const scopeless = await call(await idp.sign({ ...claims, scope: 'orders:write', exp: now() + 60 }));
    t.equal(scopeless.status, 403);
    t.equal(scopeless.json().code, 'ERR_AUTHZ_SCOPE_MISSING');
    t.equal(scopeless.headers['www-authenticate'], 'Bearer realm="orders", error="insufficient_scope", scope="orders:read"');
    const pub = await fetchText(`${url}/public`, agent, { headers: { authorization: 'Bearer whatever' } });
    t.equal(pub.status, 200, 'public route needs no token');
    t.notOk(backend.requests.at(-1)?.headers.authorization, 'and the external token is not forwarded there either');
  });

  await t.test('keys stay usable while the issuer is down', async (t) => {
    idp.failJwks = true;
    const res = await call(await idp.sign({ ...claims, exp: now() + 60, jti: 'fresh' }));
    t.equal(res.status, 200, 'a new token verifies with the keys already fetched');
    const foreign = await call(await idp.sign({ ...claims, exp: now() + 60 }, { kid: 'rotated-key' }, idp.foreignKey()));
    t.ok([401, 503].includes(foreign.status), `an unknown kid with the issuer down: ${foreign.status}, never 200`);
    idp.failJwks = false;
  });

  t.ok(decodeProtectedHeader, 'jose loaded');
});

/**
 * Two trusted issuers (corp, partner), a route for either and one for corp only, plus `routes`:
 * the backend, both issuers and the sidecar, torn down with `t`.
 */
async function twoIssuers(t: Parameters<typeof startForgedIssuer>[0], routes: Record<string, unknown>[] = []) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const corp = await startForgedIssuer(t);
  const partner = await startForgedIssuer(t);
  const { url, ca } = await startTestSidecar(t, backend.url, {
    tokens: {
      issuers: [
        { id: 'corp', issuer: corp.issuer, audience: ['api'] },
        { id: 'partner', issuer: partner.issuer, audience: ['api'] },
      ],
    },
    routes: [{ id: 'any', path: '/any' }, { id: 'corp-only', path: '/corp', authn: { issuers: ['corp'] } }, ...routes],
  });
  return { backend, corp, partner, url, ca };
}

t.test("issuers' keys: each key that matches is tried; an issuer without keys verifies no JWT", async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  // The next key under the same kid, as some IdPs rotate; and tokens without a kid (optional, RFC 7515).
  const next = await idp.publishNextKey();
  const { url, ca } = await startTestSidecar(t, backend.url, {
    tokens: {
      issuers: [
        { id: 'forge', issuer: idp.issuer, audience: ['orders-api'], jwt: { algorithms: ['ES256'] } },
        // Introspection only: no keys, so no JWT of its can be verified.
        {
          id: 'opaque',
          issuer: 'https://opaque.example',
          discovery: false,
          audience: ['orders-api'],
          introspection: { endpoint: 'http://127.0.0.1:1/introspect', client_id: 'c', client_secret: 's' },
        },
      ],
    },
    routes: [{ id: 'orders', path: '/echo' }],
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const claims = { sub: 'alice', aud: 'orders-api', iss: idp.issuer, exp: now() + 120 };
  const call = async (token: string) => {
    const res = await fetchText(`${url}/echo`, agent, { headers: { authorization: `Bearer ${token}` } });
    return res.status === 200 ? 200 : `${res.status} ${res.json<{ code: string }>().code}`;
  };
  t.equal(await call(await idp.sign(claims)), 200, 'the current key, its kid');
  t.equal(await call(await idp.sign(claims, {}, next)), 200, 'the next key under the same kid');
  t.equal(await call(await idp.sign(claims, { kid: undefined })), 200, 'no kid: the current key');
  t.equal(await call(await idp.sign(claims, { kid: undefined }, next)), 200, 'no kid: the next key');
  t.equal(await call(await idp.sign(claims, {}, idp.foreignKey())), '401 ERR_AUTHN_TOKEN_INVALID', 'a key neither is: refused');
  t.equal(backend.requests.length, 4);
  // Anyone can shape a string as a JWT naming an issuer that has no keys: a refused token, not an IdP outage to retry.
  const forged = await idp.sign({ ...claims, iss: 'https://opaque.example' });
  t.equal(await call(forged), '401 ERR_AUTHN_TOKEN_INVALID', 'a JWT naming an introspection-only issuer: 401, not 503');
});

t.test('one kept-alive connection, several tokens: each request is judged on its own token', async (t) => {
  // The sidecar remembers the hash of a connection's last token (token-hash.ts): it must never
  // stand in for another token, another issuer or another route's mode on that connection.
  const { backend, corp, partner, url, ca } = await twoIssuers(t);
  // One connection for every request below (undici's Client: a single socket, kept alive).
  const { client, connects } = oneConnectionClient(t, url, ca);
  const call = async (path: string, token: string) => {
    const res = await client.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
    await res.body.text();
    const seen = backend.requests.at(-1)?.headers.authorization;
    const sub =
      res.statusCode === 200
        ? (JSON.parse(Buffer.from(String(seen).split('.')[1] as string, 'base64url').toString()) as { sub: string }).sub
        : undefined;
    return { status: res.statusCode, sub };
  };
  const alice = await corp.sign({ sub: 'alice', aud: 'api', iss: corp.issuer, exp: now() + 60 });
  const bob = await partner.sign({ sub: 'bob', aud: 'api', iss: partner.issuer, exp: now() + 60 });
  const expired = await corp.sign({ sub: 'carol', aud: 'api', iss: corp.issuer, exp: now() - 600 });
  const forged = await corp.sign({ sub: 'alice', aud: 'api', iss: corp.issuer, exp: now() + 60 }, {}, corp.foreignKey());

  t.same(await call('/any', alice), { status: 200, sub: 'alice' });
  t.same(await call('/any', alice), { status: 200, sub: 'alice' }, 'the same token again');
  t.same(await call('/any', bob), { status: 200, sub: 'bob' }, 'another token, another issuer');
  t.same(await call('/corp', bob), { status: 401, sub: undefined }, 'the partner token on the corp-only route');
  t.same(await call('/any', alice), { status: 200, sub: 'alice' }, 'back to the first token');
  t.same(await call('/any', expired), { status: 401, sub: undefined }, 'an expired token after a valid one');
  t.same(await call('/any', forged), { status: 401, sub: undefined }, 'a forged token with the same claims as the last valid one');
  t.same(await call('/any', `${alice}x`), { status: 401, sub: undefined }, 'the last valid token with one character more');
  t.same(await call('/corp', alice), { status: 200, sub: 'alice' });
  t.equal(connects(), 1, 'every request went over one connection');
});

t.test('several trusted issuers, routes restricted to some, and the per-route mode', async (t) => {
  const { corp, partner, url, ca } = await twoIssuers(t, [{ id: 'jwt-only', path: '/jwt', authn: { mode: 'jwt' } }]);
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const claims = { sub: 'bob', aud: 'api', exp: now() + 60 };
  const corpToken = await corp.sign({ ...claims, iss: corp.issuer });
  const partnerToken = await partner.sign({ ...claims, iss: partner.issuer });
  const status = async (path: string, token: string) =>
    (await fetchText(`${url}${path}`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
  t.equal(await status('/any', corpToken), 200, 'corp token, any issuer');
  t.equal(await status('/any', partnerToken), 200, 'partner token, any issuer');
  t.equal(await status('/corp', corpToken), 200, 'corp token on the corp-only route');
  const refused = await fetchText(`${url}/corp`, agent, { headers: { authorization: `Bearer ${partnerToken}` } });
  t.equal(refused.status, 401, 'partner token on the corp-only route');
  t.equal(refused.json().code, 'ERR_AUTHN_TOKEN_INVALID');
  const crossSigned = await corp.sign({ ...claims, iss: partner.issuer });
  t.equal(await status('/any', crossSigned), 401, "a token claiming one issuer but signed with another's key");
  const opaque = await fetchText(`${url}/jwt`, agent, { headers: { authorization: 'Bearer opaque-reference-token' } });
  t.equal(opaque.status, 401, 'an opaque token on a jwt-only route');
  t.equal(opaque.json().code, 'ERR_AUTHN_TOKEN_INVALID');
  const noIntrospection = await fetchText(`${url}/any`, agent, { headers: { authorization: 'Bearer opaque-reference-token' } });
  t.equal(noIntrospection.status, 401, 'auto mode with no introspecting issuer: opaque tokens are refused, not forwarded');
});
