import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { principalOf, type Principal } from '../../../src/identity/principal.js';
import { NO_PEER } from '../../../src/mesh/peer-identity.js';
import type { RequestContext } from '../../../src/pipeline/stage.js';
import { createAuthzScopesStage, isScopesNoop } from '../../../src/stages/authz-scopes.js';
import { testContext } from '../../support/request-context.js';

const policy = { id: 'idp', issuer: 'https://idp.example.com', audience: ['api'], anyAudience: false, tokenTypes: [] };
const withScope = (scope: string) => principalOf({ scope }, policy, 'jwt', 'ab'.repeat(32));

function ctx(principal: Principal | undefined): RequestContext {
  return testContext({ protocol: '2', principal });
}

const codeOf = (v: unknown) => (v instanceof WardenError ? v.code : v);

t.test('all_of: every listed scope is needed', async (t) => {
  const stage = createAuthzScopesStage({ all_of: ['orders:read', 'orders:write'], any_of: [] }, 'shop');
  t.equal(stage.id, 'authz-scopes');
  t.equal(stage.run(ctx(withScope('orders:read orders:write extra'))), undefined);
  t.equal(codeOf(stage.run(ctx(withScope('orders:read')))), 'ERR_AUTHZ_SCOPE_MISSING');
  t.equal(codeOf(stage.run(ctx(withScope('orders:write')))), 'ERR_AUTHZ_SCOPE_MISSING');
  t.equal(codeOf(stage.run(ctx(withScope('orders:readorders:write')))), 'ERR_AUTHZ_SCOPE_MISSING', 'scopes are whole words');
});

t.test('any_of: one listed scope is enough', async (t) => {
  const stage = createAuthzScopesStage({ all_of: [], any_of: ['admin', 'orders:admin'] }, 'shop');
  t.equal(stage.run(ctx(withScope('orders:admin'))), undefined);
  t.equal(stage.run(ctx(withScope('admin'))), undefined);
  t.equal(codeOf(stage.run(ctx(withScope('orders:read')))), 'ERR_AUTHZ_SCOPE_MISSING');
  t.equal(codeOf(stage.run(ctx(withScope('')))), 'ERR_AUTHZ_SCOPE_MISSING');
});

t.test('all_of and any_of combined', async (t) => {
  const stage = createAuthzScopesStage({ all_of: ['orders:read'], any_of: ['eu', 'us'] }, 'shop');
  t.equal(stage.run(ctx(withScope('orders:read eu'))), undefined);
  t.equal(stage.run(ctx(withScope('us orders:read'))), undefined);
  t.equal(codeOf(stage.run(ctx(withScope('orders:read')))), 'ERR_AUTHZ_SCOPE_MISSING', 'all_of alone is not enough');
  t.equal(codeOf(stage.run(ctx(withScope('eu us')))), 'ERR_AUTHZ_SCOPE_MISSING', 'any_of alone is not enough');
});

t.test('the refusal is 403 with an RFC 6750 insufficient_scope challenge naming the scopes', async (t) => {
  const stage = createAuthzScopesStage({ all_of: ['orders:read', 'eu'], any_of: ['eu', 'us'] }, 'shop');
  const refused = stage.run(ctx(withScope('orders:read')));
  t.ok(refused instanceof WardenError);
  const e = refused as WardenError;
  t.equal(e.code, 'ERR_AUTHZ_SCOPE_MISSING');
  t.equal(e.status, 403);
  t.equal(e.rule, 'authz.scopes');
  t.same(e.headers, { 'www-authenticate': 'Bearer realm="shop", error="insufficient_scope", scope="orders:read eu us"' }, 'eu once');
  t.match(e.detail, /all of: orders:read eu; one of: eu us/);
  t.match(e.attributes, { 'warden.scope.required': 'orders:read eu us', 'warden.detail': 'granted: orders:read' });
});

