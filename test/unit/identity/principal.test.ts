import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { checkIntrospectionClaims, checkPrincipal, principalOf, type IssuerPolicy } from '../../../src/identity/principal.js';

const policy: IssuerPolicy = {
  id: 'idp',
  issuer: 'https://idp.example.com',
  audience: ['orders-api', 'https://orders.example.com'],
  anyAudience: false,
  tokenTypes: [],
};
const HASH = 'ab'.repeat(32);
const NOW = 1_800_000_000;

const refusalOf = (v: unknown) => (v instanceof WardenError ? { code: v.code, rule: v.rule } : { notAnError: v });

t.test('principalOf: scope from `scope` (string) or `scp` (array)', async (t) => {
  const p = principalOf({ sub: 'u1', scope: 'orders:read  orders:write' }, policy, 'introspection', HASH);
  t.equal(p.scope, 'orders:read orders:write', 'minted as checked: one space between');
  t.same([...p.scopes].sort(), ['orders:read', 'orders:write'], 'empty pieces of double spaces dropped');
  t.equal(p.subject, 'u1');
  t.equal(p.issuerId, 'idp');
  t.equal(p.issuer, 'https://idp.example.com');
  t.equal(p.via, 'introspection');
  t.equal(p.tokenHash, HASH);

  const scp = principalOf({ scp: ['a', 7, 'b'] }, policy, 'jwt', HASH);
  t.equal(scp.scope, 'a b', 'non-strings in scp ignored');
  t.same([...scp.scopes].sort(), ['a', 'b']);

  const both = principalOf({ scope: 'from-scope', scp: ['from-scp'] }, policy, 'jwt', HASH);
  t.same([...both.scopes], ['from-scope'], '`scope` wins over `scp`');

  const none = principalOf({}, policy, 'jwt', HASH);
  t.equal(none.scope, '');
  t.equal(none.scopes.size, 0);
  t.equal(none.subject, undefined);
  t.equal(none.expiresAt, undefined);
});

t.test('principalOf: only RFC 6749 scope-tokens are granted, and the minted scope is the set checked', async (t) => {
  // A backend splitting on any whitespace read `orders:admin` in what Warden took as one scope.
  const tab = principalOf({ sub: 'u1', scope: 'orders:read x\torders:admin' }, policy, 'jwt', HASH);
  t.same([...tab.scopes], ['orders:read'], 'a scope holding a tab is dropped');
  t.equal(tab.scope, 'orders:read', 'and not minted');
  const element = principalOf({ sub: 'u1', scp: ['orders:read orders:admin', 'pets:read'] }, policy, 'jwt', HASH);
  t.same([...element.scopes], ['pets:read'], 'an scp element holding a space grants neither half');
  const odd = principalOf(
    { sub: 'u1', scope: 'a\nadmin b\u00a0admin c"q d\\e café \u0000 ok https://graph.example.com/User.Read ok' },
    policy,
    'jwt',
    HASH,
  );
  t.same([...odd.scopes], ['ok', 'https://graph.example.com/User.Read'], 'line breaks, NBSP, quote, backslash, non-ASCII, NUL dropped');
  t.equal(odd.scope, 'ok https://graph.example.com/User.Read', 'each once');
  const azure = principalOf({ sub: 'u1', scp: 'User.Read  Mail.Send' }, policy, 'jwt', HASH);
  t.same([...azure.scopes], ['User.Read', 'Mail.Send'], 'a space-separated scp (Azure AD) still splits');
});

t.test('principalOf: client id from client_id, azp or cid, in that order', async (t) => {
  t.equal(principalOf({ client_id: 'c1', azp: 'c2', cid: 'c3' }, policy, 'jwt', HASH).clientId, 'c1');
  t.equal(principalOf({ azp: 'c2', cid: 'c3' }, policy, 'jwt', HASH).clientId, 'c2');
  t.equal(principalOf({ cid: 'c3' }, policy, 'jwt', HASH).clientId, 'c3');
  t.equal(principalOf({ client_id: '', azp: 'c2' }, policy, 'jwt', HASH).clientId, 'c2', 'an empty client_id does not count');
  t.equal(principalOf({ client_id: 42 }, policy, 'jwt', HASH).clientId, undefined);
});

