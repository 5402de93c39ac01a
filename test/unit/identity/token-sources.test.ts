import { ROOT_CONTEXT } from '@opentelemetry/api';
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import type { TokenSourceConfig } from '../../../src/config/types.js';
import { WardenError } from '../../../src/errors.js';
import { NO_PEER } from '../../../src/mesh/peer-identity.js';
import type { RequestContext, UpstreamHeaders } from '../../../src/pipeline/stage.js';
import { compileTokenSources } from '../../../src/identity/token-sources.js';

function ctx(headers: IncomingHttpHeaders = {}, search = '', upstreamHeaders: UpstreamHeaders = {}): RequestContext {
  return {
    requestId: 'r',
    startedAt: 0,
    protocol: '1.1',
    method: 'GET',
    path: '/',
    search,
    clientAddress: '127.0.0.1',
    peer: NO_PEER,
    headers,
    upstreamHeaders,
    route: { id: 'r' },
    params: {},
    traceContext: ROOT_CONTEXT,
  };
}

const ruleOf = (v: unknown) => {
  if (!(v instanceof WardenError)) return { notAnError: v };
  return { code: v.code, rule: v.rule };
};
const malformed = (rule: string) => ({ code: 'ERR_AUTHN_TOKEN_MALFORMED', rule });

const AUTHZ: TokenSourceConfig[] = [{ from: 'authorization' }];

t.test('Authorization: Bearer <token>', async (t) => {
  const s = compileTokenSources(AUTHZ, 100, undefined);
  t.equal(s.extract(ctx({ authorization: 'Bearer abc' })), 'abc');
  t.equal(s.extract(ctx({ authorization: 'bearer abc' })), 'abc', 'scheme is case-insensitive');
  t.equal(s.extract(ctx({ authorization: 'BEARER a-b.c_d~e+f/g==' })), 'a-b.c_d~e+f/g==', 'all b64token characters');
  t.equal(s.extract(ctx({})), undefined, 'no header: no token, no refusal');
});

t.test('Authorization with another scheme, no token or bad characters is malformed', async (t) => {
  const s = compileTokenSources(AUTHZ, 100, undefined);
  t.same(ruleOf(s.extract(ctx({ authorization: 'Basic dXNlcjpwYXNz' }))), malformed('authorization.scheme'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearerabc' }))), malformed('authorization.scheme'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer ' }))), malformed('authorization.empty'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer    ' }))), malformed('authorization.empty'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer ab"c' }))), malformed('token.characters'), 'a quote');
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abc def' }))), malformed('token.characters'), 'a space inside');
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer ab=c' }))), malformed('token.characters'), '= only at the end');
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abcé' }))), malformed('token.characters'), 'non-ASCII');
});

t.test('a token over maxBytes is refused; one at maxBytes is accepted', async (t) => {
  const s = compileTokenSources(AUTHZ, 10, undefined);
  t.equal(s.extract(ctx({ authorization: `Bearer ${'a'.repeat(10)}` })), 'a'.repeat(10));
  const over = s.extract(ctx({ authorization: `Bearer ${'a'.repeat(11)}` }));
  t.same(ruleOf(over), malformed('token.size'));
  t.match((over as WardenError).detail, /at most 10 bytes/);
});

t.test('the token in two places is malformed (RFC 6750 §2)', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }, { from: 'cookie', name: 'at' }], 100, undefined);
  t.equal(s.extract(ctx({ authorization: 'Bearer abc' })), 'abc');
  t.equal(s.extract(ctx({ cookie: 'at=xyz' })), 'xyz');
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abc', cookie: 'at=xyz' }))), malformed('token.multiple'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abc', cookie: 'at=abc' }))), malformed('token.multiple'), 'even the same token');
  t.equal(s.extract(ctx({ authorization: 'Bearer abc', cookie: 'other=xyz' })), 'abc', 'another cookie is not a token');
});

t.test('cookie source: the named cookie exactly, once', async (t) => {
  const s = compileTokenSources([{ from: 'cookie', name: 'name' }], 100, undefined);
  t.equal(s.extract(ctx({ cookie: 'xname=evil; name=good; name2=other' })), 'good');
  t.equal(s.extract(ctx({ cookie: 'xname=evil' })), undefined, 'xname= is not name=');
  t.equal(s.extract(ctx({ cookie: 'namex=evil' })), undefined, 'namex= is not name=');
  t.equal(s.extract(ctx({ cookie: 'a=1;name=tok;b=2' })), 'tok', 'without spaces after ;');
  t.same(ruleOf(s.extract(ctx({ cookie: 'name=one; a=1; name=two' }))), malformed('cookie.name.multiple'));
  t.same(ruleOf(s.extract(ctx({ cookie: 'name=a"b' }))), malformed('token.characters'));
  t.equal(s.extract(ctx({})), undefined);
});