t.test('no principal (optional authn without a token) is refused as unauthenticated: 401, not insufficient_scope', async (t) => {
  const stage = createAuthzScopesStage({ all_of: ['orders:read'], any_of: [] }, 'shop');
  const refused = stage.run(ctx(undefined));
  t.equal(codeOf(refused), 'ERR_AUTHN_TOKEN_MISSING');
  t.equal((refused as WardenError).rule, 'authz.scopes');
  t.equal((refused as WardenError).detail, 'This route needs an access token.');
  const bearer = { scopes: [], apiKeys: [], peer: false, token: true };
  const operation = createAuthzScopesStage({ alternatives: [bearer] }, 'shop');
  t.equal(codeOf(operation.run(ctx(undefined))), 'ERR_AUTHN_TOKEN_MISSING', '[{bearer: []}]: the same');
  t.equal(operation.run(ctx(withScope(''))), undefined, 'and any token meets it');
});

t.test('isScopesNoop', async (t) => {
  t.equal(isScopesNoop(undefined), true);
  t.equal(isScopesNoop({ all_of: [], any_of: [] }), true);
  t.equal(isScopesNoop({ all_of: ['a'], any_of: [] }), false);
  t.equal(isScopesNoop({ all_of: [], any_of: ['a'] }), false);
  const bearer = { scopes: [], apiKeys: [], peer: false, token: true };
  const key = { scopes: [], apiKeys: [{ in: 'header' as const, name: 'x-api-key' }], peer: false, token: false };
  t.equal(isScopesNoop({ alternatives: [bearer] }), true, '[{bearer: []}]: authn requires the token, nothing more to check');
  t.equal(
    isScopesNoop({ alternatives: [bearer] }, true),
    false,
    'unless the operator made the token optional: then the check is what refuses a caller without one',
  );
  // Where an alternative needs no token the token is optional: a bare bearer alternative is then no
  // longer met by every request that gets here (adversarial.md 231).
  t.equal(isScopesNoop({ alternatives: [bearer, key] }), false, '[{bearer: []}, {key: []}]: checked');
  t.equal(isScopesNoop({ alternatives: [bearer, { ...key, apiKeys: [], peer: true }] }), false, '[{bearer: []}, {mtls: []}]: checked');
});

t.test('a realm with a quote cannot break the challenge (rescue strips quotes and backslashes from its realm)', async (t) => {
  const stage = createAuthzScopesStage({ all_of: ['a'], any_of: [] }, 'my "shop"');
  const e = stage.run(ctx(withScope(''))) as WardenError;
  t.equal(e.code, 'ERR_AUTHZ_SCOPE_MISSING');
  t.match(
    e.headers?.['www-authenticate'],
    /^Bearer realm="[^"\\]*", error="insufficient_scope", scope="a"$/,
    'a well-formed quoted realm',
    {},
  );
});