t.test('principalOf: audience as a string or an array; exp kept', async (t) => {
  t.same(principalOf({ aud: 'orders-api' }, policy, 'jwt', HASH).audience, ['orders-api']);
  t.same(principalOf({ aud: ['a', 1, 'b'] }, policy, 'jwt', HASH).audience, ['a', 'b']);
  t.same(principalOf({}, policy, 'jwt', HASH).audience, []);
  t.equal(principalOf({ exp: NOW }, policy, 'jwt', HASH).expiresAt, NOW);
  t.equal(principalOf({ exp: String(NOW) }, policy, 'jwt', HASH).expiresAt, undefined, 'a non-numeric exp is not an expiry');
  t.ok(Object.isFrozen(principalOf({}, policy, 'jwt', HASH)));
});

t.test('checkPrincipal: expiry respects the leeway', async (t) => {
  const p = principalOf({ sub: 'u1', aud: 'orders-api', exp: NOW }, policy, 'jwt', HASH);
  t.equal(checkPrincipal(p, policy, NOW - 1, 0), undefined, 'valid just before exp');
  t.same(refusalOf(checkPrincipal(p, policy, NOW, 0)), { code: 'ERR_AUTHN_TOKEN_EXPIRED', rule: 'token.exp' }, 'expired at exp');
  t.equal(checkPrincipal(p, policy, NOW + 29, 30), undefined, 'within the leeway');
  const late = checkPrincipal(p, policy, NOW + 30, 30);
  t.same(refusalOf(late), { code: 'ERR_AUTHN_TOKEN_EXPIRED', rule: 'token.exp' }, 'past the leeway');
  t.match((late as WardenError).attributes, { 'warden.token.issuer': 'idp', 'warden.token.hash': HASH.slice(0, 16) });

  const noExp = principalOf({ sub: 'u1', aud: 'orders-api' }, policy, 'introspection', HASH);
  t.equal(checkPrincipal(noExp, policy, NOW + 1e9, 0), undefined, 'a principal without exp does not expire here');
});

