/**
 * When the IdP cannot be asked, the answer is 503 ERR_IDP_UNAVAILABLE — never 401 — within the
 * configured timeouts (which really apply: a silent TLS peer trips the connect timeout, a server
 * that never answers trips the response timeout), and the circuit breaker stops further calls.
 */
import t from 'tap';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { introspectingSidecar } from '../support/introspecting-sidecar.js';

type Teardown = { teardown(fn: () => unknown): void };

/** An HTTP server that reads requests and answers according to `behave` (given the request's form body). */
async function fakeIdp(
  t: Teardown,
  behave: (req: IncomingMessage, form: URLSearchParams) => { status: number; body: string; headers?: Record<string, string> } | 'hang',
) {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(req.url ?? '');
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const outcome = behave(req, new URLSearchParams(body));
      if (outcome === 'hang') return;
      res.writeHead(outcome.status, { 'content-type': 'application/json', ...outcome.headers });
      res.end(outcome.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** Accepts TCP connections and never says a word: a TLS handshake to it never completes. */
async function silentTcp(t: Teardown) {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

function sidecarFor(t: Teardown, backendUrl: string, endpoint: string, idp: Record<string, unknown> = {}) {
  return introspectingSidecar(t, backendUrl, endpoint, { idp: { timeouts: { connect: '300ms', response: '300ms' }, ...idp } });
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

t.test('IdP failures are 503 within the configured timeouts', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());

  await t.test('response timeout: the IdP accepts and never answers', async (t) => {
    const idp = await fakeIdp(t, () => 'hang');
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`);
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const [res, ms] = await timed(() => fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer opaque-token-1' } }));
    t.equal(res.status, 503);
    t.equal(res.json().code, 'ERR_IDP_UNAVAILABLE');
    t.equal(res.headers['retry-after'], '1');
    t.ok(ms >= 250 && ms < 1500, `answered after the 300 ms response timeout (${Math.round(ms)} ms)`);
    t.equal(idp.seen.length, 1, 'the IdP was asked once');
    t.equal(events.find((e) => e.name === 'warden.authn.idp_unavailable')?.['warden.rule'], 'introspection.timeout');
    t.equal(backend.requests.length, 0, 'backend never reached');
  });

  await t.test('connect timeout: a TLS IdP that never completes the handshake', async (t) => {
    const port = await silentTcp(t);
    const { url, ca, events } = await sidecarFor(t, backend.url, `https://127.0.0.1:${port}/introspect`, {
      timeouts: { connect: '300ms', response: '5s' },
    });
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const [res, ms] = await timed(() => fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer opaque-token-2' } }));
    t.equal(res.status, 503);
    t.ok(ms >= 250 && ms < 2000, `answered after the 300 ms connect timeout, not the 5 s response one (${Math.round(ms)} ms)`);
    t.equal(events.find((e) => e.name === 'warden.authn.idp_unavailable')?.['warden.rule'], 'introspection.connect_timeout');
  });

  await t.test('5xx and refused connections are 503 too; the circuit opens after repeated failures', async (t) => {
    const idp = await fakeIdp(t, () => ({ status: 500, body: '{}' }));
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`, { breaker: { failures: 3, open_for: '2s' } });
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    for (let i = 0; i < 3; i++) {
      const res = await fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer token-${i}` } });
      t.equal(res.status, 503, `failure ${i + 1}: 503`);
    }
    t.equal(events.filter((e) => e['warden.rule'] === 'introspection.status').length, 3, '5xx reported as introspection.status');
    const [open, ms] = await timed(() => fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer token-9' } }));
    t.equal(open.status, 503);
    t.equal(open.headers['retry-after'], '2', 'Retry-After = the time the circuit stays open');
    t.ok(ms < 100, `circuit open: refused at once (${Math.round(ms)} ms)`);
    t.equal(idp.seen.length, 3, 'the IdP was not called while the circuit is open');
    t.equal(events.at(-1)?.['warden.rule'], 'introspection.circuit_open');

    const closed = await sidecarFor(t, backend.url, 'http://127.0.0.1:1/introspect');
    const agent2 = testAgent(closed.ca);
    t.teardown(() => agent2.close());
    const refused = await fetchText(`${closed.url}/x`, agent2, { headers: { authorization: 'Bearer token-x' } });
    t.equal(refused.status, 503, 'connection refused → 503');
    t.equal(closed.events.find((e) => e.name === 'warden.authn.idp_unavailable')?.['warden.rule'], 'introspection.unreachable');
  });

  await t.test('an IdP answering 429 is waited out (Retry-After), never counted towards opening the circuit', async (t) => {
    let retryAfter: string | undefined; // set: the IdP answers 429 with it
    const exp = Math.floor(Date.now() / 1000) + 600;
    const idp = await fakeIdp(t, () =>
      retryAfter === undefined
        ? { status: 200, body: `{"active":true,"aud":"api","sub":"alice","exp":${exp}}` }
        : { status: 429, body: '{}', headers: { 'retry-after': retryAfter } },
    );
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`, { breaker: { failures: 3, open_for: '10s' } });
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const get = (token: string) => fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });

    retryAfter = '0';
    for (let i = 0; i < 6; i++) {
      const res = await get(`flood-${i}`);
      t.equal(res.status, 503, `429 ${i + 1}: 503`);
      t.equal(res.json().code, 'ERR_IDP_UNAVAILABLE');
      await new Promise((r) => setTimeout(r, 150));
    }
    t.equal(idp.seen.length, 6, 'Retry-After: 0: each was asked once the 100 ms pause had passed');
    // A flood's new tokens back to back: Retry-After: 0 still pauses 100 ms, so most get 503 without a call.
    const before = idp.seen.length;
    const [, floodMs] = await timed(async () => {
      for (let i = 0; i < 20; i++) t.equal((await get(`burst-${i}`)).status, 503);
    });
    const asked = idp.seen.length - before;
    t.ok(asked < 20 && asked <= 2 + floodMs / 100, `Retry-After: 0 still pauses: ${asked} of 20 asked in ${Math.round(floodMs)} ms`);
    await new Promise((r) => setTimeout(r, 150));
    t.same(new Set(events.map((e) => e['warden.rule'])), new Set(['introspection.throttled']), 'reported as throttled');
    retryAfter = undefined;
    t.equal((await get('fresh-1')).status, 200, 'six 429s did not open the circuit (3 failures would): a new token is served');

    retryAfter = '1';
    const asked2 = idp.seen.length;
    const first = await get('fresh-2');
    t.equal(first.status, 503);
    t.equal(first.headers['retry-after'], '1', "the IdP's Retry-After is passed on");
    retryAfter = undefined;
    const [paused, ms] = await timed(() => get('fresh-3'));
    t.equal(paused.status, 503, 'within it, a new token is refused…');
    t.ok(ms < 100 && idp.seen.length === asked2 + 1, `…at once, without asking the IdP (${Math.round(ms)} ms)`);
    t.equal(paused.headers['retry-after'], '1');
    await new Promise((r) => setTimeout(r, 1100));
    t.equal((await get('fresh-3')).status, 200, 'after it, served');
  });

  await t.test('an answer without a boolean "active" is a broken IdP (503), not a verdict on the token', async (t) => {
    const idp = await fakeIdp(t, () => ({ status: 200, body: '{"active":"yes"}' }));
    const { url, ca } = await sidecarFor(t, backend.url, `${idp.url}/introspect`);
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const res = await fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer token-y' } });
    t.equal(res.status, 503);
  });

  await t.test('an active answer whose exp, iat or nbf is not a number is a broken IdP (503), never read as "no expiry"', async (t) => {
    // The IdP answers each token with its own claims; only the numeric control is accepted.
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    const answers: Record<string, Record<string, unknown>> = {
      'exp-string': { exp: String(hourAgo) },
      'exp-null': { exp: null },
      'iat-string': { iat: 'yesterday' },
      'nbf-string': { nbf: String(hourAgo) },
      control: { exp: hourAgo + 7200, iat: hourAgo, nbf: hourAgo },
    };
    const idp = await fakeIdp(t, (_req, form) => ({
      status: 200,
      body: JSON.stringify({ active: true, aud: 'api', sub: 'alice', ...answers[form.get('token') ?? ''] }),
    }));
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`);
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    for (const token of Object.keys(answers)) {
      const res = await fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
      t.equal(res.status, token === 'control' ? 200 : 503, token);
    }
    t.equal(idp.seen.length, Object.keys(answers).length, 'each token was introspected once');
    const unavailable = events.filter((e) => e.name === 'warden.authn.idp_unavailable');
    t.same(
      unavailable.map((e) => e['warden.rule']),
      Array(Object.keys(answers).length - 1).fill('introspection.bad_response'),
      'each refusal is reported as a bad IdP answer',
    );
  });

  await t.test('an active answer issued in the future (beyond the leeway) is a verdict on the token: 401 introspection.iat', async (t) => {
    const now = Math.floor(Date.now() / 1000);
    const answers: Record<string, Record<string, unknown>> = {
      ahead: { iat: now + 3600 },
      skewed: { iat: now + 5 },
      control: { iat: now },
    };
    const idp = await fakeIdp(t, (_req, form) => ({
      status: 200,
      body: JSON.stringify({ active: true, aud: 'api', sub: 'alice', exp: now + 7200, ...answers[form.get('token') ?? ''] }),
    }));
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`);
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const ahead = await fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer ahead' } });
    t.equal(ahead.status, 401, 'iat an hour ahead: 401 (accepted before)');
    t.equal(ahead.json().code, 'ERR_AUTHN_TOKEN_INVALID');
    t.equal(events.find((e) => e['warden.code'] === 'ERR_AUTHN_TOKEN_INVALID')?.['warden.rule'], 'introspection.iat');
    t.equal((await fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer skewed' } })).status, 200, 'within the leeway: 200');
    t.equal((await fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer control' } })).status, 200);
  });

  await t.test('an answer nested deeper than 32 levels is a broken IdP (503), never a 500 nor a cached principal', async (t) => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const head = `{"active":true,"aud":"api","sub":"alice","exp":${exp}`;
    // An act chain of `links` actors: the answer, then each actor, is one level.
    const actChain = (links: number) => `${'{"sub":"svc","act":'.repeat(links - 1)}{"sub":"svc"}${'}'.repeat(links - 1)}`;
    const answers: Record<string, string> = {
      // Used to be minted (200): nothing bounded the depth.
      'act-40': `${head},"act":${actChain(40)}}`,
      // Used to be 500 ERR_INTERNAL on every request: SignJWT overflowed the stack, the principal stayed cached.
      'act-2000': `${head},"act":${actChain(2000)}}`,
      // Used to be 500 on every request: estimateBytes (JSON.stringify) overflowed, and the IdP was asked each time.
      'junk-20000': `${head},"junk":${'{"o":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
      'array-20000': `${head},"junk":${'['.repeat(20_000)}${']'.repeat(20_000)}}`,
      // 32 levels: the answer and an act chain of 31 actors.
      control: `${head},"act":${actChain(31)}}`,
    };
    const idp = await fakeIdp(t, (_req, form) => ({ status: 200, body: answers[form.get('token') ?? ''] ?? '{"active":false}' }));
    const { url, ca, events } = await sidecarFor(t, backend.url, `${idp.url}/introspect`, { breaker: { failures: 100, open_for: '1s' } });
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const reachedBefore = backend.requests.length;
    for (const token of Object.keys(answers)) {
      for (const attempt of [1, 2]) {
        const res = await fetchText(`${url}/x`, agent, { headers: { authorization: `Bearer ${token}` } });
        if (token === 'control') {
          t.equal(res.status, 200, `${token} (${attempt}): 32 levels are accepted`);
          continue;
        }
        t.equal(res.status, 503, `${token} (${attempt}): 503`);
        t.equal(res.json().code, 'ERR_IDP_UNAVAILABLE', `${token} (${attempt}): ERR_IDP_UNAVAILABLE`);
      }
    }
    const unavailable = events.filter((e) => e.name === 'warden.authn.idp_unavailable');
    t.same(
      unavailable.map((e) => e['warden.rule']),
      Array((Object.keys(answers).length - 1) * 2).fill('introspection.bad_response'),
      'each refusal is reported as a bad IdP answer',
    );
    t.equal(backend.requests.length - reachedBefore, 2, 'only the control reached the backend');
  });

  await t.test('the sidecar authenticates to the IdP with client_secret_basic and sends token + hint as a form', async (t) => {
    let captured: { auth?: string; type?: string; body: string } = { body: '' };
    const server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        captured = { auth: req.headers.authorization, type: req.headers['content-type'], body };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ active: true, aud: 'api', scope: 'a b', client_id: 'c1', sub: 'u1', exp: Math.floor(Date.now() / 1000) + 60 }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.teardown(() => server.close());
    const { url, ca } = await sidecarFor(t, backend.url, `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`);
    const agent = testAgent(ca);
    t.teardown(() => agent.close());
    const res = await fetchText(`${url}/x`, agent, { headers: { authorization: 'Bearer abc.def' } });
    t.equal(res.status, 200);
    t.equal(captured.auth, `Basic ${Buffer.from('sidecar:s3cret').toString('base64')}`);
    t.equal(captured.type, 'application/x-www-form-urlencoded');
    t.same(Object.fromEntries(new URLSearchParams(captured.body)), { token: 'abc.def', token_type_hint: 'access_token' });
  });
});
