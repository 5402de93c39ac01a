/**
 * With `jwt.typ` unset, an OpenID Connect ID token that says nothing of its kind: oidc-provider's,
 * from an ordinary authorization-code flow with PKCE and no nonce, has a header without `typ` and
 * exactly {sub, aud, exp, iat, iss} — no at_hash, c_hash or nonce for the earlier heuristic — and
 * where the accepted audience is the client id (one app registration for a SPA and its API) it was
 * minted for and reached the backend (red team 29, finding 2). Access tokens name their client
 * (RFC 9068 `client_id`, Okta `cid`, Keycloak / Auth0 / Azure AD v2 `azp`, Azure AD v1 `appid`,
 * Cognito `client_id`); an ID token names it only in `aud`. Also here: the JWKS circuit's
 * `Retry-After` (finding 3) and the cap on the keys a token without `kid` is tried against (finding 4).
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);

async function listen(t: Teardown, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An ID token from oidc-provider's authorization-code flow (PKCE, no nonce), driven through its dev interactions. */
async function codeFlowIdToken(t: Teardown): Promise<{ issuer: string; idToken: string }> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const issuer = await listen(t, (req, res) => handler(req, res));
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const redirect = 'http://127.0.0.1:9/cb';
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'k1' }] },
    clients: [
      {
        client_id: 'shop-spa',
        token_endpoint_auth_method: 'none',
        redirect_uris: [redirect],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
    findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    routes: { jwks: '/jwks' },
  });
  handler = provider.callback();

  const jar = new Map<string, string>();
  const go = async (url: string, init: RequestInit = {}) => {
    const res = await fetch(new URL(url, issuer), {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [kv = ''] = c.split(';');
      const i = kv.indexOf('=');
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return { location: res.headers.get('location') ?? undefined, text: await res.text() };
  };
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  let r = await go(
    `/auth?client_id=shop-spa&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(redirect)}&code_challenge=${challenge}&code_challenge_method=S256&state=s1`,
  );
  let code: string | null = null;
  for (let step = 0; step < 10 && !code; step++) {
    if (r.location?.startsWith(redirect)) code = new URL(r.location).searchParams.get('code');
    else if (r.location) r = await go(r.location);
    else {
      const uid = /\/interaction\/([^/"?]+)/.exec(r.text)?.[1] ?? '';
      const body = r.text.includes('name="login"') ? 'prompt=login&login=alice&password=x' : 'prompt=consent';
      r = await go(`/interaction/${uid}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    }
  }
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: redirect,
      code_verifier: verifier,
      client_id: 'shop-spa',
    }),
  });
  return { issuer, idToken: ((await res.json()) as { id_token: string }).id_token };
}

t.test('a real oidc-provider ID token (code flow, no nonce) is not an access token under jwt.require_client', async (t) => {
  const { issuer, idToken } = await codeFlowIdToken(t);
  t.equal(decodeProtectedHeader(idToken).typ, undefined, 'the ID token has no typ');
  t.same(Object.keys(decodeJwt(idToken)).sort(), ['aud', 'exp', 'iat', 'iss', 'sub'], 'and names its client only in aud');
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { url, ca, events } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'corp', issuer, audience: ['shop-spa'], jwt: { require_client: true } }] },
    routes: [{ id: 'profile', path: '/profile', methods: ['GET'] }],
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const res = await fetchText(`${url}/profile`, agent, { headers: { authorization: `Bearer ${idToken}` } });
  t.equal(res.status, 401, 'the ID token: 401');
  t.equal(res.json<{ code: string }>().code, 'ERR_AUTHN_TOKEN_INVALID');
  t.equal(events.at(-1)?.['warden.rule'], 'token.id_token', 'rule token.id_token');
  t.equal(backend.requests.length, 0, 'nothing reached the backend');
});

t.test('with require_client and jwt.typ unset, an untyped JWT naming no client is refused; one naming its client passes', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const open = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { require_client: true } }] },
  });
  // Off by default: GitHub Actions, GitLab CI, Dex, Vault and Kubernetes access tokens have the ID-token shape.
  const byDefault = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'] }] },
  });
  const typed = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { typ: 'JWT' } }] },
  });
  const agent = testAgent(open.ca);
  t.teardown(() => agent.close());
  const call = (s: { url: string }, token: string) => fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
  const idShaped = { iss: idp.issuer, aud: 'api', sub: 'alice', iat: now() };

  for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt']) {
    const before = backend.requests.length;
    const res = await call(open, idp.signRaw({ ...idShaped, exp: now() + 120 }, { typ }));
    t.equal(res.status, 401, `typ ${typ ?? 'absent'}, no client: 401`);
    t.equal(open.events.at(-1)?.['warden.rule'], 'token.id_token', `typ ${typ ?? 'absent'}, no client: rule token.id_token`);
    t.equal(backend.requests.length, before, `typ ${typ ?? 'absent'}, no client: nothing reached the backend`);
  }
  const again = await call(open, idp.signRaw({ ...idShaped, scope: 'orders:read', exp: now() + 120 }, { typ: undefined }));
  t.equal(again.status, 200, 'with a scope it is an access token (no ID token carries one; home-grown issuers name no client)');

  // What IdPs' access tokens carry (claims and header as each issues them).
  const accessTokens: [string, Record<string, unknown>, string | undefined][] = [
    ['Keycloak (typ JWT, azp)', { azp: 'shop-spa', typ: 'Bearer', scope: 'openid profile' }, 'JWT'],
    ['Auth0 (typ JWT, azp)', { azp: 'abc123', scope: 'read:orders' }, 'JWT'],
    ['Okta (no typ, cid)', { cid: '0oa1', uid: '00u1', scp: ['orders:read'], ver: 1 }, undefined],
    ['Azure AD v1 (typ JWT, appid)', { appid: '1111-2222', ver: '1.0' }, 'JWT'],
    ['Azure AD v2 (typ JWT, azp)', { azp: '1111-2222', ver: '2.0', scp: 'orders.read' }, 'JWT'],
    ['Cognito (no typ, client_id)', { client_id: '7abc', token_use: 'access', scope: 'orders/read' }, undefined],
    ['RFC 9068 (at+jwt, client_id)', { client_id: 'shop-spa', scope: 'orders:read' }, 'at+jwt'],
    ['a client-credentials token (no sub, client_id)', { sub: undefined, client_id: 'batch', scope: 'orders:read' }, 'JWT'],
    ['RFC 9068 (at+jwt, no client: typed)', {}, 'at+jwt'],
    ['JOSE, no client', {}, 'JOSE'],
  ];
  for (const [name, claims, typ] of accessTokens) {
    const res = await call(open, idp.signRaw({ ...idShaped, ...claims, exp: now() + 120 }, { typ }));
    t.equal(res.status, 200, `${name}: 200`);
  }

  // jwt.typ set decides alone.
  t.equal((await call(typed, idp.signRaw({ ...idShaped, exp: now() + 120 }, { typ: 'JWT' }))).status, 200, 'jwt.typ JWT: no client, 200');
  // The default admits the shape: workload and CI tokens (GitHub Actions, GitLab, Vault, Dex) have it (review of red team 29).
  for (const typ of [undefined, 'JWT'])
    t.equal(
      (await call(byDefault, idp.signRaw({ ...idShaped, repository: 'o/r', exp: now() + 120 }, { typ }))).status,
      200,
      `require_client unset, typ ${typ ?? 'absent'}, no client, no scope: 200`,
    );
});

t.test('jwt.require_client: false admits access tokens that name no client (Kubernetes service-account tokens)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const { url, ca } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'], jwt: { require_client: false } }] },
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const sa = {
    iss: idp.issuer,
    aud: 'api',
    sub: 'system:serviceaccount:shop:web',
    iat: now(),
    nbf: now(),
    exp: now() + 120,
    'kubernetes.io': { namespace: 'shop' },
  };
  const res = await fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${idp.signRaw(sa, { typ: undefined })}` } });
  t.equal(res.status, 200, 'no typ, no client: 200');
});

t.test('while the JWKS circuit is open, 503 says Retry-After = open_for', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  // Failing from the start: a good fetch would start the 30 s refetch cooldown (forged kids then cost none).
  idp.failJwks = true;
  const { url, ca, events } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'] }], idp: { breaker: { failures: 2, open_for: '7s' } } },
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const key = idp.foreignKey();
  let res;
  for (let i = 0; i < 5; i++) {
    const token = await idp.sign(
      { iss: idp.issuer, aud: 'api', sub: 'alice', client_id: 'c', exp: now() + 120 },
      { kid: `forged-${i}` },
      key,
    );
    res = await fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
    if (events.at(-1)?.['warden.rule'] === 'jwks.circuit_open') break;
  }
  t.equal(res?.status, 503);
  t.equal(events.at(-1)?.['warden.rule'], 'jwks.circuit_open', 'the circuit opened');
  t.equal(res?.headers['retry-after'], '7', 'Retry-After: open_for in seconds');
});

t.test('a JWT without kid is tried against at most 8 of the published keys', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  for (let i = 0; i < 40; i++) await idp.publishNextKey(`next-${i}`);
  const { url, ca, events } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'] }] },
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const claims = { iss: idp.issuer, aud: 'api', sub: 'alice', client_id: 'c' };
  const call = (token: string) => fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });

  const good = idp.signRaw({ ...claims, exp: now() + 120 }, { kid: undefined });
  t.equal((await call(good)).status, 200, 'a valid token without kid, signed with the first key: 200');
  const junk = await idp.sign({ ...claims, exp: now() + 120 }, { kid: undefined }, idp.foreignKey());
  const started = performance.now();
  const res = await call(junk);
  const ms = performance.now() - started;
  t.equal(res.status, 401, 'a forged token without kid: 401');
  t.equal(events.at(-1)?.['warden.rule'], 'jwt.kid', 'rule jwt.kid: more keys match than are tried');
  t.comment(`forged token without kid against 41 keys: ${ms.toFixed(1)} ms`);
});