t.test('checkPrincipal: the audience must be ours unless anyAudience', async (t) => {
  const other = principalOf({ sub: 'u1', aud: ['billing-api'] }, policy, 'jwt', HASH);
  t.same(refusalOf(checkPrincipal(other, policy, NOW, 0)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.aud' });
  const noAud = principalOf({ sub: 'u1' }, policy, 'jwt', HASH);
  t.same(refusalOf(checkPrincipal(noAud, policy, NOW, 0)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.aud' });
  const oneOfMany = principalOf({ sub: 'u1', aud: ['billing-api', 'https://orders.example.com'] }, policy, 'jwt', HASH);
  t.equal(checkPrincipal(oneOfMany, policy, NOW, 0), undefined, 'any one matching audience is enough');
  t.equal(checkPrincipal(other, { ...policy, anyAudience: true }, NOW, 0), undefined);
  t.equal(checkPrincipal(noAud, { ...policy, anyAudience: true }, NOW, 0), undefined);
});

t.test('checkPrincipal: token_use other than "access" is refused', async (t) => {
  const id = principalOf({ sub: 'u1', aud: 'orders-api', token_use: 'id' }, policy, 'jwt', HASH);
  t.same(refusalOf(checkPrincipal(id, policy, NOW, 0)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.token_use' });
  const access = principalOf({ sub: 'u1', aud: 'orders-api', token_use: 'access' }, policy, 'jwt', HASH);
  t.equal(checkPrincipal(access, policy, NOW, 0), undefined);
  // Ory Hydra's introspection says token_use "access_token" (fosite's TokenType) of an access token.
  const hydra = principalOf({ sub: 'u1', aud: 'orders-api', token_use: 'access_token' }, policy, 'introspection', HASH);
  t.equal(checkPrincipal(hydra, policy, NOW, 0), undefined, 'Hydra\'s "access_token" is an access token');
  const hydraRefresh = principalOf({ sub: 'u1', aud: 'orders-api', token_use: 'refresh_token' }, policy, 'introspection', HASH);
  t.same(refusalOf(checkPrincipal(hydraRefresh, policy, NOW, 0)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.token_use' });
  const expiredId = principalOf({ sub: 'u1', aud: 'orders-api', token_use: 'id', exp: NOW - 100 }, policy, 'jwt', HASH);
  t.equal((checkPrincipal(expiredId, policy, NOW, 0) as WardenError).code, 'ERR_AUTHN_TOKEN_EXPIRED', 'expiry is reported first');
});

t.test('checkPrincipal: a refresh or ID token is refused by its token_type or typ, token_types empty or not', async (t) => {
  const check = (claims: Record<string, unknown>, p: IssuerPolicy = policy) =>
    checkPrincipal(principalOf({ sub: 'u1', aud: 'orders-api', ...claims }, p, 'introspection', HASH), p, NOW, 0);
  const refused = {
    token_type: [
      'refresh_token',
      'id_token',
      'Refresh_Token',
      'urn:ietf:params:oauth:token-type:refresh_token',
      'urn:ietf:params:oauth:token-type:id_token',
    ],
    // Keycloak (TokenUtil): refresh, offline, ID and logout tokens; older versions in capitals.
    typ: ['Refresh', 'Offline', 'ID', 'Serialized-ID', 'Logout', 'REFRESH', 'OFFLINE'],
  };
  for (const [claim, values] of Object.entries(refused)) {
    for (const value of values) {
      t.same(refusalOf(check({ [claim]: value })), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: `token.${claim}` }, `${claim} ${value}`);
    }
  }
  for (const claims of [
    { token_type: 'Bearer' },
    { token_type: 'DPoP' },
    { token_type: 'access_token' },
    { typ: 'Bearer' },
    { typ: 'DPoP' },
    {},
  ]) {
    t.equal(check(claims), undefined, `${JSON.stringify(claims)}: an access token`);
  }
  // An OIDC ID token that says nothing of its type (typ JWT, no token_use): told by its claims.
  for (const claims of [
    { at_hash: 'x', nonce: 'n', auth_time: 1 },
    { c_hash: 'x' },
    { at_hash: 'x', scope: 'orders:read' },
    { nonce: 'n', azp: 'spa', auth_time: 1 },
  ]) {
    t.same(refusalOf(check(claims)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.id_token' }, `${JSON.stringify(claims)}: an ID token`);
  }
  // An OIDC back-channel logout token or an RFC 8417 SET: its events claim (an object) says so.
  for (const events of [{ 'http://schemas.openid.net/event/backchannel-logout': {} }, {}]) {
    t.same(refusalOf(check({ events })), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.events' }, `events ${JSON.stringify(events)}`);
  }
  t.equal(check({ events: ['signup'] }), undefined, 'an events claim that is no SET object (an application claim): an access token');
  for (const claims of [
    { nonce: 'n', scope: 'orders:read' },
    { nonce: 'n', scp: ['orders:read'] },
    { auth_time: 1, azp: 'spa' },
  ])
    t.equal(check(claims), undefined, `${JSON.stringify(claims)}: an access token (Keycloak puts a nonce in some)`);
  const listed = { ...policy, tokenTypes: ['refresh_token'] };
  t.same(
    refusalOf(check({ token_type: 'refresh_token' }, listed)),
    { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.token_type' },
    'even when listed',
  );
});

t.test('checkPrincipal: the token names its subject (a string sub) or, without one, its client', async (t) => {
  const ok = (claims: Record<string, unknown>) =>
    checkPrincipal(principalOf({ aud: 'orders-api', ...claims }, policy, 'jwt', HASH), policy, NOW, 0);
  t.equal(ok({ sub: 'alice' }), undefined);
  t.equal(ok({ client_id: 'shop-web' }), undefined, 'client credentials: the client');
  for (const sub of [42, ['alice'], { id: 'alice' }, '', null]) {
    t.same(
      refusalOf(ok({ sub, client_id: 'shop-web' })),
      { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.sub' },
      `sub ${JSON.stringify(sub)}`,
    );
  }
  t.same(refusalOf(ok({})), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.sub' }, 'neither: no "anonymous" shared by every such caller');
  // The minted sub of a client-credentials token is client:<id>: a user spelled so would be that
  // client to the backend (defect 175).
  for (const sub of ['client:shop-web', 'client:']) {
    t.same(refusalOf(ok({ sub })), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.sub' }, `sub ${JSON.stringify(sub)}`);
  }
  // And spelled so that a backend which trims or case-folds `sub` reads that client (red team 22a).
  for (const sub of [
    ' client:shop-web',
    '\tclient:shop-web',
    '\u00a0client:shop-web',
    '\ufeffclient:shop-web',
    '\u3000client:shop-web',
    'Client:shop-web',
    'CLIENT:shop-web',
    'cl\u0131ent:shop-web',
    // …or NFKC-normalises it (Django's normalize_username, PRECIS; red team 24c).
    '\uff43lient:shop-web',
    'client\uff1ashop-web',
    'client\ufe55shop-web',
  ]) {
    t.same(refusalOf(ok({ sub })), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.sub' }, `sub ${escape(JSON.stringify(sub))}`);
  }
  for (const sub of ['clients:shop-web', 'client-shop-web', 'x client:shop-web', 'my-client:shop-web', 'clien'])
    t.equal(ok({ sub }), undefined, `sub ${JSON.stringify(sub)}: another name`);
  // A control character in a name forged a second line in the backend's logs (docs/adversarial.md 272).
  for (const claims of [
    { sub: 'alice\nbob' },
    { sub: 'alice\r' },
    { sub: 'a\u0000' },
    { sub: 'a\u001b[31m' },
    { sub: 'a\u2028b' },
    { sub: 'a\u0085' },
    { client_id: 'shop\nweb' },
    { sub: 'alice', client_id: 'x\ty' },
  ])
    t.same(refusalOf(ok(claims)), { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.sub' }, `${escape(JSON.stringify(claims))}: refused`);
  t.equal(ok({ sub: 'Zoë Ünal', client_id: 'shop web' }), undefined, 'letters and spaces beyond ASCII are names');
  // And the actors', minted as names too (review of 272).
  for (const act of [{ sub: 'svc\nx' }, { sub: 'svc', act: { sub: 'inner\u0000' } }])
    t.same(
      refusalOf(ok({ sub: 'alice', act })),
      { code: 'ERR_AUTHN_TOKEN_INVALID', rule: 'token.act' },
      'an actor with a control character',
    );
  t.equal(ok({ sub: 'alice', act: { sub: 'svc', act: { sub: 'svc-0' } } }), undefined, 'a plain actor chain');
  t.equal(ok({ sub: 'clients:x' }), undefined);
});

t.test('checkIntrospectionClaims: issuer, not-before, issued-at and token_type', async (t) => {
  t.equal(checkIntrospectionClaims({}, policy, NOW, 30), undefined, 'iss, nbf and token_type are optional in RFC 7662');
  t.equal(checkIntrospectionClaims({ iss: 'https://idp.example.com' }, policy, NOW, 30), undefined);
  t.equal(checkIntrospectionClaims({ iss: 'https://evil.example.com' }, policy, NOW, 30), 'iss');
  t.equal(checkIntrospectionClaims({ iss: 'https://idp.example.com/' }, policy, NOW, 30), 'iss', 'compared exactly');
  t.equal(checkIntrospectionClaims({ nbf: NOW + 30 }, policy, NOW, 30), undefined, 'nbf within the leeway');
  t.equal(checkIntrospectionClaims({ nbf: NOW + 31 }, policy, NOW, 30), 'nbf', 'nbf beyond the leeway');
  t.equal(checkIntrospectionClaims({ nbf: NOW + 1 }, policy, NOW, 0), 'nbf');
  // Accepted before: a JWT's iat in the future is refused (jwt.iat), an answer's was not.
  t.equal(checkIntrospectionClaims({ iat: NOW + 30 }, policy, NOW, 30), undefined, 'iat within the leeway');
  t.equal(checkIntrospectionClaims({ iat: NOW + 31 }, policy, NOW, 30), 'iat', 'iat beyond the leeway');
  t.equal(checkIntrospectionClaims({ iat: NOW + 100_000 }, policy, NOW, 30), 'iat');
  t.equal(checkIntrospectionClaims({ iat: NOW - 3600 }, policy, NOW, 0), undefined, 'iat in the past');

  const typed = { ...policy, tokenTypes: ['Bearer', 'access_token'] };
  t.equal(checkIntrospectionClaims({ token_type: 'Bearer' }, typed, NOW, 0), undefined);
  t.equal(checkIntrospectionClaims({ token_type: 'access_token' }, typed, NOW, 0), undefined);
  t.equal(checkIntrospectionClaims({ token_type: 'refresh_token' }, typed, NOW, 0), 'token_type');
  t.equal(checkIntrospectionClaims({}, typed, NOW, 0), 'token_type', 'missing when a list is configured');
  t.equal(
    checkIntrospectionClaims({ token_type: 'Bearer' }, policy, NOW, 0),
    undefined,
    'any type with an empty list (but see checkPrincipal)',
  );
});
