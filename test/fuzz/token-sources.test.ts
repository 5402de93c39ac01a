/**
 * Fuzz: token extraction and removal (src/identity/token-sources.ts). Whatever a caller puts in the
 * Authorization header, a token header, a cookie or the query: extraction never throws, returns only
 * an RFC 6750 b64token within the size limit that the request really carries, refuses a token sent
 * in two places, and strip() leaves none of the credentials for the backend.
 */
import t from 'tap';
import fc from 'fast-check';
import type { IncomingHttpHeaders } from 'node:http';
import { unescape as percentDecoded } from 'node:querystring';
import type { TokenSourceConfig } from '../../src/config/types.js';
import { WardenError } from '../../src/errors.js';
import { compileTokenSources, type CredentialCarrier } from '../../src/identity/token-sources.js';
import { compileNameReadings } from '../../src/openapi/name-readings.js';
import { fuzz } from './fuzz-budget.js';

const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
const MAX = 64;

const b64token = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,40}={0,2}$/);
/** Mostly token-like, sometimes anything a header value can hold. */
const tokenish = fc.oneof(
  { weight: 3, arbitrary: b64token },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'a b', 'a=b', '==', 'abc"', 'é', 'a,b', 'a;b', 'x'.repeat(MAX + 1)) },
);
const randomCase = (word: string) =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((ups) => [...word].map((c, i) => (ups[i] ? c.toUpperCase() : c)).join(''));
const spaces = fc.constantFrom(' ', '  ', ' \t', '');
const authorization = fc.oneof(
  fc.tuple(randomCase('bearer'), spaces, tokenish, fc.constantFrom('', ' ', '\t')).map(([s, sp, tok, tail]) => `${s}${sp}${tok}${tail}`),
  fc
    .tuple(fc.constantFrom('Basic', 'Bearerx', 'Token', 'DPoP', 'MAC', 'bearer,', ''), spaces, tokenish)
    .map(([s, sp, tok]) => `${s}${sp}${tok}`),
  fc.string({ maxLength: 30 }),
);

/** Names the schema allows for cookies and parameters (tokens-schema cookieOrParam). */
const sourceName = fc.oneof(
  fc.constantFrom('at', 'access_token', 'session', 'tok%', 'a+b', '%41', 'x.y'),
  fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,8}$/),
);

interface Setup {
  sources: TokenSourceConfig[];
  minted: string | undefined;
}
const setup: fc.Arbitrary<Setup> = fc.record({
  sources: fc.uniqueArray(
    fc.oneof(
      fc.constant<TokenSourceConfig>({ from: 'authorization' }),
      fc.constantFrom('X-Api-Token', 'x-token').map((name): TokenSourceConfig => ({ from: 'header', name })),
      sourceName.map((name): TokenSourceConfig => ({ from: 'cookie', name })),
      sourceName.map((name): TokenSourceConfig => ({ from: 'query', name })),
    ),
    { minLength: 1, maxLength: 4, selector: (s) => s.from },
  ),
  minted: fc.option(fc.constantFrom('authorization', 'X-Backend-Token', 'x-internal-token'), { nil: undefined }),
});

/** Percent-encodes some characters of a name (any of them, as a client may), or leaves it. */
function spellings(name: string): fc.Arbitrary<string> {
  const encode = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((enc) => {
    const spelt = [...name].map((c, i) => (enc[i] ? encode(c) : c)).join('');
    // A spelling that reads as another name ("+" is a space, "%41" is "A") is not one a client would send.
    return new URLSearchParams(`${spelt}=`).has(name) ? spelt : [...name].map(encode).join('');
  });
}

/** Cookies and parameters that are not credentials, and an Authorization header nobody asked for. */
const noise = fc.record({
  cookies: fc.array(fc.tuple(fc.stringMatching(/^[a-z]{1,5}$/), fc.stringMatching(/^[a-z0-9]{0,5}$/)), { maxLength: 3 }),
  params: fc.array(fc.tuple(fc.stringMatching(/^[?]?[a-z%+]{1,5}$/), fc.stringMatching(/^[a-z0-9%+]{0,5}$/)), { maxLength: 3 }),
  extraQuestionMark: fc.boolean(),
  extraAuthz: fc.option(authorization, { nil: undefined }),
});

interface Request {
  carrier: CredentialCarrier;
  /** How many configured sources the request carries something in. */
  carried: number;
}