t.test('OpenAPI alternatives: an API key must be sent, mutualTLS needs a verified certificate (defect 169)', async (t) => {
  const alt = (
    scopes: string[],
    apiKeys: { in: 'header' | 'query' | 'cookie'; name: string }[] = [],
    peer = false,
    token = scopes.length > 0,
  ) => ({
    scopes,
    apiKeys,
    peer,
    token,
  });
  // As the handler builds it: what the backend will receive starts as a copy of what was sent.
  const withKey = (c: RequestContext, headers: Record<string, string>, search = ''): RequestContext => ({
    ...c,
    headers,
    upstreamHeaders: { ...headers },
    search,
  });
  const verified = { ...NO_PEER, presented: true, verified: true };

  // [{apiKey: []}, {oauth: [pets:admin]}]: before, the first admitted any token.
  const keyOrAdmin = { alternatives: [alt([], [{ in: 'header', name: 'x-api-key' }]), alt(['pets:admin'])] };
  t.equal(isScopesNoop(keyOrAdmin), false, 'an alternative with an API key is not "any principal"');
  const stage = createAuthzScopesStage(keyOrAdmin, 'shop');
  const refused = stage.run(ctx(withScope('pets:read'))) as WardenError;
  t.equal(refused.code, 'ERR_AUTHZ_SCOPE_MISSING', 'a pets:read token without the key');
  t.equal(refused.rule, 'authz.security');
  t.match(refused.detail, /header x-api-key \| pets:admin/);
  t.match(refused.headers?.['www-authenticate'], /scope="pets:admin"/, 'the challenge names the alternative with scopes');
  t.equal(stage.run(withKey(ctx(withScope('pets:read')), { 'x-api-key': 'k' })), undefined, 'with the key');
  t.not(stage.run(withKey(ctx(withScope('pets:read')), { 'x-api-key': '' })), undefined, 'an empty key is not one');
  t.equal(stage.run(ctx(withScope('pets:admin'))), undefined, 'or with the scope');
  t.equal(stage.run(withKey(ctx(undefined), { 'x-api-key': 'k' })), undefined, 'an optional-authn route: the key alone');

  const query = createAuthzScopesStage({ alternatives: [alt([], [{ in: 'query', name: 'api_key' }])] }, 'shop');
  t.equal(query.run(withKey(ctx(withScope('')), {}, '?a=1&api_key=k')), undefined);
  t.not(query.run(withKey(ctx(withScope('')), {}, '?a=1&api_key=')), undefined);
  t.not(query.run(withKey(ctx(withScope('')), {}, '?api_keys=k')), undefined);
  const cookie = createAuthzScopesStage({ alternatives: [alt([], [{ in: 'cookie', name: 'sid' }])] }, 'shop');
  t.equal(cookie.run(withKey(ctx(withScope('')), { cookie: 'a=1; sid=v' })), undefined);
  t.not(cookie.run(withKey(ctx(withScope('')), { cookie: 'a=1; xsid=v; sid=' })), undefined);

  const mtlsAndScope = createAuthzScopesStage({ alternatives: [alt(['pets:read'], [], true)] }, 'shop');
  t.not(mtlsAndScope.run(ctx(withScope('pets:read'))), undefined, 'mutualTLS: no certificate');
  t.not(mtlsAndScope.run({ ...ctx(withScope('pets:read')), peer: { ...NO_PEER, presented: true } }), undefined, 'nor an unverified one');
  t.equal(mtlsAndScope.run({ ...ctx(withScope('pets:read')), peer: verified }), undefined, 'a verified one, with the scope');
  t.not(mtlsAndScope.run({ ...ctx(withScope('')), peer: verified }), undefined, 'AND: the scope still needed');

  // [{oauth: []}, {apiKey: []}]: authn is optional there (an alternative needs no token), so a
  // request may come without a principal: the token's alternative, even without scopes, is unmet.
  const tokenOrKey = createAuthzScopesStage(
    { alternatives: [alt([], [], false, true), alt([], [{ in: 'header', name: 'x-api-key' }])] },
    'shop',
  );
  t.match(tokenOrKey.run(ctx(undefined)), { code: 'ERR_AUTHN_TOKEN_MISSING', rule: 'authz.security' }, 'neither a token nor the key: 401');
  t.equal(tokenOrKey.run(ctx(withScope(''))), undefined, 'a token with no scopes meets {oauth: []}');
  t.equal(tokenOrKey.run(withKey(ctx(undefined), { 'x-api-key': 'k' })), undefined, 'the key alone meets the other');
});

