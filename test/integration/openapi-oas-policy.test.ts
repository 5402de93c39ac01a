/**
 * OpenAPI features Warden must enforce or refuse at load (the second red-team round on OpenAPI
 * features): an apiKey scheme where the token is read, object query parameters whose schema says
 * `object` only through allOf or as a map, and server URLs that are relative references. Each
 * case with a real sidecar and a recording backend: what is refused never reaches it.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const OAUTH = `oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: 'https://idp/t', scopes: { 'pets:admin': a, 'pets:read': r } } } }`;

const apiKeyDocument = (scheme: string) => `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /admin/stats:
    get:
      operationId: adminStats
      security: [ { partnerKey: [] }, { oauth: ['pets:admin'] } ]
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    ${OAUTH}
    partnerKey: ${scheme}
`;

t.test('an apiKey scheme where a token is read is refused at start; elsewhere the key works and a token is no key', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const issuers = [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }];
  const refused = [
    ['{ type: apiKey, in: header, name: Authorization }', {}, /the Authorization header/],
    ['{ type: apiKey, in: header, name: authorization }', {}, /the Authorization header/],
    ['{ type: apiKey, in: header, name: DPoP }', {}, /the DPoP header/],
    [
      '{ type: apiKey, in: header, name: X-Token }',
      { sources: [{ from: 'authorization' }, { from: 'header', name: 'X-Token' }] },
      /"x-token"/,
    ],
    ['{ type: apiKey, in: cookie, name: at }', { sources: [{ from: 'cookie', name: 'at' }] }, /the cookie "at"/],
    ['{ type: apiKey, in: query, name: access_token }', { sources: [{ from: 'query', name: 'access_token' }] }, /the query "access_token"/],
  ] as const;
  for (const [scheme, sources, where] of refused) {
    await t.rejects(
      startTestSidecar(t, backend.url, { tokens: { issuers, ...sources }, openapi: { document: openApiFile(apiKeyDocument(scheme)) } }),
      { message: /#\/components\/securitySchemes\/partnerKey: apiKey scheme "partnerKey" is sent in .*X-Api-Key/ },
      `${scheme}: refused, naming the scheme and the fix`,
    );
    await t.rejects(
      startTestSidecar(t, backend.url, { tokens: { issuers, ...sources }, openapi: { document: openApiFile(apiKeyDocument(scheme)) } }),
      { message: where },
      `${scheme}: the message says where the token is read`,
    );
  }

  // The same document with the key in a header of its own: the key alone, or the scope.
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers },
    openapi: { document: openApiFile(apiKeyDocument('{ type: apiKey, in: header, name: X-Api-Key }')) },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = (scope: string) => idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', scope, exp: Math.floor(Date.now() / 1000) + 300 });
  const call = async (headers: Record<string, string>) => (await fetchText(`${s.url}/admin/stats`, agent, { headers })).status;
  const before = backend.requests.length;
  t.equal(await call({ authorization: `Bearer ${await token('pets:read')}` }), 403, 'a pets:read token is not the key (before: 200)');
  t.equal(backend.requests.length, before, 'and is not forwarded');
  t.equal(await call({ 'x-api-key': 'k-1' }), 200, 'the key alone');
  t.equal(backend.requests.at(-1)?.headers['x-api-key'], 'k-1', 'reaches the backend');
  t.equal(await call({ authorization: `Bearer ${await token('pets:admin')}` }), 200, 'or the scope');
});
