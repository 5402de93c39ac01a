/**
 * Sender-constrained tokens against a real OpenID provider (oidc-provider binds a token to the key of
 * the DPoP proof sent to its token endpoint, RFC 9449) and a test issuer's certificate-bound JWTs
 * (RFC 8705): a stolen bound token is refused as a bearer token, the legitimate client gets in with
 * `Authorization: DPoP` and a proof (or its certificate), and every way a proof can be wrong, forged
 * or replayed is refused. Before the fix, the bound tokens were accepted as plain bearer tokens
 * and the DPoP scheme was refused as malformed.
 */
import t from 'tap';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { Agent } from 'undici';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { startTestBackend, type TestBackend } from '../support/backend.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { fetchText, testAgent, type SimpleResponse } from '../support/clients.js';
import { dpopClient } from '../support/dpop.js';
import { startTestSidecar, testConfigYaml, type Teardown } from '../support/sidecar.js';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startForgedIssuer } from '../support/token-forge.js';
import { enrollWorkload } from '../support/workload.js';

const now = () => Math.floor(Date.now() / 1000);
const lastRequest = (backend: TestBackend) => backend.requests.at(-1);
const codeOf = (r: SimpleResponse) => (r.status === 200 ? 200 : `${r.status} ${String(r.json().code)}`);

async function dpopSetup(t: Teardown & { teardown(fn: () => unknown): void }) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());
  const c = idp.introspectionClients.basic;
  const section = (tokens: Record<string, unknown> = {}) => ({
    service: { name: 'orders' },
    tokens: {
      ...tokens,
      issuers: [
        {
          id: 'demo',
          issuer: idp.issuer,
          audience: [idp.audience],
          jwt: { typ: 'at+jwt' },
          introspection: { client_id: c.clientId, client_secret: c.clientSecret },
        },
      ],
    },
    routes: [{ id: 'read', path: '/echo', scopes: { any_of: ['orders:read'] } }],
  });
  const s = await startTestSidecar(t, backend.url, section());
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const get = (headers: Record<string, string>, method = 'GET', path = '/echo') =>
    fetchText(`${s.url}${path}`, agent, { method: method as 'GET', headers });
  /** Reloads with `tokens` changed (a new token runtime). */
  const reload = async (tokens: Record<string, unknown>) => {
    const text = await testConfigYaml(backend.url, section(tokens));
    return s.sidecar.reload(() => parseSidecarConfig('reloaded.yaml', text));
  };
  return { backend, idp, s, agent, get, reload, htu: `${s.url}/echo` };
}