t.test('header source: the configured header, case-insensitive name', async (t) => {
  const s = compileTokenSources([{ from: 'header', name: 'X-Api-Token' }], 100, undefined);
  t.equal(s.extract(ctx({ 'x-api-token': ' tok123 ' })), 'tok123');
  t.equal(s.extract(ctx({ authorization: 'Bearer abc' })), undefined, 'Authorization is not read unless configured');
});

t.test('query source', async (t) => {
  const s = compileTokenSources([{ from: 'query', name: 'access_token' }], 100, undefined);
  t.equal(s.extract(ctx({}, '?a=1&access_token=tok&b=2')), 'tok');
  t.equal(s.extract(ctx({}, '?x_access_token=tok')), undefined);
  t.equal(s.extract(ctx({}, '')), undefined);
  t.equal(s.extract(ctx({}, '?')), undefined);
  t.same(ruleOf(s.extract(ctx({}, '?access_token=a&access_token=b'))), malformed('query.access_token.multiple'));
});

t.test('query source: a key a backend reads as its name is that source (PHP, qs, Rails, System.Web)', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }, { from: 'query', name: 'access_token' }], 100, undefined);
  const spellings = [
    'access.token',
    'access+token',
    'access%20token',
    'access[token',
    'access_token[]',
    'access_token[0]',
    '[access_token]',
    '%u0061ccess_token',
    'access_token%00',
    'access_token%00x',
    '+access_token',
    '%20%20access_token',
    'ACCESS_TOKEN',
    'Access.Token',
  ];
  for (const key of spellings) {
    t.equal(s.extract(ctx({}, `?a=1&${key}=tok`)), 'tok', `${key}: read as the token`);
    t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abc' }, `?${key}=tok`))), malformed('token.multiple'), `${key} beside Bearer`);
    t.same(
      ruleOf(s.extract(ctx({}, `?access_token=abc&${key}=tok`))),
      malformed('query.access_token.multiple'),
      `${key} beside access_token`,
    );
    const c = ctx({}, `?page=2&${key}=tok&q=a%20b`);
    s.strip(c);
    t.equal(c.search, '?page=2&q=a%20b', `${key}: stripped`);
  }
  for (const key of ['access_tokens', 'x_access_token', 'accesstoken', 'access_token_hint', 'access-token', 'a[access_token]']) {
    t.equal(s.extract(ctx({ authorization: 'Bearer abc' }, `?${key}=tok`)), 'abc', `${key}: another parameter`);
    const c = ctx({}, `?${key}=tok`);
    s.strip(c);
    t.equal(c.search, `?${key}=tok`, `${key}: kept`);
  }
});

t.test('cookie source: a cookie a backend reads as its name is that source (PHP, ASP.NET Core)', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }, { from: 'cookie', name: 'access_token' }], 100, undefined);
  const spellings = [
    'access.token',
    'access token',
    'access[token',
    'access_token[]',
    'access_token[x]',
    '[access_token]',
    'ACCESS_TOKEN',
    'Access.Token',
    // Percent-decoded, as request validation reads cookie names (PHP before 7.4.11, ASP.NET Core 2).
    'acc%65ss_token',
    'access%2Etoken',
    // PHP before 7.4.11 decoded names with php_url_decode, "+" a space: $_COOKIE['access_token'].
    'access+token',
    '+access_token',
    'Access+Token',
    'access+%74oken',
  ];
  for (const name of spellings) {
    t.equal(s.extract(ctx({ cookie: `a=1; ${name}=tok` })), 'tok', `${name}: read as the token`);
    t.same(
      ruleOf(s.extract(ctx({ authorization: 'Bearer abc', cookie: `${name}=tok` }))),
      malformed('token.multiple'),
      `${name} beside Bearer`,
    );
    t.same(
      ruleOf(s.extract(ctx({ cookie: `access_token=abc; ${name}=tok` }))),
      malformed('cookie.access_token.multiple'),
      `${name} beside access_token`,
    );
    const up: UpstreamHeaders = { cookie: `session=s1; ${name}=tok; theme=dark` };
    s.strip(ctx({}, '', up));
    t.equal(up.cookie, 'session=s1; theme=dark', `${name}: stripped`);
  }
  for (const name of [
    'access_tokens',
    'x_access_token',
    'accesstoken',
    'access-token',
    'a[access_token]',
    'access%2Btoken',
    'access++token',
  ]) {
    t.equal(s.extract(ctx({ authorization: 'Bearer abc', cookie: `${name}=tok` })), 'abc', `${name}: another cookie`);
    const up: UpstreamHeaders = { cookie: `${name}=tok` };
    s.strip(ctx({}, '', up));
    t.equal(up.cookie, `${name}=tok`, `${name}: kept`);
  }
});

