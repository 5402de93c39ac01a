/**
 * A query token source as PHP 8.2 reads it (red team round 22a): PHP reads `?access.token=`,
 * `?access+token=`, `?access[token=`, `?%20access_token=` and `?access_token%00=` as
 * `$_GET['access_token']`. Only the exact name was read and stripped, so a request authenticated by
 * its Authorization header carried a second token (anyone's) to PHP under the source's name.
 * A cookie source likewise (round 22 review): `Cookie: access.token=` is `$_COOKIE['access_token']`.
 */
import t, { type Test } from 'tap';
import { Agent } from 'undici';
import { fetchText, testAgent } from '../support/clients.js';
import { startPhp } from '../support/php.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

/** What PHP read from the query. */
const READ_GET = `header('content-type: application/json');
echo json_encode(['get' => (object) $_GET]);
`;

/** A sidecar before `phpUrl` reading tokens from Authorization and `source`, and two users' tokens. */
async function startTokenSidecar(t: Test, phpUrl: string, source: { from: 'query' | 'cookie'; name: string }) {
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, phpUrl, {
    tokens: { sources: [{ from: 'authorization' }, source], issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const exp = Math.floor(Date.now() / 1000) + 300;
  const alice = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'alice', exp });
  const mallory = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'mallory', exp });
  /** The rule of the last refusal, from its security event (a problem body names its code only). */
  const lastRule = () => s.events.filter((e) => e.name === 'warden.authn.token_malformed').at(-1)?.['warden.rule'];
  return { s, agent, alice, mallory, bearer: { authorization: `Bearer ${alice}` }, lastRule };
}

const SPELLINGS = ['access.token', 'access+token', 'access%20token', 'access[token', '%20access_token', '+access_token', 'access_token%00'];

t.test('a query key PHP reads as the token source is that source: a second token is refused, never forwarded', async (t) => {
  const php = await startPhp(t, READ_GET);
  const direct = new Agent();
  t.teardown(() => direct.close());
  const getOf = async (base: string, agent: Agent, path: string, headers: Record<string, string> = {}) => {
    const r = await fetchText(`${base}${path}`, agent, { headers });
    return { status: r.status, body: r.text, get: r.status === 200 ? r.json<{ get: Record<string, unknown> }>().get : undefined };
  };

  await t.test('PHP reads each spelling as access_token', async (t) => {
    for (const key of SPELLINGS) t.same((await getOf(php.url, direct, `/x?${key}=T`)).get, { access_token: 'T' }, key);
  });

  const { s, agent, alice, mallory, bearer, lastRule } = await startTokenSidecar(t, php.url, { from: 'query', name: 'access_token' });

  t.same((await getOf(s.url, agent, '/x?page=2', bearer)).get, { page: '2' }, 'Bearer alone: forwarded');
  t.same((await getOf(s.url, agent, `/x?access_token=${alice}&page=2`)).get, { page: '2' }, 'the exact name: read, stripped');

  for (const key of SPELLINGS) {
    const before = php.requests();
    const beside = await getOf(s.url, agent, `/x?${key}=${mallory}&page=2`, bearer);
    t.equal(beside.status, 401, `${key} beside Bearer: refused`);
    t.match(JSON.parse(beside.body), { code: 'ERR_AUTHN_TOKEN_MALFORMED' });
    t.equal(lastRule(), 'token.multiple', `${key}: two tokens (RFC 6750 §2)`);
    t.equal(php.requests(), before, `${key}: PHP never asked`);

    const twice = await getOf(s.url, agent, `/x?access_token=${alice}&${key}=${mallory}`);
    t.equal(twice.status, 401, `${key} beside access_token: refused`);
    t.equal(lastRule(), 'query.access_token.multiple', `${key} beside access_token: one parameter, sent twice`);

    const alone = await getOf(s.url, agent, `/x?${key}=${alice}&page=2`);
    t.equal(alone.status, 200, `${key} alone: read as the token`);
    t.same(alone.get, { page: '2' }, `${key} alone: stripped before PHP`);
  }
});

/** What PHP read from the cookies. */
const READ_COOKIE = `header('content-type: application/json');
echo json_encode(['cookie' => (object) $_COOKIE]);
`;

const COOKIE_SPELLINGS = ['access.token', 'access token', 'access[token', 'access_token[]'];

t.test('a cookie PHP reads as the token source is that source: a second token is refused, never forwarded', async (t) => {
  const php = await startPhp(t, READ_COOKIE);
  const direct = new Agent();
  t.teardown(() => direct.close());
  const cookieOf = async (base: string, agent: Agent, cookie: string, headers: Record<string, string> = {}) => {
    const r = await fetchText(`${base}/x`, agent, { headers: { ...headers, cookie } });
    return { status: r.status, body: r.text, cookie: r.status === 200 ? r.json<{ cookie: Record<string, unknown> }>().cookie : undefined };
  };

  await t.test('PHP reads each spelling as access_token; a percent-escape in a name stays (PHP 8)', async (t) => {
    for (const name of COOKIE_SPELLINGS.slice(0, 3))
      t.same((await cookieOf(php.url, direct, `${name}=T`)).cookie, { access_token: 'T' }, name);
    t.same((await cookieOf(php.url, direct, 'access_token[]=T')).cookie, { access_token: ['T'] }, 'access_token[]: an array');
    t.same((await cookieOf(php.url, direct, 'access.token=M; access_token=A')).cookie, { access_token: 'M' }, 'the first of a name wins');
    t.same((await cookieOf(php.url, direct, 'acc%65ss_token=T')).cookie, { 'acc%65ss_token': 'T' }, 'acc%65ss_token: not decoded');
  });

  const { s, agent, alice, mallory, bearer, lastRule } = await startTokenSidecar(t, php.url, { from: 'cookie', name: 'access_token' });

  t.same((await cookieOf(s.url, agent, 'theme=dark', bearer)).cookie, { theme: 'dark' }, 'Bearer alone: forwarded');
  t.same((await cookieOf(s.url, agent, `access_token=${alice}; theme=dark`)).cookie, { theme: 'dark' }, 'the exact name: read, stripped');

  // acc%65ss_token: PHP 8 keeps the escape, but request validation and older readers decode it (cookieReadAs).
  for (const name of [...COOKIE_SPELLINGS, 'ACCESS_TOKEN', 'acc%65ss_token']) {
    const before = php.requests();
    const beside = await cookieOf(s.url, agent, `${name}=${mallory}; theme=dark`, bearer);
    t.equal(beside.status, 401, `${name} beside Bearer: refused`);
    t.match(JSON.parse(beside.body), { code: 'ERR_AUTHN_TOKEN_MALFORMED' });
    t.equal(lastRule(), 'token.multiple', `${name}: two tokens (RFC 6750 §2)`);
    t.equal(php.requests(), before, `${name}: PHP never asked`);

    const twice = await cookieOf(s.url, agent, `${name}=${mallory}; access_token=${alice}`);
    t.equal(twice.status, 401, `${name} beside access_token: refused`);
    t.equal(lastRule(), 'cookie.access_token.multiple', `${name} beside access_token: one cookie, sent twice`);

    const alone = await cookieOf(s.url, agent, `${name}=${alice}; theme=dark`);
    t.equal(alone.status, 200, `${name} alone: read as the token`);
    t.same(alone.cookie, { theme: 'dark' }, `${name} alone: stripped before PHP`);
  }
});
