/**
 * At most 300 cookies a request (src/proxy/cookie-pairs.ts): each undeclared cookie's name is read
 * as backends read it, 2–3 µs a name that is not plain, and a 16 KiB Cookie header of ~1 400 names
 * like `a1%zz` (resent over h2 from the HPACK table for a few bytes) cost ~7 ms a request.
 */
import t from 'tap';
import { connect as h2connect } from 'node:http2';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { checkCookiePairs, MAX_COOKIE_PAIRS } from '../../src/proxy/cookie-pairs.js';

const cookies = (n: number) => Array.from({ length: n }, (_, i) => `a${i}%zz=1`).join('; ');

t.test('the bound, counted', async (t) => {
  t.equal(checkCookiePairs(undefined), undefined);
  t.equal(checkCookiePairs(cookies(MAX_COOKIE_PAIRS)), undefined, '300 pairs pass');
  t.match(checkCookiePairs(cookies(MAX_COOKIE_PAIRS + 1)), { code: 'ERR_HEADERS_TOO_LARGE', rule: 'limits.cookie_pairs' }, '301 do not');
  t.equal(checkCookiePairs('a=1; '.repeat(100) + 'x'.repeat(2000)), undefined, 'a long header of few pairs passes');
});

t.test('a request with more than 300 cookies is 431 over HTTP/1.1 and h2 (crumbs too), before the backend', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    const before = backend.requests.length;
    const ok = await fetchText(`${s.url}/echo`, agent, { headers: { cookie: cookies(300) } });
    t.equal(ok.status, 200, `${h2 ? 'h2' : 'h1'}: 300 cookies pass`);
    const refused = await fetchText(`${s.url}/echo`, agent, { headers: { cookie: cookies(1400) } });
    t.equal(refused.status, 431, `${h2 ? 'h2' : 'h1'}: 1 400 cookies refused`);
    t.match(refused.json(), { code: 'ERR_HEADERS_TOO_LARGE' });
    t.equal(backend.requests.length, before + 1, 'the backend saw the first only');
  }
  // Over h2 as cookie crumbs (RFC 9113 §8.2.3; a field may hold several pairs, and nghttp2 resets a
  // stream of more than 2 × max_header_count + 8 fields): the same bound on the joined header.
  const session = h2connect(s.url, { ca: s.ca });
  t.teardown(() => session.close());
  const crumbs = Array.from({ length: 150 }, (_, i) => `c${i}=1; d${i}=1; e${i}=1`);
  const status = await new Promise<number>((resolve, reject) => {
    const req = session.request({ ':path': '/echo', cookie: crumbs }, { endStream: true });
    req.on('response', (h) => resolve(Number(h[':status'])));
    req.on('error', reject);
    req.resume();
  });
  t.equal(status, 431, '150 crumbs of 3 pairs over h2: refused');
  t.ok(
    s.events.some((e) => e.name === 'warden.http.limit_exceeded' && e['warden.rule'] === 'limits.cookie_pairs'),
    'with its event and rule',
  );
});