t.test('cookie source: read alike after a request of many new names', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }, { from: 'cookie', name: 'access_token' }], 100, undefined);
  const many = Array.from({ length: 300 }, (_, i) => `c${i}=1; x[${i}]=1; y%${i}=1`).join('; ');
  t.equal(s.extract(ctx({ cookie: many })), undefined, 'none of them is the token');
  for (const name of ['access.token', 'access[token', 'acc%65ss_token', 'access+token']) {
    t.same(ruleOf(s.extract(ctx({ authorization: 'Bearer abc', cookie: `${name}=tok` }))), malformed('token.multiple'), name);
    const up: UpstreamHeaders = { cookie: `${many}; ${name}=tok` };
    s.strip(ctx({}, '', up));
    t.equal(up.cookie, many, `${name}: stripped, the others kept`);
  }
});

t.test('strip: every configured source and the minted-token header are removed from what goes upstream', async (t) => {
  const s = compileTokenSources(
    [
      { from: 'authorization' },
      { from: 'header', name: 'X-Api-Token' },
      { from: 'cookie', name: 'at' },
      { from: 'query', name: 'access_token' },
    ],
    100,
    'X-Backend-Token',
  );
  const up: UpstreamHeaders = {
    authorization: 'Bearer abc',
    'x-api-token': 'abc',
    'x-backend-token': 'forged',
    cookie: 'session=s1; at=abc; xat=keep; theme=dark',
    accept: 'application/json',
  };
  const c = ctx({}, '?page=2&access_token=abc&access_token_hint=x', up);
  s.strip(c);
  t.same(up, { cookie: 'session=s1; xat=keep; theme=dark', accept: 'application/json' }, 'only the named cookie goes; others kept');
  t.equal(c.search, '?page=2&access_token_hint=x', 'only the named query parameter goes');
});

t.test('Authorization: DPoP <token> (RFC 9449 §7.1) is read from the authorization source only, and said so', async (t) => {
  const s = compileTokenSources(AUTHZ, 100, undefined);
  const dpop = ctx({ authorization: 'DPoP abc', dpop: 'proof' });
  t.equal(s.extract(dpop), 'abc');
  t.equal(s.dpopScheme(dpop), true);
  t.equal(s.extract(ctx({ authorization: 'dpop  abc' })), 'abc', 'scheme is case-insensitive');
  t.equal(s.dpopScheme(ctx({ authorization: 'Bearer abc' })), false);
  t.same(ruleOf(s.extract(ctx({ authorization: 'DPoP' }))), malformed('authorization.empty'));
  t.same(ruleOf(s.extract(ctx({ authorization: 'DPoPabc' }))), malformed('authorization.scheme'));
  const cookieOnly = compileTokenSources([{ from: 'cookie', name: 'at' }], 100, undefined);
  t.equal(cookieOnly.dpopScheme(ctx({ authorization: 'DPoP abc', cookie: 'at=x' })), false, 'not a source: not its scheme');
});

t.test('strip: a DPoP proof is for the sidecar, never the backend', async (t) => {
  for (const sources of [AUTHZ, [{ from: 'cookie', name: 'at' }] as TokenSourceConfig[]]) {
    const up: UpstreamHeaders = { dpop: 'proof', accept: '*/*' };
    compileTokenSources(sources, 100, undefined).strip(ctx({}, '', up));
    t.equal(up.dpop, undefined);
    t.equal(up.accept, '*/*');
  }
});

t.test('strip: authorization is removed even when it is not a configured source', async (t) => {
  const s = compileTokenSources([{ from: 'cookie', name: 'at' }], 100, undefined);
  const up: UpstreamHeaders = { authorization: 'Bearer abc', 'x-other': '1' };
  s.strip(ctx({}, '', up));
  t.same(up, { 'x-other': '1' });
});

t.test('strip: the cookie header goes when nothing else is left; the query becomes ""', async (t) => {
  const s = compileTokenSources(
    [
      { from: 'cookie', name: 'at' },
      { from: 'query', name: 'access_token' },
    ],
    100,
    undefined,
  );
  const up: UpstreamHeaders = { cookie: 'at=abc' };
  const c = ctx({}, '?access_token=abc', up);
  s.strip(c);
  t.equal(up.cookie, undefined, 'cookie header not sent (undici skips a header whose value is undefined)');
  t.equal(c.search, '');

  const first: UpstreamHeaders = { cookie: 'at=abc; keep=1' };
  s.strip(ctx({}, '', first));
  t.equal(first.cookie, 'keep=1', 'no leading separator when the first cookie goes');

  const untouched = ctx({}, '?page=2');
  s.strip(untouched);
  t.equal(untouched.search, '?page=2', 'a query without the parameter is left as it was');
});

t.test('strip: parameters other than the token keep their exact encoding', async (t) => {
  const s = compileTokenSources([{ from: 'query', name: 'access_token' }], 100, undefined);
  const c = ctx({}, '?flag&path=/a/b&q=a%20b&access_token=abc');
  s.strip(c);
  t.notMatch(c.search, /access_token/, 'the token parameter is gone');
  t.equal(c.search, '?flag&path=/a/b&q=a%20b', 'the rest is byte-for-byte as sent');
});