t.test('a DPoP-bound opaque token (introspected): refused as a bearer token, accepted with its proof', async (t) => {
  const { backend, idp, s, get, htu } = await dpopSetup(t);
  const client = await dpopClient();
  const { accessToken: token, tokenType } = await client.tokenFrom(idp);
  t.equal(tokenType, 'DPoP', 'the IdP bound the token to the key');

  const before = backend.requests.length;
  const stolen = await get({ authorization: `Bearer ${token}` });
  t.equal(codeOf(stolen), '401 ERR_AUTHN_TOKEN_UNBOUND', 'stolen token as Bearer, no proof');
  t.match(stolen.headers['content-type'], 'application/problem+json');
  t.match(
    String(stolen.headers['www-authenticate']),
    /^DPoP realm="orders", error="invalid_token", error_description="[^"]+", algs="ES256 /,
  );
  const asBearerWithProof = await get({ authorization: `Bearer ${token}`, dpop: await client.proof('GET', htu, { token }) });
  t.equal(codeOf(asBearerWithProof), '401 ERR_AUTHN_TOKEN_UNBOUND', 'Bearer scheme, even with a valid proof (RFC 9449 §7.2)');
  t.equal(backend.requests.length, before, 'the backend got neither');

  const proof = await client.proof('GET', htu, { token });
  const ok = await get({ authorization: `DPoP ${token}`, dpop: proof });
  t.equal(ok.status, 200, 'the DPoP scheme and a valid proof');
  const forwarded = lastRequest(backend)?.headers;
  t.equal(forwarded?.dpop, undefined, 'the proof is not forwarded');
  t.match(String(forwarded?.authorization), /^Bearer /, 'the backend gets the minted token');
  t.equal(decodeJwt(String(forwarded?.authorization).slice(7)).client_id, idp.demoClient.clientId);

  const replayed = await get({ authorization: `DPoP ${token}`, dpop: proof });
  t.equal(codeOf(replayed), '401 ERR_AUTHN_DPOP_INVALID', 'the same proof again');
  t.match(String(replayed.headers['www-authenticate']), /^DPoP realm="orders", error="invalid_dpop_proof"/);

  const thief = await dpopClient();
  const other = await dpopClient();
  const { accessToken: otherToken } = await other.tokenFrom(idp);
  const cases: [string, string | Promise<string> | undefined, string, string?][] = [
    ['no proof', undefined, '401 ERR_AUTHN_DPOP_INVALID'],
    ['another URI', client.proof('GET', `${s.url}/other`, { token }), '401 ERR_AUTHN_DPOP_INVALID'],
    ['another host', client.proof('GET', `https://elsewhere.example:${s.port}/echo`, { token }), '401 ERR_AUTHN_DPOP_INVALID'],
    ['another method', client.proof('POST', htu, { token }), '401 ERR_AUTHN_DPOP_INVALID'],
    ['the ath of another token', client.proof('GET', htu, { token: otherToken }), '401 ERR_AUTHN_DPOP_INVALID'],
    ['two minutes old', client.proof('GET', htu, { token, iat: now() - 120 }), '401 ERR_AUTHN_DPOP_INVALID'],
    [
      "the owner's jwk, signed by the thief",
      client.proof('GET', htu, { token, signingKey: thief.privateKey }),
      '401 ERR_AUTHN_DPOP_INVALID',
    ],
    ["the thief's own key and a valid proof", thief.proof('GET', htu, { token }), '401 ERR_AUTHN_TOKEN_UNBOUND'],
    ['typ JWT', client.proof('GET', htu, { token, header: { typ: 'JWT' } }), '401 ERR_AUTHN_DPOP_INVALID'],
  ];
  for (const [name, proofOf, expected] of cases) {
    const p = await proofOf;
    const r = await get(p === undefined ? { authorization: `DPoP ${token}` } : { authorization: `DPoP ${token}`, dpop: p });
    t.equal(codeOf(r), expected, name);
  }
  const rules = (name: string) => s.events.filter((e) => e.name === name).map((e) => e['warden.rule']);
  t.same(rules('warden.authn.dpop_invalid').sort(), [
    'dpop.ath',
    'dpop.htm',
    'dpop.htu',
    'dpop.htu',
    'dpop.iat',
    'dpop.missing',
    'dpop.replay',
    'dpop.signature',
    'dpop.typ',
  ]);
  t.same(rules('warden.authn.token_unbound').sort(), ['dpop.jkt', 'dpop.scheme', 'dpop.scheme']);
  t.notOk(JSON.stringify(s.events).includes(token), 'no event carries the token');

  // Tolerated spellings of the same URI (RFC 9449 §4.3), and HTTP/2 (:authority).
  const spelt = `https://LOCALHOST:${s.port}/./echo?x=1#f`;
  t.equal((await get({ authorization: `DPoP ${token}`, dpop: await client.proof('GET', spelt, { token }) })).status, 200, spelt);
  const h2 = testAgent(s.ca, { h2: true });
  t.teardown(() => h2.close());
  const overH2 = await fetchText(`${s.url}/echo`, h2, {
    headers: { authorization: `DPoP ${token}`, dpop: await client.proof('GET', htu, { token }) },
  });
  t.equal(overH2.status, 200, 'over HTTP/2');
});

t.test('a DPoP-bound JWT access token (verified locally): the binding is checked on every request, cache hits included', async (t) => {
  const { backend, idp, get, htu } = await dpopSetup(t);
  const client = await dpopClient();
  const { accessToken: token } = await client.tokenFrom(idp, { resource: idp.audience });
  t.same(decodeJwt(token).cnf, { jkt: client.jkt }, 'the JWT names the key');

  t.equal(codeOf(await get({ authorization: `Bearer ${token}` })), '401 ERR_AUTHN_TOKEN_UNBOUND', 'as Bearer, before it is cached');
  t.equal((await get({ authorization: `DPoP ${token}`, dpop: await client.proof('GET', htu, { token }) })).status, 200);
  t.equal(lastRequest(backend)?.headers.dpop, undefined);
  t.equal(codeOf(await get({ authorization: `Bearer ${token}` })), '401 ERR_AUTHN_TOKEN_UNBOUND', 'as Bearer, once cached');
  const proof = await client.proof('GET', htu, { token });
  t.equal((await get({ authorization: `DPoP ${token}`, dpop: proof })).status, 200, 'a new proof');
  t.equal(codeOf(await get({ authorization: `DPoP ${token}`, dpop: proof })), '401 ERR_AUTHN_DPOP_INVALID', 'replayed');
  t.equal(
    codeOf(await get({ authorization: `DPoP ${token}`, dpop: await client.proof('GET', htu, { token, iat: now() - 90 }) })),
    '401 ERR_AUTHN_DPOP_INVALID',
    'expired',
  );
});

t.test('a DPoP proof is accepted once across a reload that changes tokens (a new runtime)', async (t) => {
  // Each token runtime had a replay cache of its own: after any reload changing `tokens`, every
  // proof seen before could be sent once more within max_age.
  const { idp, get, reload, htu } = await dpopSetup(t);
  const client = await dpopClient();
  const { accessToken: token } = await client.tokenFrom(idp, { resource: idp.audience });
  const proof = await client.proof('GET', htu, { token });
  t.equal((await get({ authorization: `DPoP ${token}`, dpop: proof })).status, 200, 'the proof, once');
  t.ok(await reload({ leeway: '31s' }), 'a reload changing tokens applied');
  t.equal(codeOf(await get({ authorization: `DPoP ${token}`, dpop: proof })), '401 ERR_AUTHN_DPOP_INVALID', 'the same proof after it');
  const fresh = await client.proof('GET', htu, { token });
  t.equal((await get({ authorization: `DPoP ${token}`, dpop: fresh })).status, 200, 'a new proof is accepted');
});

