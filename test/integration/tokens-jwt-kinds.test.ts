/**
 * With `jwt.typ` unset (the default), a JWT whose JOSE `typ` names another kind of token is not an
 * access token (RFC 8725 §3.11, explicit typing): a real oidc-provider's back-channel logout token
 * (`typ: logout+jwt`, an `events` claim, `aud` = the client id an accepted audience is also) was
 * minted for its `sub` and reached the backend, as were hand-made `secevent+jwt`,
 * `token-introspection+jwt`, `dpop+jwt` and `id_token+jwt` tokens (red team 27c). What real IdPs
 * put in their access tokens' `typ` still passes: none (Cognito, Okta), `JWT` (Keycloak, Azure AD,
 * Auth0's default, Ping), `at+jwt` in either spelling (RFC 9068: Auth0, Duende, OpenIddict) and
 * Okta's `application/okta-internal-at+jwt`.
 */
import t from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);

/** What this test uses of oidc-provider beyond src/dev/oidc-provider.d.ts. */
interface LogoutCapable {
  Client: { find(id: string): Promise<{ backchannelLogout(sub: string, sid: string): Promise<void> } | undefined> };
}

async function listen(t: Teardown, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test("a real IdP's back-channel logout token is refused; its access token passes", async (t) => {
  // The RP's back-channel logout endpoint: where the provider POSTs the logout token.
  const received: string[] = [];
  const rp = await listen(t, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const issuer = await listen(t, (req, res) => handler(req, res));
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const secret = 'x'.repeat(40);
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: 'idp-1', use: 'sig', alg: 'ES256' }] },
    // oidc-provider hands its own undici dispatcher to fetch; the global fetch takes none.
    fetch: (url: string, options: Record<string, unknown>) => {
      delete options.dispatcher;
      return fetch(url, options);
    },
    routes: { jwks: '/jwks', token: '/token' },
    scopes: ['openid', 'orders:read'],
    clients: [
      {
        client_id: 'spa-app',
        client_secret: secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'orders:read',
        backchannel_logout_uri: `${rp}/bcl`,
        backchannel_logout_session_required: true,
      },
    ],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      backchannelLogout: { enabled: true },
      // One app registration for the SPA and its API: the API's audience is the client id.
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:spa-api',
        useGrantedResource: () => false,
        getResourceServerInfo: () => ({
          scope: 'orders:read',
          audience: 'spa-app',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  handler = provider.callback();
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  // The default configuration: no jwt.typ.
  const { url, ca, events } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'corp', issuer, audience: ['spa-app'] }] },
    routes: [{ id: 'me', path: '/me', methods: ['GET'] }],
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const call = (token: string) => fetchText(`${url}/me`, agent, { headers: { authorization: `Bearer ${token}` } });

  const issued = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`spa-app:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=orders:read',
  });
  const access = ((await issued.json()) as { access_token: string }).access_token;
  t.equal(decodeProtectedHeader(access).typ, 'at+jwt', "the provider's access token says at+jwt");
  t.equal((await call(access)).status, 200, 'its access token: 200');

  const client = await (provider as unknown as LogoutCapable).Client.find('spa-app');
  await client?.backchannelLogout('alice', 'sid-123');
  const logout = received[0] ?? '';
  t.equal(decodeProtectedHeader(logout).typ, 'logout+jwt', 'a logout token, typ logout+jwt');
  t.match(decodeJwt(logout), { sub: 'alice', aud: 'spa-app', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
  const before = backend.requests.length;
  const res = await call(logout);
  t.equal(res.status, 401, 'the logout token: 401');
  t.equal(res.json<{ code: string }>().code, 'ERR_AUTHN_TOKEN_INVALID');
  t.equal(events.at(-1)?.['warden.rule'], 'jwt.typ', 'refused for its typ');
  t.equal(backend.requests.length, before, 'nothing reached the backend, nothing was minted');
});

t.test('with jwt.typ unset, a typ naming another kind of JWT is refused; what IdPs put in access tokens passes', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const { url, ca, events } = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['api'] }] },
  });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());
  const claims = { iss: idp.issuer, aud: 'api', sub: 'alice', scope: 'orders:read' };
  const call = (token: string) => fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });

  const refused: [string, unknown][] = [
    ['logout+jwt', 'logout+jwt'],
    ['application/logout+jwt', 'application/logout+jwt'],
    ['LOGOUT+JWT', 'LOGOUT+JWT'],
    ['secevent+jwt (RFC 8417)', 'secevent+jwt'],
    ['token-introspection+jwt (RFC 9701)', 'token-introspection+jwt'],
    ['application/token-introspection+jwt', 'Application/Token-Introspection+JWT'],
    ['dpop+jwt (RFC 9449)', 'dpop+jwt'],
    ['id_token+jwt', 'id_token+jwt'],
    ['oauth-authz-req+jwt (RFC 9101)', 'oauth-authz-req+jwt'],
    ['client-attestation+jwt', 'client-attestation+jwt'],
    ['kb+jwt (SD-JWT key binding)', 'kb+jwt'],
    ['vc+sd-jwt', 'vc+sd-jwt'],
    ['entity-statement+jwt (OpenID Federation)', 'entity-statement+jwt'],
    // The non-access names as +jwt types too (second review rt27, F5).
    ['refresh+jwt', 'refresh+jwt'],
    ['application/refresh-token+jwt', 'application/refresh-token+jwt'],
    ['id+jwt', 'id+jwt'],
    ['client-authentication+jwt (rfc7523bis)', 'client-authentication+jwt'],
    ['oauth-id-jag+jwt', 'oauth-id-jag+jwt'],
    ['Keycloak refresh', 'Refresh'],
    ['id_token', 'id_token'],
    ['a number', 42],
  ];
  for (const [name, typ] of refused) {
    const before = backend.requests.length;
    const res = await call(idp.signRaw({ ...claims, exp: now() + 120 }, { typ }));
    t.equal(res.status, 401, `typ ${name}: 401`);
    t.equal(res.json<{ code: string }>().code, 'ERR_AUTHN_TOKEN_INVALID', `typ ${name}: ERR_AUTHN_TOKEN_INVALID`);
    t.equal(events.at(-1)?.['warden.rule'], 'jwt.typ', `typ ${name}: rule jwt.typ`);
    t.equal(backend.requests.length, before, `typ ${name}: nothing reached the backend`);
  }

  const accepted: [string, string | undefined][] = [
    ['absent (Cognito, Okta custom servers)', undefined],
    ['JWT (Keycloak, Azure AD, Ping)', 'JWT'],
    ['jwt', 'jwt'],
    ['at+jwt', 'at+jwt'],
    ['AT+JWT', 'AT+JWT'],
    ['application/at+jwt', 'application/at+jwt'],
    ["Okta's application/okta-internal-at+jwt", 'application/okta-internal-at+jwt'],
    ['JOSE (RFC 7515 §4.1.9)', 'JOSE'],
    // Access tokens typed otherwise than RFC 9068 (review of row 450): the IDS DAPS's DATs,
    // home-grown authorization servers'.
    ['jwt+at (IDS DAPS)', 'jwt+at'],
    ['access-token+jwt', 'access-token+jwt'],
    ['JOSE+JSON', 'JOSE+JSON'],
    ['vnd.ms.at+jwt', 'vnd.ms.at+jwt'],
    ['valid-token+jwt (no ID-token word)', 'valid-token+jwt'],
    // `at` as a word says access token (third review rt27, F4).
    ['at-dpop+jwt', 'at-dpop+jwt'],
    ['refreshable-at+jwt', 'refreshable-at+jwt'],
    ['proof-of-possession+jwt', 'proof-of-possession+jwt'],
  ];
  // Naming their client, as access tokens do (Cognito `client_id`, Okta `cid`): untyped and naming
  // none is an ID token's shape (tokens-id-token-untyped.test.ts).
  for (const [name, typ] of accepted) {
    const res = await call(idp.signRaw({ ...claims, client_id: 'web', exp: now() + 120 }, { typ }));
    t.equal(res.status, 200, `typ ${name}: 200`);
  }

  // A logout token or SET under an unremarkable typ is told by its events claim (OIDC Back-Channel
  // Logout §2.4, RFC 8417 §2.2).
  const set = idp.signRaw(
    { ...claims, exp: now() + 120, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } },
    { typ: 'JWT' },
  );
  const res = await call(set);
  t.equal(res.status, 401, 'typ JWT with an events claim: 401');
  t.equal(events.at(-1)?.['warden.rule'], 'token.events', 'rule token.events');
});
