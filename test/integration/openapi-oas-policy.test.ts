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
    // The whole Cookie header, where a cookie source reads the token: before, a pets:read token
    // sent as `Cookie: session=…` met the key (200) and the backend got no cookie (review of row 246).
    ['{ type: apiKey, in: header, name: Cookie }', { sources: [{ from: 'cookie', name: 'session' }] }, /the Cookie header/],
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

const OBJECTS = `openapi: 3.0.3
info: { title: t, version: '1' }
paths:
  /pets:
    get:
      operationId: listPets
      security: []
      parameters:
        - name: filter
          in: query
          style: deepObject
          explode: true
          schema:
            allOf: [ { $ref: '#/components/schemas/Filter' } ]
        - name: page
          in: query
          schema:
            description: paging
            allOf: [ { $ref: '#/components/schemas/Page' } ]
        - { name: q, in: query, schema: { type: string, maxLength: 5 } }
      responses: { '200': { description: ok } }
  /tags:
    get:
      operationId: byTags
      security: []
      parameters:
        - { name: counts, in: query, style: form, explode: true, schema: { type: object, additionalProperties: { type: integer, maximum: 10 } } }
        - { name: attrs, in: query, style: deepObject, schema: { type: object, additionalProperties: { type: string, enum: [a, b] } } }
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
      responses: { '200': { description: ok } }
components:
  schemas:
    Filter:
      type: object
      additionalProperties: false
      properties: { status: { type: string, enum: [available, sold] } }
    Page:
      type: object
      additionalProperties: false
      properties: { size: { type: integer, maximum: 50 } }
`;

t.test('object query parameters: through allOf, and a free-form exploded map, are decoded and validated', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  for (const unknownQuery of ['allow', 'refuse'] as const) {
    const s = await startTestSidecar(t, backend.url, {
      openapi: { document: openApiFile(OBJECTS), allow_public: true, validation: { unknown_query: unknownQuery } },
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const status = async (path: string) => {
      const r = await fetchText(`${s.url}${path}`, agent);
      return r.status === 400 ? `400 ${r.json<{ errors: { pointer: string }[] }>().errors[0]?.pointer}` : String(r.status);
    };
    const refused: [string, string][] = [
      ['/pets?filter[status]=deleted', '/query/filter/status'],
      ['/pets?filter[isAdmin]=true', '/query/filter'],
      ['/pets?size=999', '/query/page/size'],
      ['/pets?size=1e1', '/query/page/size'],
      ['/tags?x=1000', '/query/counts/x'],
      ['/tags?x=abc', '/query/counts/x'],
      ['/tags?x=1&x=2', '/query/counts/x'],
      ['/tags?attrs[x]=zzz', '/query/attrs/x'],
      ['/tags?LIMIT=1000', '/query/LIMIT'],
      ['/tags?limit=1000', '/query/limit'],
    ];
    const before = backend.requests.length;
    for (const [path, pointer] of refused) t.equal(await status(path), `400 ${pointer}`, `${unknownQuery}: ${path} refused at ${pointer}`);
    t.equal(backend.requests.length, before, `${unknownQuery}: none forwarded`);
    for (const path of ['/pets?filter[status]=sold&size=10&q=abc', '/tags?x=1&y=10&attrs[k]=a&limit=100', '/tags'])
      t.equal(await status(path), '200', `${unknownQuery}: ${path} passes`);
    t.equal(
      await status('/pets?other=1'),
      unknownQuery === 'allow' ? '200' : '400 /query',
      `${unknownQuery}: an unknown key beside fixed objects`,
    );
  }
});

t.test(
  'a nullable object query parameter ($ref beside nullable: true, or a null branch) loads and is enforced (review of rows 243 + 247)',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const doc = (version: string, schema: string) => `openapi: ${version}
info: { title: t, version: '1' }
paths:
  /deep:
    get:
      operationId: deep
      security: []
      parameters: [ { name: filter, in: query, style: deepObject, explode: true, schema: ${schema} } ]
      responses: { '200': { description: ok } }
  /form:
    get:
      operationId: form
      security: []
      parameters: [ { name: filter, in: query, style: form, explode: true, schema: ${schema} } ]
      responses: { '200': { description: ok } }
components:
  schemas:
    Filter:
      type: object
      additionalProperties: false
      properties: { status: { type: string, enum: [available, sold] } }
`;
    for (const [version, schema] of [
      ['3.0.3', "{ $ref: '#/components/schemas/Filter', nullable: true }"],
      ['3.1.0', "{ anyOf: [ { $ref: '#/components/schemas/Filter' }, { type: 'null' } ] }"],
      ['3.1.0', '{ type: [object, "null"], additionalProperties: false, properties: { status: { enum: [available, sold] } } }'],
    ] as const) {
      // Before: refused at start ("style deepObject needs an object schema", "does not say which").
      const s = await startTestSidecar(t, backend.url, {
        openapi: { document: openApiFile(doc(version, schema)), allow_public: true, validation: { unknown_query: 'refuse' } },
      });
      const agent = testAgent(s.ca);
      t.teardown(() => agent.close());
      const status = async (path: string) => (await fetchText(`${s.url}${path}`, agent)).status;
      const before = backend.requests.length;
      for (const path of ['/deep?filter[status]=deleted', '/deep?filter[isAdmin]=true', '/form?status=deleted', '/form?isAdmin=true'])
        t.equal(await status(path), 400, `${version} ${schema}: ${path} refused`);
      t.equal(backend.requests.length, before, 'none forwarded');
      for (const path of ['/deep?filter[status]=sold', '/form?status=sold', '/deep', '/form'])
        t.equal(await status(path), 200, `${version} ${schema}: ${path} passes`);
    }
  },
);

