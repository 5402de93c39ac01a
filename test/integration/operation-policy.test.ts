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

/** `DELETE /items/{id}` met by an API key in header `keyHeader` or the scope items:admin; `extraSchemes` added as written. */
function keyOrScopeDocument(keyHeader: string, extraSchemes = ''): string {
  return openApiFile(
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
    key: { type: apiKey, in: header, name: ${keyHeader} }
${extraSchemes}`,
  );
}

t.test('security schemes by type: an API key must be sent, http basic cannot be met beside a token (defect 169)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = keyOrScopeDocument('X-API-Key', '    basic: { type: http, scheme: basic }\n');
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

  // A key the backend never receives is not sent: the sidecar drops X-Client-IP from a client that
  // is not a trusted proxy (headers.ts). Before, a token without the scope met {key in X-Real-IP}
  // by sending the header, and the backend got no key (review of row 246: the check reads what goes
  // upstream). X-Real-IP itself, which the sidecar always sets, is now refused at load.
  const dropped = keyOrScopeDocument('X-Client-IP');
  const s2 = await startTestSidecar(t, backend.url, { tokens, openapi: { document: dropped } });
  const before2 = backend.requests.length;
  const r2 = await fetchText(`${s2.url}/items/7`, agent, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${await token('items:write')}`, 'x-client-ip': 'k-1' },
  });
  t.equal(r2.status, 403, 'a key in a header the backend never gets does not meet the alternative (before: 200)');
  t.equal(backend.requests.length, before2, 'and nothing is forwarded');

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

t.test('an alternative met without a token (an API key) needs no token: the token is optional there (adversarial.md 217)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const document = openApiFile(
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /keyed:
    get:
      operationId: keyed
      security: [{ key: [] }]
      responses: { '200': { description: ok } }
  /either:
    get:
      operationId: either
      security: [{ key: [] }, { oauth: ['items:admin'] }]
      responses: { '200': { description: ok } }
  /token:
    get:
      operationId: tokenOnly
      security: [{ oauth: [] }]
      responses: { '200': { description: ok } }
  /token-or-key:
    get:
      operationId: tokenOrKey
      security: [{ oauth: [] }, { key: [] }]
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: 'https://idp/t', scopes: { 'items:admin': a } } } }
    key: { type: apiKey, in: header, name: X-API-Key }
`,
  );
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
    openapi: { document },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = async (scope: string) =>
    `Bearer ${await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', scope, exp: Math.floor(Date.now() / 1000) + 300 })}`;
  const call = async (path: string, headers: Record<string, string> = {}) => {
    const r = await fetchText(`${s.url}${path}`, agent, { headers });
    return r.status === 200 ? '200' : `${r.status} ${r.json<{ code: string }>().code}`;
  };
  t.equal(await call('/keyed', { 'x-api-key': 'k' }), '200', 'the key alone (before: 401 ERR_AUTHN_TOKEN_MISSING)');
  t.equal(await call('/keyed'), '403 ERR_AUTHZ_SCOPE_MISSING', 'nothing sent: no alternative met (no token would do)');
  t.equal(
    await call('/keyed', { 'x-api-key': 'k', authorization: 'Bearer not-a-valid-token' }),
    '401 ERR_AUTHN_TOKEN_INVALID',
    'a token sent is still verified',
  );
  t.equal(await call('/either', { 'x-api-key': 'k' }), '200', 'either: the key alone');
  t.equal(await call('/either', { authorization: await token('items:admin') }), '200', 'or the scope');
  t.equal(
    await call('/either', { authorization: await token('items:read') }),
    '403 ERR_AUTHZ_SCOPE_MISSING',
    'a token without the scope nor the key',
  );
  t.equal(await call('/either'), '401 ERR_AUTHN_TOKEN_MISSING', 'nothing sent');
  t.equal(await call('/token'), '401 ERR_AUTHN_TOKEN_MISSING', 'an operation that only takes a token still needs one');
  t.equal(await call('/token', { authorization: await token('') }), '200', 'any valid token');
  // A token's alternative without scopes beside a key's: nothing sent meets neither (it reached the
  // backend when the scope check was skipped as "any principal will do": adversarial.md 231).
  const reached = backend.requests.length;
  t.equal(await call('/token-or-key'), '401 ERR_AUTHN_TOKEN_MISSING', 'token or key: nothing sent is refused');
  t.equal(backend.requests.length, reached, 'and not forwarded');
  t.equal(await call('/token-or-key', { 'x-api-key': 'k' }), '200', 'the key');
  t.equal(await call('/token-or-key', { authorization: await token('') }), '200', 'or any valid token');

  // Without a tokens section, an operation whose every alternative needs no token loads and is checked.
  const keyedOnly = openApiFile(
    `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /keyed:
    get:
      operationId: keyed
      security: [{ key: [] }]
      responses: { '200': { description: ok } }
components:
  securitySchemes:
    key: { type: apiKey, in: header, name: X-API-Key }
`,
  );
  const plain = await startTestSidecar(t, backend.url, { openapi: { document: keyedOnly } });
  t.equal((await fetchText(`${plain.url}/keyed`, agent, { headers: { 'x-api-key': 'k' } })).status, 200, 'no tokens section: the key');
  t.equal((await fetchText(`${plain.url}/keyed`, agent)).status, 403, 'and without it, refused');
});

