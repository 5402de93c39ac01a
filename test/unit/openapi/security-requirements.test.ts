/**
 * compileSecurity: each OpenAPI security scheme type as what Warden checks (defect 169: every
 * scheme counted as "a token with these scopes", so an apiKey alternative admitted any token).
 */
import t from 'tap';
import { OpenApiError, type OpenApiDocument } from '../../../src/openapi/document.js';
import { compileSecurity } from '../../../src/openapi/security-requirements.js';

const doc = {
  openapi: '3.1.0',
  info: { title: 't', version: '1' },
  paths: {},
  components: {
    securitySchemes: {
      oauth: { type: 'oauth2', flows: {} },
      oidc: { type: 'openIdConnect', openIdConnectUrl: 'https://idp/.well-known/openid-configuration' },
      bearer: { type: 'http', scheme: 'Bearer' },
      basic: { type: 'http', scheme: 'basic' },
      key: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      qkey: { type: 'apiKey', in: 'query', name: 'api_key' },
      mtls: { type: 'mutualTLS' },
      odd: { type: 'kerberos' },
      keyless: { type: 'apiKey', in: 'body', name: 'k' },
    },
  },
} as unknown as OpenApiDocument;

t.test('each scheme type', async (t) => {
  t.equal(compileSecurity(doc, undefined, '#/security'), undefined);
  t.same(compileSecurity(doc, [], '#/security'), [], 'security: [] is public');
  t.same(compileSecurity(doc, [{ oauth: ['a'] }, {}], '#/security'), [], 'so is an empty requirement among them');
  t.same(compileSecurity(doc, [{ oauth: ['a'], oidc: ['b'], bearer: ['c'] }], '#/security'), [
    { scopes: ['a', 'b', 'c'], apiKeys: [], peer: false, token: true },
  ]);
  t.same(compileSecurity(doc, [{ key: [] }, { qkey: [], mtls: [] }], '#/security'), [
    { scopes: [], apiKeys: [{ in: 'header', name: 'x-api-key' }], peer: false, token: false },
    { scopes: [], apiKeys: [{ in: 'query', name: 'api_key' }], peer: true, token: false },
  ]);
  t.same(
    compileSecurity(doc, [{ basic: [] }, { oauth: ['a'] }], '#/security'),
    [{ scopes: ['a'], apiKeys: [], peer: false, token: true }],
    'http basic: never met beside a bearer token',
  );
});

t.test('refused at load, naming where', async (t) => {
  t.throws(() => compileSecurity(doc, [{ basic: [] }], '#/paths/~1x/get/security'), {
    pointer: '#/paths/~1x/get/security',
    message: /^every requirement needs a scheme a bearer token cannot meet \("basic" \(http basic\)\).*openapi\.operations/,
  });
  t.throws(() => compileSecurity(doc, [{ odd: [] }], '#/security'), {
    pointer: '#/components/securitySchemes/odd/type',
    message: /^must be apiKey, http, mutualTLS/,
  });
  t.throws(() => compileSecurity(doc, [{ keyless: [] }], '#/security'), { message: /apiKey scheme needs in \(header, query or cookie\)/ });
  t.throws(() => compileSecurity(doc, [{ missing: [] }], '#/security'), { message: /does not define/ });
  t.throws(() => compileSecurity(doc, [{ toString: [] }], '#/security'), { message: /does not define/ }, 'not a prototype member');
  t.throws(
    () => compileSecurity(doc, [{ basic: [] }], '#/security'),
    OpenApiError,
    'an OpenApiError, which the loader reports with its pointer',
  );
});