function request(s: Setup): fc.Arbitrary<Request> {
  const parts = s.sources.map((src) =>
    fc.option(fc.tuple(fc.constant(src), tokenish, src.from === 'query' ? spellings(src.name) : fc.constant('')), {
      nil: undefined,
      freq: 2,
    }),
  );
  return fc.tuple(fc.tuple(...parts), noise, fc.infiniteStream(fc.nat({ max: 3 }))).map(([chosen, n, picks]) => {
    const it = picks[Symbol.iterator]();
    const headers: IncomingHttpHeaders = {};
    const cookies = n.cookies.map(([k, v]) => `${k}=${v}`);
    const params = n.params.map(([k, v]) => `${k}=${v}`);
    let carried = 0;
    for (const part of chosen) {
      if (part === undefined) continue;
      const [src, value, spelling] = part;
      carried++;
      if (src.from === 'authorization') headers.authorization = `Bearer ${value}`;
      if (src.from === 'header') headers[src.name.toLowerCase()] = value;
      if (src.from === 'cookie') cookies.splice(it.next().value as number, 0, `${src.name}=${value}`);
      if (src.from === 'query') params.splice(it.next().value as number, 0, `${spelling}=${encodeURIComponent(value)}`);
    }
    // An Authorization header the configuration does not read is not a credential source.
    if (headers.authorization === undefined && n.extraAuthz !== undefined && !s.sources.some((x) => x.from === 'authorization')) {
      headers.authorization = n.extraAuthz;
    }
    if (cookies.length > 0) headers.cookie = cookies.join(it.next().value === 0 ? ';' : '; ');
    const upstreamHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) upstreamHeaders[k] = v;
    if (s.minted) upstreamHeaders[s.minted.toLowerCase()] = 'forged';
    // "/p??a=1": the query reader drops the second "?" too.
    const search = params.length > 0 ? `?${n.extraQuestionMark ? '?' : ''}${params.join('&')}` : '';
    return { carrier: { headers, upstreamHeaders, search }, carried };
  });
}

const scenario = setup.chain((s) => request(s).map((r) => ({ ...s, ...r })));

/** Whether a backend reads query key `key` as `name` (PHP's, qs's, System.Web's readings: name-readings.ts). */
const readsAs = (key: string, name: string, place: 'query' | 'cookie' = 'query') => {
  const readings = compileNameReadings([{ name, in: place }]);
  return readings.owns(key) || readings.readAs(key) !== undefined;
};
/** Whether a backend reads cookie `cookie` as `name`: as a query key is read, as sent or decoded (PHP 7.4.10 and before, "+" a space; ASP.NET Core 2). */
const cookieReadsAs = (cookie: string, name: string) =>
  [cookie, percentDecoded(cookie), percentDecoded(cookie.replaceAll('+', ' '))].some((spelling) => readsAs(spelling, name, 'cookie'));

/** The values the request carries in each configured source, as a reader would see them. */
function carriedValues(s: Setup, c: CredentialCarrier): string[] {
  const out: string[] = [];
  for (const src of s.sources) {
    if (src.from === 'authorization' && typeof c.headers.authorization === 'string') out.push(c.headers.authorization);
    if (src.from === 'header') {
      const v = c.headers[src.name.toLowerCase()];
      if (typeof v === 'string') out.push(v);
    }
    if (src.from === 'cookie' && c.headers.cookie) out.push(c.headers.cookie);
    if (src.from === 'query') for (const [k, v] of new URLSearchParams(c.search.slice(1))) if (readsAs(k, src.name)) out.push(v);
  }
  return out;
}

t.test('extract never throws; a token is a b64token within the limit, found in the request', async (t) => {
  fuzz(
    t,
    'tokens.extract_sound',
    [scenario],
    (sc) => {
      const r = compileTokenSources(sc.sources, MAX, sc.minted).extract(sc.carrier);
      if (r === undefined) {
        if (sc.carried > 0) throw new Error(`carried ${sc.carried} credential(s) but extract found none`);
        return;
      }
      if (r instanceof WardenError) {
        if (r.code !== 'ERR_AUTHN_TOKEN_MALFORMED' || !r.rule) throw new Error(`refusal ${r.code} ${String(r.rule)}`);
        return;
      }
      if (!B64TOKEN.test(r) || r.length > MAX) throw new Error(`returned ${JSON.stringify(r)}`);
      if (!carriedValues(sc, sc.carrier).some((v) => v.includes(r))) throw new Error(`${r} is not in any configured source`);
    },
    { runs: 1000 },
  );
});

t.test('a credential in two configured places is refused as token.multiple (RFC 6750 §2)', async (t) => {
  fuzz(
    t,
    'tokens.multiple',
    [scenario],
    (sc) => {
      if (sc.carried < 2) return;
      const r = compileTokenSources(sc.sources, MAX, sc.minted).extract(sc.carrier);
      if (!(r instanceof WardenError)) throw new Error(`two sources carried a credential, got ${JSON.stringify(r)}`);
    },
    { runs: 1000 },
  );
});

t.test('Authorization: any casing of Bearer or DPoP, one or more spaces, a b64token → that token; else refused', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }], MAX, undefined);
  fuzz(
    t,
    'tokens.authorization',
    [authorization],
    (value) => {
      const r = s.extract({ headers: { authorization: value }, upstreamHeaders: {}, search: '' });
      // One space after the scheme; the parser has trimmed the value's ends, the reader trims the token.
      const token = /^(?:bearer|dpop) (.*)$/is.exec(value)?.[1]?.trim();
      const expected = token !== undefined && B64TOKEN.test(token) && token.length <= MAX ? token : undefined;
      if (expected !== undefined) {
        if (r !== expected) throw new Error(`${JSON.stringify(value)} → ${JSON.stringify(r)}, expected ${expected}`);
      } else if (!(r instanceof WardenError && r.code === 'ERR_AUTHN_TOKEN_MALFORMED')) {
        throw new Error(`${JSON.stringify(value)} accepted as ${JSON.stringify(r)}`);
      }
    },
    { runs: 2000 },
  );
});