t.test('an API key where the token is read is never met: the token is not the key (defence in depth)', async (t) => {
  const { tokenPlacesOf } = await import('../../../src/config/token-places.js');
  const places = tokenPlacesOf([{ from: 'authorization' }, { from: 'cookie', name: 'at' }], undefined);
  const key = (where: 'header' | 'cookie', name: string) => ({ scopes: [], apiKeys: [{ in: where, name }], peer: false, token: false });
  const admin = { scopes: ['pets:admin'], apiKeys: [], peer: false, token: true };
  const withHeaders = (c: RequestContext, headers: Record<string, string>): RequestContext => ({
    ...c,
    headers,
    upstreamHeaders: { ...headers },
  });
  const stage = createAuthzScopesStage({ alternatives: [key('header', 'authorization'), admin] }, 'shop', places);
  t.match(
    stage.run(withHeaders(ctx(withScope('pets:read')), { authorization: 'Bearer x' })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    'a pets:read token in Authorization does not meet {key in Authorization} (before: 200)',
  );
  t.equal(
    stage.run(withHeaders(ctx(withScope('pets:admin')), { authorization: 'Bearer x' })),
    undefined,
    'the other alternative still does',
  );
  const cookie = createAuthzScopesStage({ alternatives: [key('cookie', 'at'), admin] }, 'shop', places);
  t.not(cookie.run(withHeaders(ctx(withScope('')), { cookie: 'at=tok' })), undefined, 'nor the token cookie');
  const other = createAuthzScopesStage({ alternatives: [key('header', 'x-api-key'), admin] }, 'shop', places);
  t.equal(other.run(withHeaders(ctx(withScope('')), { 'x-api-key': 'k' })), undefined, 'a key elsewhere is met');
});

const keyAlt = (where: 'header' | 'cookie' | 'query', name: string) => ({
  scopes: [],
  apiKeys: [{ in: where, name }],
  peer: false,
  token: false,
});
const adminAlt = { scopes: ['pets:admin'], apiKeys: [], peer: false, token: true };
/** A pets:read caller; `upstreamHeaders`: what the backend will receive after authn's stripping. */
const sending = (headers: Record<string, string>, upstreamHeaders: Record<string, string | undefined>): RequestContext => ({
  ...ctx(withScope('pets:read')),
  headers,
  upstreamHeaders,
});

t.test('with a cookie token source, the Cookie header is a token place: a key there is never met (review of row 246)', async (t) => {
  const { tokenPlacesOf } = await import('../../../src/config/token-places.js');
  const places = tokenPlacesOf([{ from: 'cookie', name: 'session' }], undefined);
  t.ok(places.headers.has('cookie'), 'a cookie source makes the Cookie header a token place');
  t.ok(places.cookies.has('session'), 'and its cookie (control)');
  t.notOk(tokenPlacesOf([{ from: 'authorization' }], undefined).headers.has('cookie'), 'without one, it is not (control)');
  const stage = createAuthzScopesStage({ alternatives: [keyAlt('header', 'cookie'), adminAlt] }, 'shop', places);
  t.match(
    stage.run(sending({ cookie: 'session=tok; other=1' }, { cookie: 'other=1' })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    '{key in header Cookie} is never met (before: a pets:read token in the cookie, beside another cookie, met it)',
  );
});

t.test('a key counts as sent when the backend receives it, as the client sent it (review of row 246)', async (t) => {
  const cookieHeader = createAuthzScopesStage({ alternatives: [keyAlt('header', 'cookie'), adminAlt] }, 'shop');
  t.match(
    cookieHeader.run(sending({ cookie: 'session=tok' }, { cookie: undefined })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    'the Cookie header stripped whole (only the token cookie was sent): no key reaches the backend',
  );
  const header = createAuthzScopesStage({ alternatives: [keyAlt('header', 'x-api-key'), adminAlt] }, 'shop');
  t.match(
    header.run(sending({ 'x-api-key': 'tok' }, {})),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    'a header the sidecar removed from what goes upstream is not sent',
  );
  t.match(
    header.run(sending({ 'x-api-key': 'k' }, { 'x-api-key': 'set-by-the-sidecar' })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    'nor one it rewrote',
  );
  t.equal(header.run(sending({ 'x-api-key': 'k' }, { 'x-api-key': 'k' })), undefined, 'a key that reaches the backend is (control)');
  t.match(
    header.run(sending({}, { 'x-api-key': 'k' })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    "a header the sidecar wrote, the client did not send, is not the caller's key (control)",
  );
  const cookie = createAuthzScopesStage({ alternatives: [keyAlt('cookie', 'sid'), adminAlt] }, 'shop');
  t.match(
    cookie.run(sending({ cookie: 'sid=tok; a=1' }, { cookie: 'a=1' })),
    { code: 'ERR_AUTHZ_SCOPE_MISSING' },
    'a cookie removed from what goes upstream is not sent',
  );
  t.equal(
    cookie.run(sending({ cookie: 'sid=k; a=1' }, { cookie: 'sid=k; a=1' })),
    undefined,
    'a cookie that reaches the backend is (control)',
  );
});
