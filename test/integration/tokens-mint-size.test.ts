/**
 * `tokens.mint.max_bytes`: a minted token longer than that is refused with a problem saying which
 * claim made it large, not forwarded. An introspection answer granting 20 001 scopes made a token
 * the backend refused with 431, and the caller got an empty 431. A real RFC 7662 endpoint.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { introspectingSidecar } from '../support/introspecting-sidecar.js';

const scopes = (n: number) => Array.from({ length: n }, (_, i) => `orders:read${i}`).join(' ');

t.test('a minted token over tokens.mint.max_bytes is refused, named, and not cached', async (t) => {
  const exp = Math.floor(Date.now() / 1000) + 600;
  const granted: Record<string, string> = { small: 'orders:read', mid: scopes(500), huge: scopes(20_000) };
  let asked = 0;
  const idp = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      asked++;
      const scope = granted[new URLSearchParams(body).get('token') ?? ''];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(scope ? { active: true, sub: 'alice', aud: 'api', exp, scope } : { active: false }));
    });
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    idp.closeAllConnections();
    idp.close();
  });
  const endpoint = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/introspect`;
  const backend = await startTestBackend();
  t.teardown(() => backend.close());

  await t.test('the default bound, 8 KiB', async (t) => {
    const s = await introspectingSidecar(t, backend.url, endpoint);
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const get = (token: string) => fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
    t.equal((await get('small')).status, 200);
    const requests = backend.requests.length;
    for (const attempt of ['first', 'again']) {
      const r = await get('huge');
      t.equal(r.status, 431, `${attempt}: 431`);
      t.equal(r.headers['content-type'], 'application/problem+json');
      t.match(r.json(), {
        code: 'ERR_MINTED_TOKEN_TOO_LARGE',
        detail: /more than tokens\.mint\.max_bytes \(8192\): its claim "scope" alone is \d+ bytes, 20000 scopes/,
      });
    }
    t.equal(backend.requests.length, requests, 'nothing reached the backend');
    const events = s.events.filter((e) => e.name === 'warden.http.limit_exceeded' && e['warden.rule'] === 'mint.max_bytes');
    t.equal(events.length, 2, 'an event for each, with the rule');
    t.match(events[0], { 'warden.code': 'ERR_MINTED_TOKEN_TOO_LARGE', 'warden.token.issuer': 'corp' });
    t.equal((await get('mid')).status, 431, '500 scopes are over 8 KiB too');
  });

  await t.test('a larger bound configured', async (t) => {
    const s = await introspectingSidecar(t, backend.url, endpoint, { mint: { max_bytes: '15KiB' } });
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const r = await fetchText(`${s.url}/x`, agent, { headers: { authorization: 'Bearer mid' } });
    t.equal(r.status, 200, '500 scopes pass under 15 KiB (the backend takes 16 KiB of headers)');
    console.log(r.text.slice(0, 400));
    t.ok(String(backend.requests.at(-1)?.headers.authorization).length > 8192, 'and the backend got the long token');
  });
  t.ok(asked > 0);
});
