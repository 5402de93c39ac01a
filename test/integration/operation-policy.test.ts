/**
 * Policy written per OpenAPI operation (`openapi.operations.<id>`) is held to the same checks as a
 * route's: scopes there without a tokens section were dropped and the operation served anyone; and
 * on a public operation (`security: []`, `allow_public`) the operator's scopes replace "public"
 * instead of leaving a scope check with no caller to check.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const DOCUMENT = `openapi: 3.0.3
info: { title: t, version: '1' }
servers: [{ url: /v1 }]
paths:
  /admin/stats:
    get:
      operationId: adminStats
      responses: { '200': { description: ok } }
  /health:
    get:
      operationId: health
      security: []
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: 'https://idp/t', scopes: { admin: a } } } }
`;

t.test('openapi.operations: scopes without tokens refused at start; scopes on a public operation need a caller', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = openApiFile(DOCUMENT);

  await t.rejects(
    startTestSidecar(t, backend.url, { openapi: { document, operations: { adminStats: { scopes: { all_of: ['admin'] } } } } }),
    { message: /openapi\.operations\.adminStats\.scopes: needs a tokens section/ },
    'refused, naming the operation',
  );

  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
    openapi: { document, allow_public: true, operations: { health: { scopes: { all_of: ['admin'] } } } },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = (scope: string) => idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', scope, exp: Math.floor(Date.now() / 1000) + 300 });
  const call = async (scope?: string) =>
    (
      await fetchText(
        `${s.url}/v1/health`,
        agent,
        scope === undefined ? {} : { headers: { authorization: `Bearer ${await token(scope)}` } },
      )
    ).status;
  t.equal(await call('admin'), 200, 'a token with the scope is served');
  t.equal(await call('other'), 403, 'a token without it is not');
  t.equal(await call(), 401, 'nor is a caller without a token');
});

t.test('security schemes by type: an API key must be sent, http basic cannot be met beside a token (defect 169)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = openApiFile(
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /items/{id}:
    delete:
      operationId: deleteItem
      parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
      security: [{ key: [] }, { oauth: ['items:admin'] }]
      responses: { '204': { description: gone } }
components:
  securitySchemes:
    oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: 'https://idp/t', scopes: { 'items:admin': a } } } }
    key: { type: apiKey, in: header, name: X-API-Key }
    basic: { type: http, scheme: basic }
`,
  );
  const idp = await startForgedIssuer(t);
  const tokens = { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] };
  const s = await startTestSidecar(t, backend.url, { tokens, openapi: { document } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = (scope: string) => idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', scope, exp: Math.floor(Date.now() / 1000) + 300 });
  const call = async (scope: string, headers: Record<string, string> = {}) => {
    const r = await fetchText(`${s.url}/items/7`, agent, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${await token(scope)}`, ...headers },
    });
    return r.status === 403 ? `403 ${r.json<{ code: string }>().code}` : String(r.status);
  };
  const before = backend.requests.length;
  t.equal(await call('items:write'), '403 ERR_AUTHZ_SCOPE_MISSING', 'neither the key nor the scope: refused (before, 200)');
  t.equal(backend.requests.length, before, 'and not forwarded');
  t.equal(await call('items:write', { 'x-api-key': 'k-1' }), '200', 'the key sent: its value is the backend’s to check');
  t.equal(backend.requests.at(-1)?.headers['x-api-key'], 'k-1', 'and it reaches the backend');
  t.equal(await call('items:admin'), '200', 'or the scope');

  const basicOnly = openApiFile(
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /items:
    get:
      operationId: listItems
      security: [{ basic: [] }]
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    basic: { type: http, scheme: basic }
`,
  );
  await t.rejects(
    startTestSidecar(t, backend.url, { tokens, openapi: { document: basicOnly } }),
    { message: /#\/paths\/~1items\/get\/security: every requirement needs a scheme a bearer token cannot meet \("basic" \(http basic\)\)/ },
    'a document whose only requirement is http basic is refused at start, naming the operation',
  );
});