t.test('strip: no configured credential and no minted-token header is left for the backend', async (t) => {
  fuzz(
    t,
    'tokens.strip',
    [scenario],
    (sc) => {
      const sources = compileTokenSources(sc.sources, MAX, sc.minted);
      const before = { ...sc.carrier.upstreamHeaders };
      const carrier = { ...sc.carrier, upstreamHeaders: { ...before } };
      sources.strip(carrier);
      const up = carrier.upstreamHeaders;
      // A header is sent unless its value is undefined (undici skips those; strip clears, not deletes).
      const sent = (name: string) => up[name] !== undefined;
      if (sent('authorization')) throw new Error('authorization left');
      if (sc.minted && sent(sc.minted.toLowerCase())) throw new Error(`minted header ${sc.minted} left`);
      for (const src of sc.sources) {
        if (src.from === 'header' && sent(src.name.toLowerCase())) throw new Error(`header ${src.name} left`);
        if (src.from === 'cookie' && up.cookie !== undefined) {
          for (const pair of String(up.cookie).split(';')) {
            if (cookieReadsAs(pair.split('=', 1)[0]?.trim() ?? '', src.name))
              throw new Error(`cookie ${src.name} left in ${String(up.cookie)}`);
          }
        }
        if (src.from === 'query' && [...new URLSearchParams(carrier.search).keys()].some((k) => readsAs(k, src.name))) {
          throw new Error(`query parameter ${src.name} left in ${carrier.search} (was ${sc.carrier.search})`);
        }
      }
      // Only credentials go (a key a backend reads as a source's name is one): every other
      // parameter and header is still there, unchanged.
      // (A pair that becomes the first one may lose a leading "?" in the reader's view: ignored.)
      const queryNames = sc.sources.flatMap((x) => (x.from === 'query' ? [x.name] : []));
      const entries = (search: string) => [...new URLSearchParams(search.slice(1))];
      const view = (pairs: string[][]) => JSON.stringify(pairs.map(([k, v]) => [k?.replace(/^\?/, ''), v]));
      const expectedQuery = entries(sc.carrier.search).filter(([k]) => !queryNames.some((name) => readsAs(k ?? '', name)));
      if (view(entries(carrier.search)) !== view(expectedQuery)) {
        throw new Error(`query ${sc.carrier.search} became ${carrier.search}`);
      }
      // … and the pairs that stay are byte-for-byte those the client sent, in order.
      const sentPairs = sc.carrier.search.slice(1).split('&');
      let at = 0;
      for (const pair of carrier.search === '' ? [] : carrier.search.slice(1).split('&')) {
        while (at < sentPairs.length && sentPairs[at] !== pair) at++;
        if (at++ === sentPairs.length) throw new Error(`pair ${pair} was not sent as such (${sc.carrier.search})`);
      }
      for (const [k, v] of Object.entries(before)) {
        const credential =
          k === 'authorization' ||
          k === 'cookie' ||
          k === sc.minted?.toLowerCase() ||
          sc.sources.some((x) => x.from === 'header' && x.name.toLowerCase() === k);
        if (!credential && up[k] !== v) throw new Error(`${k} changed by strip`);
      }
    },
    { runs: 1000 },
  );
});

t.test('regression: a query token whose name is percent-encoded around a lone "%" is stripped', async (t) => {
  // Found by tokens.strip: the reader decodes names as URLSearchParams does ("%74ok%" is "tok%"),
  // strip used decodeURIComponent, which throws on the lone "%" — so the token went to the backend.
  const s = compileTokenSources([{ from: 'query', name: 'tok%' }], MAX, undefined);
  const carrier = { headers: {}, upstreamHeaders: {}, search: '?%74ok%=abc&keep=1' };
  t.equal(s.extract(carrier), 'abc', 'the reader finds the token');
  s.strip(carrier);
  t.equal(carrier.search, '?keep=1', 'and strip removes it');
});

t.test('regression: a query token after a doubled "?" is stripped; a "?name" further on is not the token', async (t) => {
  // Found by tokens.strip: for "/p??access_token=abc" the reader (URLSearchParams) drops both "?",
  // strip compared "?access_token" and left the token for the backend.
  const s = compileTokenSources([{ from: 'query', name: 'access_token' }], MAX, undefined);
  const carrier = { headers: {}, upstreamHeaders: {}, search: '??access_token=abc&keep=1' };
  t.equal(s.extract(carrier), 'abc', 'the reader finds the token');
  s.strip(carrier);
  t.equal(carrier.search, '?keep=1', 'and strip removes it');
  const other = { headers: {}, upstreamHeaders: {}, search: '?a=1&?access_token=x' };
  t.equal(s.extract(other), undefined, '"?access_token" is another parameter');
  s.strip(other);
  t.equal(other.search, '?a=1&?access_token=x', 'and stays');
});