t.test('an apiKey scheme where the configuration reads a token is refused, naming the scheme and the fix', async (t) => {
  const { tokenPlacesOf } = await import('../../../src/config/token-places.js');
  const withKey = (scheme: Record<string, unknown>) =>
    ({ ...doc, components: { securitySchemes: { ...doc.components?.securitySchemes, partnerKey: scheme } } }) as unknown as OpenApiDocument;
  const places = tokenPlacesOf(
    [
      { from: 'authorization' },
      { from: 'header', name: 'X-Token' },
      { from: 'cookie', name: 'at' },
      { from: 'query', name: 'access_token' },
    ],
    'X-Minted',
  );
  for (const [scheme, where] of [
    [{ type: 'apiKey', in: 'header', name: 'Authorization' }, /the Authorization header/],
    [{ type: 'apiKey', in: 'header', name: 'DPOP' }, /the DPoP header/],
    [{ type: 'apiKey', in: 'header', name: 'x-token' }, /the header "x-token"/],
    [{ type: 'apiKey', in: 'header', name: 'X-Minted' }, /the header "x-minted"/],
    [{ type: 'apiKey', in: 'cookie', name: 'at' }, /the cookie "at"/],
    [{ type: 'apiKey', in: 'query', name: 'access_token' }, /the query "access_token"/],
  ] as const) {
    const err = t.throws(() =>
      compileSecurity(withKey(scheme), [{ partnerKey: [] }, { oauth: ['pets:admin'] }], '#/security', places),
    ) as unknown;
    t.ok(err instanceof OpenApiError, `${scheme.in} ${scheme.name}: refused`);
    t.equal((err as OpenApiError).pointer, '#/components/securitySchemes/partnerKey');
    t.match((err as OpenApiError).message, where);
    t.match((err as OpenApiError).message, /^apiKey scheme "partnerKey" is sent in .*(e\.g\. in: header, name: X-Api-Key)/);
  }
  // Elsewhere it is a key: another header, a cookie or a parameter no source reads; and without a
  // tokens section (places undefined) no token is read at all.
  for (const scheme of [
    { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
    { type: 'apiKey', in: 'cookie', name: 'AT' },
    { type: 'apiKey', in: 'query', name: 'api_key' },
  ])
    t.same(
      compileSecurity(withKey(scheme), [{ partnerKey: [] }], '#/security', places)?.[0]?.apiKeys.length,
      1,
      `${scheme.in} ${scheme.name}`,
    );
  t.ok(compileSecurity(withKey({ type: 'apiKey', in: 'header', name: 'Authorization' }), [{ partnerKey: [] }], '#/security', undefined));
});

t.test('an apiKey scheme in a header the backend never receives as sent is refused: it could never be met', async (t) => {
  const { internalHeaderMatcher } = await import('../../../src/net/sidecar-headers.js');
  const withKey = (scheme: Record<string, unknown>) =>
    ({ ...doc, components: { securitySchemes: { ...doc.components?.securitySchemes, partnerKey: scheme } } }) as unknown as OpenApiDocument;
  const internal = internalHeaderMatcher(['X-Internal-*', 'X-Debug']);
  for (const [name, why] of [
    ['X-Real-IP', /a forwarding header, which the sidecar sets itself/],
    ['X_Forwarded_For', /a forwarding header/],
    ['Proxy-Authorization', /a hop-by-hop header, which the sidecar never forwards/],
    ['Keep-Alive', /a hop-by-hop header/],
    ['x-internal-key', /an internal header \(headers\.internal\)/],
    ['X-Debug', /an internal header/],
    ['traceparent', /a trace propagation header, which the sidecar rewrites when it traces/],
    ['X-B3-TraceId', /a trace propagation header/],
    ['Baggage', /a trace propagation header/],
  ] as const) {
    const err = t.throws(() =>
      compileSecurity(
        withKey({ type: 'apiKey', in: 'header', name }),
        [{ partnerKey: [] }, { oauth: ['pets:admin'] }],
        '#/security',
        undefined,
        internal,
      ),
    ) as unknown;
    t.ok(err instanceof OpenApiError, `${name}: refused`);
    t.equal((err as OpenApiError).pointer, '#/components/securitySchemes/partnerKey');
    t.match((err as OpenApiError).message, why);
    t.match((err as OpenApiError).message, new RegExp(`^apiKey scheme "partnerKey" is sent in the header "${name}", .*could never be met`));
  }
  for (const name of ['X-Api-Key', 'X-Internals', 'X-Real-IP-Key', 'X-Trace-Key'])
    t.equal(
      compileSecurity(withKey({ type: 'apiKey', in: 'header', name }), [{ partnerKey: [] }], '#/security', undefined, internal)?.[0]
        ?.apiKeys.length,
      1,
      `${name}: a key`,
    );
});
