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