t.test('object query parameters Warden cannot decode are refused at start, naming the operation', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const doc = (parameters: string) => `openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /x:
    get:
      operationId: x
      security: []
      parameters: ${parameters}
      responses: { '200': { description: ok } }
`;
  const cases = [
    [
      '[{ name: f, in: query, style: deepObject, schema: { type: string } }]',
      /#\/paths\/~1x\/get: parameter "f" in query: style deepObject needs an object schema/,
    ],
    [
      '[{ name: f, in: query, style: deepObject, schema: { properties: { a: { type: integer } } } }]',
      /style deepObject needs an object schema/,
    ],
    [
      '[{ name: f, in: query, schema: { properties: { a: { type: integer, maximum: 1 } }, additionalProperties: false } }]',
      /parameter "f" in query: its schema constrains an object or an array but does not say which/,
    ],
    ['[{ name: f, in: query, schema: { allOf: [ { type: object }, { type: array } ] } }]', /does not say which/],
    [
      '[{ name: a, in: query, schema: { type: object, additionalProperties: true } }, { name: b, in: query, schema: { type: object, additionalProperties: { type: string } } }]',
      /parameter "b" in query and parameter "a" in query are both exploded form objects with additionalProperties/,
    ],
  ] as const;
  for (const [parameters, message] of cases)
    await t.rejects(
      startTestSidecar(t, backend.url, { openapi: { document: openApiFile(doc(parameters)), allow_public: true } }),
      { message },
      parameters,
    );
});

const serversDocument = (servers: string) => `openapi: 3.0.3
info: { title: t, version: '1' }
servers: ${servers}
paths:
  /items:
    get:
      operationId: listItems
      security: []
      parameters: [ { name: limit, in: query, schema: { type: integer, maximum: 100 } } ]
      responses: { '200': { description: ok } }
`;

t.test('server URLs are URI references: protocol-relative and relative ones route, a query or fragment is refused', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  for (const [servers, base] of [
    ['[{ url: "//api.example.com/v1" }]', '/v1'],
    ['[{ url: v1 }]', '/v1'],
    ['[{ url: ./v2 }]', '/v2'],
    ['[{ url: ../api/v1 }]', '/api/v1'],
    ['[{ url: "/api v1" }]', '/api%20v1'],
    ['[{ url: "https://api.example.com/%76%33/" }]', '/v3'],
  ] as const) {
    const s = await startTestSidecar(t, backend.url, {
      routing: { unmatched: 'passthrough' },
      openapi: { document: openApiFile(serversDocument(servers)), allow_public: true },
    });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const before = backend.requests.length;
    t.equal(
      (await fetchText(`${s.url}${base}/items?limit=1000`, agent)).status,
      400,
      `${servers}: ${base}/items is the operation (limit checked)`,
    );
    t.equal(backend.requests.length, before, `${servers}: not forwarded`);
    t.equal((await fetchText(`${s.url}${base}/items?limit=5`, agent)).status, 200, `${servers}: a valid request passes`);
  }
  for (const [servers, message] of [
    ['[{ url: "/v1?tenant=a" }]', /#\/servers\/0\/url: server URL "\/v1\?tenant=a" has a query/],
    ['[{ url: /v1 }, { url: "https://api.example.com/v1#x" }]', /#\/servers\/1\/url: .* has a fragment/],
    ['[{ url: "https://api.example.com/api%2Fv1" }]', /#\/servers\/0\/url: .*has a path no request can have/],
    ['[{ url: "urn:x:y" }]', /#\/servers\/0\/url: .*has the scheme urn/],
  ] as const)
    await t.rejects(
      startTestSidecar(t, backend.url, { openapi: { document: openApiFile(serversDocument(servers)), allow_public: true } }),
      { message },
      `${servers}: refused at start`,
    );
});