t.test('bearer tokens are unchanged; the DPoP scheme with one is refused, a stray proof beside one ignored', async (t) => {
  const { backend, idp, get, htu } = await dpopSetup(t);
  const { accessToken: token } = await idp.issueToken({ scope: 'orders:read' });
  t.equal((await get({ authorization: `Bearer ${token}` })).status, 200);
  const client = await dpopClient();
  const stray = await get({ authorization: `Bearer ${token}`, dpop: await client.proof('GET', htu, { token }) });
  t.equal(stray.status, 200, 'RFC 9449 §7.2: a proof beside a bearer token is not looked at');
  t.equal(lastRequest(backend)?.headers.dpop, undefined, 'and not forwarded');
  const asDpop = await get({ authorization: `DPoP ${token}`, dpop: await client.proof('GET', htu, { token }) });
  t.equal(codeOf(asDpop), '401 ERR_AUTHN_TOKEN_UNBOUND', 'a bearer token under the DPoP scheme');
  t.equal(codeOf(await get({ authorization: `Basic ${token}` })), '401 ERR_AUTHN_TOKEN_MALFORMED', 'other schemes still refused');
});

t.test('a certificate-bound JWT (cnf x5t#S256, RFC 8705): only on a connection with that certificate', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { ca } = await startCaUnderTest(t);
  const server = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders`, ['localhost']);
  const caller = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`);
  const stranger = await enrollWorkload(ca, `spiffe://${TRUST_DOMAIN}/ns/shop/sa/stranger`);
  const forged = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    service: { name: 'orders' },
    listeners: {
      inbound: { tls: { cert: server.certFile, key: server.keyFile, client_certificates: 'request', client_ca: server.bundleFile } },
    },
    tokens: { issuers: [{ id: 'corp', issuer: forged.issuer, audience: ['orders'] }] },
    routes: [{ id: 'api', path: '/echo' }],
  });
  const agentOf = (w?: { certPem: string; keyPem: string }) => {
    const a = new Agent({ connect: { ca: server.bundlePem, servername: 'localhost', ...(w ? { cert: w.certPem, key: w.keyPem } : {}) } });
    t.teardown(() => a.close());
    return a;
  };
  const withCert = agentOf(caller);
  const withOther = agentOf(stranger);
  const noCert = agentOf();
  const x5t = createHash('sha256')
    .update(new X509Certificate(readFileSync(caller.certFile)).raw)
    .digest('base64url');
  const claims = { iss: forged.issuer, aud: 'orders', sub: 'payments-svc', exp: now() + 600 };
  const bound = await forged.sign({ ...claims, cnf: { 'x5t#S256': x5t } });
  const get = (agent: Agent, token: string) =>
    fetchText(`https://localhost:${s.port}/echo`, agent, { headers: { authorization: `Bearer ${token}` } });

  t.equal((await get(withCert, bound)).status, 200, 'the certificate it is bound to');
  const without = await get(noCert, bound);
  t.equal(codeOf(without), '401 ERR_AUTHN_TOKEN_UNBOUND', 'no certificate (the verified token is cached by now)');
  t.match(String(without.headers['www-authenticate']), /^Bearer realm="orders", error="invalid_token"/);
  t.equal(codeOf(await get(withOther, bound)), '401 ERR_AUTHN_TOKEN_UNBOUND', 'another trusted certificate');
  t.equal((await get(withCert, bound)).status, 200, 'and again with its own');
  t.same(
    decodeJwt(String(lastRequest(backend)?.headers.authorization).slice(7)).cnf,
    { 'x5t#S256': x5t },
    'the minted token binds the same certificate',
  );

  const unknown = await forged.sign({ ...claims, cnf: { jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } } });
  t.equal(codeOf(await get(withCert, unknown)), '401 ERR_AUTHN_TOKEN_UNBOUND', 'a cnf member the sidecar cannot check');
  const dpopTyped = await forged.sign({ ...claims, token_type: 'DPoP' });
  t.equal(codeOf(await get(withCert, dpopTyped)), '401 ERR_AUTHN_TOKEN_UNBOUND', 'token_type DPoP with no key named');
  t.equal((await get(noCert, await forged.sign(claims))).status, 200, 'an unbound token needs no certificate');
  t.same(
    s.events.filter((e) => e.name === 'warden.authn.token_unbound').map((e) => e['warden.rule']),
    ['cnf.x5t', 'cnf.x5t', 'cnf.unknown', 'cnf.jkt'],
  );
});