t.test(
  'tokens.authn.optional: an operation whose every security alternative needs a token still refuses a caller without one (401)',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const document = openApiFile(`openapi: 3.1.0
info: { title: t, version: '1' }
security: [{ bearer: [] }]
paths:
  /public:
    get: { operationId: pub, security: [], responses: { '200': { description: ok } } }
  /me:
    get: { operationId: me, responses: { '200': { description: ok } } }
  /me-oauth:
    get: { operationId: meOauth, security: [{ oauth: [] }], responses: { '200': { description: ok } } }
  /reports:
    get: { operationId: reports, security: [{ oauth: [reports:read] }], responses: { '200': { description: ok } } }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }
    oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: 'https://idp/t', scopes: { reports:read: r } } } }
`);
    const idp = await startForgedIssuer(t);
    const s = await startTestSidecar(t, backend.url, {
      tokens: { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }], authn: { optional: true } },
      openapi: { document, allow_public: true },
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', scope: 'other', exp: Math.floor(Date.now() / 1000) + 300 });
    const anonymous = async (path: string) => {
      const r = await fetchText(`${s.url}${path}`, agent);
      return `${r.status} ${r.status === 200 ? '' : (JSON.parse(r.text) as { code: string }).code}`.trim();
    };
    t.equal(await anonymous('/public'), '200', 'security: [] with allow_public: anyone');
    // Before: 200, 200 (the document's requirement unchecked) and 403 insufficient_scope.
    t.equal(await anonymous('/me'), '401 ERR_AUTHN_TOKEN_MISSING', 'the global [{bearer: []}]');
    t.equal(await anonymous('/me-oauth'), '401 ERR_AUTHN_TOKEN_MISSING', '[{oauth: []}]');
    t.equal(
      await anonymous('/reports'),
      '401 ERR_AUTHN_TOKEN_MISSING',
      'a requirement naming scopes: unauthenticated, not short of scopes',
    );
    const withToken = async (path: string) =>
      (await fetchText(`${s.url}${path}`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
    t.equal(await withToken('/me'), 200, 'any valid token meets [{bearer: []}]');
    t.equal(await withToken('/reports'), 403, 'and a token short of the scopes is 403');
    t.same(
      backend.requests.map((r) => r.url),
      ['/public', '/me'],
      'the backend saw only what was allowed',
    );
  },
);

t.test('authn mode "off" on an operation whose security needs a token is refused at start (it served anyone, or no one)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const document = openApiFile(`openapi: 3.1.0
info: { title: t, version: '1' }
security: [{ bearer: [] }]
paths:
  /me:
    get: { operationId: me, responses: { '200': { description: ok } } }
  /open:
    get: { operationId: open, security: [], responses: { '200': { description: ok } } }
components:
  securitySchemes:
    bearer: { type: http, scheme: bearer }
`);
  const tokens = { issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] };
  await t.rejects(startTestSidecar(t, backend.url, { tokens, openapi: { document, operations: { me: { authn: { mode: 'off' } } } } }), {
    message: /openapi\.operations\.me\.authn\.mode: is "off", but .* requires a token/,
  });
  await t.rejects(startTestSidecar(t, backend.url, { tokens: { ...tokens, authn: { mode: 'off' } }, openapi: { document } }), {
    message: /tokens\.authn\.mode: is "off", but .* requires a token/,
  });
  // Off where the document asks for nothing is the operator's choice.
  const s = await startTestSidecar(t, backend.url, { tokens, openapi: { document, operations: { open: { authn: { mode: 'off' } } } } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${s.url}/open`, agent)).status, 200);
  t.equal((await fetchText(`${s.url}/me`, agent)).status, 401);
});
