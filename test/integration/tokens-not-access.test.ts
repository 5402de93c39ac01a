/**
 * Only access tokens pass: an introspection answer (RFC 7662) that says the token is a refresh or
 * ID token — token_type `refresh_token` or `id_token`, Keycloak's `typ` `Refresh`, `Offline` or
 * `ID` — is 401 ERR_AUTHN_TOKEN_INVALID with the default `token_types: []`; once, each got 200 and
 * a minted token. Ory Hydra's `token_use: "access_token"` is an access token: with the real
 * oidc-provider adding that claim, opaque (introspected) and JWT access tokens pass.
 *
 * oidc-provider never says what a refresh token is (it leaves token_type out of such an answer),
 * so those answers come from an HTTP server answering RFC 7662 as the IdPs named do.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend, type TestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { introspectingSidecar } from '../support/introspecting-sidecar.js';
import { startTestSidecar, type Teardown } from '../support/sidecar.js';

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** The `sub` of the token minted for the backend's last request, if one reached it since `before` requests. */
function mintedSub(backend: TestBackend, before: number): unknown {
  const auth = backend.requests.length > before ? backend.requests.at(-1)?.headers.authorization : undefined;
  return typeof auth === 'string' ? decodeJwt(auth.slice('Bearer '.length)).sub : undefined;
}

/** An introspection endpoint answering `answers[token]` (active), else `{active: false}`. */
async function rfc7662Server(t: Teardown, answers: Record<string, Record<string, unknown>>): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const answer = answers[new URLSearchParams(body).get('token') ?? ''];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer ? { active: true, ...answer } : { active: false }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
}

t.test('an introspection answer naming a refresh or ID token is refused with token_types empty', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const base = { sub: 'alice', aud: 'api', client_id: 'web', scope: 'orders:read', exp };
  const refused: Record<string, [Record<string, unknown>, string]> = {
    'refresh-token': [{ token_type: 'refresh_token' }, 'token.token_type'],
    'id-token': [{ token_type: 'id_token' }, 'token.token_type'],
    'rfc8693-refresh': [{ token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 'token.token_type'],
    'keycloak-refresh': [{ typ: 'Refresh' }, 'token.typ'],
    'keycloak-offline': [{ typ: 'Offline' }, 'token.typ'],
    'keycloak-id': [{ typ: 'ID' }, 'token.typ'],
    'hydra-refresh': [{ token_use: 'refresh_token', token_type: 'Bearer' }, 'token.token_use'],
    // An OIDC back-channel logout token or RFC 8417 SET, told by its events claim.
    'logout-token': [{ events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }, 'token.events'],
  };
  const accepted: Record<string, Record<string, unknown>> = {
    bearer: { token_type: 'Bearer' },
    'keycloak-access': { typ: 'Bearer' },
    'hydra-access': { token_use: 'access_token', token_type: 'Bearer' },
  };
  const answers: Record<string, Record<string, unknown>> = {};
  for (const [token, [claims]] of Object.entries(refused)) answers[token] = { ...base, ...claims };
  for (const [token, claims] of Object.entries(accepted)) answers[token] = { ...base, ...claims };
  const endpoint = await rfc7662Server(t, answers);
  const { url, ca, events } = await introspectingSidecar(t, backend.url, endpoint);
  const agent = testAgent(ca);
  t.teardown(() => agent.close());

  for (const [token, [, rule]] of Object.entries(refused)) {
    const res = await fetchText(`${url}/x`, agent, bearer(token));
    t.equal(res.status, 401, `${token}: 401`);
    t.equal(res.json<{ code: string }>().code, 'ERR_AUTHN_TOKEN_INVALID', `${token}: ERR_AUTHN_TOKEN_INVALID`);
    t.equal(events.at(-1)?.['warden.rule'], rule, `${token}: rule ${rule}`);
  }
  t.equal(backend.requests.length, 0, 'no refused token reached the backend, nor was minted for');
  for (const token of Object.keys(accepted)) {
    const before = backend.requests.length;
    const res = await fetchText(`${url}/x`, agent, bearer(token));
    t.equal(res.status, 200, `${token}: an access token, 200`);
    t.equal(mintedSub(backend, before), 'alice', `${token}: minted for alice`);
  }
});

t.test('the real IdP adding Hydra\'s token_use "access_token": opaque and JWT access tokens pass', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp({ extraTokenClaims: { token_use: 'access_token' } });
  t.teardown(() => idp.close());
  const { url, ca } = await startTestSidecar(t, backend.url, { tokens: { issuers: [{ ...demoIssuer(idp), jwt: { typ: 'at+jwt' } }] } });
  const agent = testAgent(ca);
  t.teardown(() => agent.close());

  const opaque = (await idp.issueToken()).accessToken;
  const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
  t.equal(decodeJwt(jwt).token_use, 'access_token', 'the IdP put token_use in the JWT');
  // The JWT names the client in sub (RFC 9068 §2.2); the introspection answer has none, so the
  // minted sub is the client's (minter.ts).
  for (const [kind, token, sub] of [
    ['opaque', opaque, 'client:demo-client'],
    ['JWT', jwt, 'demo-client'],
  ] as const) {
    const before = backend.requests.length;
    const res = await fetchText(`${url}/x`, agent, bearer(token));
    t.equal(res.status, 200, `${kind}: 200`);
    t.equal(mintedSub(backend, before), sub, `${kind}: minted`);
  }
  t.equal(idp.introspectionCount, 1, 'the opaque token was introspected (its answer holds token_use)');
});
