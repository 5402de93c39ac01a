/**
 * A token revoked through Warden (POST /tokens/revoke) stays refused until its end: across a reload
 * that rebuilds token translation, when the IdP will not revoke it, under every issuer a route may
 * send an opaque token to, and on replicas that start after the revocation or missed its message
 * (Redis marks read back on start and on reconnect). Real IdPs (oidc-provider), a real Redis.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import t from 'tap';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT } from 'jose';
import { request } from 'undici';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startDemoIdp } from '../../src/dev/demo-idp.js';
import { createSharedSeal, sharedStateSecret } from '../../src/identity/shared-seal.js';
import { tokenHash } from '../../src/identity/token-hash.js';
import { startTestBackend } from '../support/backend.js';
import { demoIssuer } from '../support/demo-issuer.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar, testConfigYaml, type TestSidecar } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Json = Record<string, unknown>;

async function revoke(s: TestSidecar, token: string): Promise<{ status: number; body: Json }> {
  const res = await request(`${s.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return { status: res.statusCode, body: (await res.body.json()) as Json };
}

/** The other spellings of a JWT's signature: its last character's spare low bits set (decoders ignore them). */
function spellingsOf(jwt: string): string[] {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const spare = ({ 2: 4, 3: 2 } as Record<number, number>)[jwt.split('.')[2]!.length % 4] ?? 0;
  const last = alphabet.indexOf(jwt.at(-1)!);
  const out: string[] = [];
  for (let bits = 1; bits < 1 << spare; bits++) out.push(jwt.slice(0, -1) + alphabet[(last & ~((1 << spare) - 1)) | bits]);
  return out;
}

/** The ECDSA twin of an ES256 JWT: s replaced by n − s, which verifies as well (no key needed). */
function ecdsaTwinOf(jwt: string): string {
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  const [h, p, sig] = jwt.split('.') as [string, string, string];
  const bytes = Buffer.from(sig, 'base64url');
  const s = BigInt(`0x${bytes.toString('hex', 32)}`);
  bytes.write((n - s).toString(16).padStart(64, '0'), 32, 'hex');
  return `${h}.${p}.${bytes.toString('base64url')}`;
}

/**
 * An IdP of its own key (`alg`): discovery, JWKS, and an RFC 7662 endpoint that introspects JWTs
 * as many do, with a lenient decoder (jose's jwtVerify, through atob: padding and base64's + and /
 * taken, spare bits ignored), and never revokes. `opaque` tokens it calls active too.
 */
async function keyedIdp(t: { teardown(fn: () => unknown): void }, alg: string, opaque: readonly string[] = []) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg, use: 'sig' };
  const local = createLocalJWKSet({ keys: [jwk] });
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/jwks') return json({ keys: [jwk] });
      if (req.url === '/.well-known/openid-configuration')
        return json({ issuer, jwks_uri: `${issuer}/jwks`, introspection_endpoint: `${issuer}/introspect` });
      const token = new URLSearchParams(body).get('token') ?? '';
      if (opaque.includes(token)) return json({ active: true, sub: 'bob', aud: 'orders', exp: Math.floor(Date.now() / 1000) + 600 });
      jwtVerify(token, local, { issuer }).then(
        ({ payload }) => json({ active: true, ...payload }),
        () => json({ active: false }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const sign = (claims: Json = {}, exp: number | string = '1h') =>
    new SignJWT({ sub: 'alice', scope: 'orders:read', ...claims })
      .setProtectedHeader({ alg, kid: 'k1', typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience('orders')
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(privateKey);
  return { issuer, sign };
}

function caller(t: { teardown(fn: () => unknown): void }, s: TestSidecar) {
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  return async (token: string, path = '/x') =>
    (await fetchText(`${s.url}${path}`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
}

t.test('revocations through Warden hold until the token ends', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startDemoIdp();
  t.teardown(() => idp.close());

  await t.test('a reload that rebuilds token translation keeps the revocations', async (t) => {
    const tokens = { issuers: [demoIssuer(idp)] };
    const s = await startTestSidecar(t, backend.url, { tokens });
    const call = caller(t, s);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    const opaque = (await idp.issueToken()).accessToken;
    t.equal(await call(jwt), 200);
    t.equal(await call(opaque), 200);
    t.equal((await revoke(s, jwt)).status, 200);
    t.equal((await revoke(s, opaque)).status, 200);
    t.equal(await call(jwt), 401);

    const changed = { tokens: { ...tokens, issuers: [{ ...demoIssuer(idp), audience: [idp.audience, 'another-api'] }] } };
    const text = await testConfigYaml(backend.url, changed);
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), 'reloaded with other `tokens`');
    t.equal(await call(jwt), 401, 'the revoked JWT is still refused');
    t.equal(await call(opaque), 401, 'the revoked opaque token is still refused');
    t.equal(await call((await idp.issueToken()).accessToken), 200, 'other tokens work');
  });

  await t.test('one JWT, one spelling; a revoked token sent with whitespace is still revoked', async (t) => {
    const s = await startTestSidecar(t, backend.url, { tokens: { issuers: [demoIssuer(idp)] } });
    const call = caller(t, s);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    const respelled = spellingsOf(jwt);
    t.ok(respelled.length > 0, `the signature has other spellings (${respelled.length})`);
    t.same(
      Buffer.from(respelled[0]!.split('.')[2]!, 'base64url'),
      Buffer.from(jwt.split('.')[2]!, 'base64url'),
      'that decode to the same bytes',
    );
    t.equal(await call(jwt), 200);
    t.equal(await call(respelled[0]!), 401, 'another spelling is refused even before any revocation');
    t.match(JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()), { alg: 'ES256' }, 'the IdP signs with ES256');
    const twin = ecdsaTwinOf(jwt);
    t.equal(await call(twin), 200, 'its ECDSA twin (r, n − s) verifies: the same token, accepted while it is');
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const problem = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${respelled[0]}` } });
    t.match(problem.json(), { code: 'ERR_AUTHN_TOKEN_INVALID', detail: /not canonical base64url/ });
    t.equal((await revoke(s, `${jwt}\n`)).status, 200, 'revoked as curl sends a file: with its newline');
    t.equal(await call(jwt), 401, 'the token itself is refused');
    for (const other of respelled) t.equal(await call(other), 401, 'and every other spelling');
    t.equal(await call(twin), 401, 'and its ECDSA twin');

    const opaque = (await idp.issueToken()).accessToken;
    t.match(await revoke(s, `  ${opaque}\r\n`), { status: 200, body: { revoked: true } }, 'surrounding whitespace dropped');
    t.equal(await call(opaque), 401);
    for (const junk of ['a b', 'tok\u00e9n', 'x,y']) {
      const { status, body } = await revoke(s, junk);
      t.equal(status, 400, `${JSON.stringify(junk)}: not a bearer token, nothing revoked`);
      t.match(body, { code: 'ERR_REQUEST_MALFORMED', detail: /b64token/ });
    }
  });

  await t.test('under authn.mode jwt, a revoked JWT padded as base64 is still revoked (defect 166)', async (t) => {
    // mode jwt reads every token as a JWT (no JWS shape check first); jose decodes through atob,
    // which takes `=` padding, so `sig==` verified and was hashed as another token.
    const s = await startTestSidecar(t, backend.url, { tokens: { issuers: [demoIssuer(idp)], authn: { mode: 'jwt' } } });
    const call = caller(t, s);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    const sig = jwt.split('.')[2]!;
    t.not(sig.length % 4, 0, 'an ES256 signature (64 bytes) is written without padding');
    const padded = `${jwt}${'='.repeat(4 - (sig.length % 4))}`;
    t.same(Buffer.from(padded.split('.')[2]!, 'base64'), Buffer.from(sig, 'base64url'), 'padded, it decodes to the same bytes');
    t.equal(await call(jwt), 200);
    t.equal(await call(padded), 401, 'the padded spelling is refused before any revocation');
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const problem = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${padded}` } });
    t.match(problem.json(), { code: 'ERR_AUTHN_TOKEN_INVALID', detail: /not canonical base64url/ });
    t.equal((await revoke(s, jwt)).status, 200);
    t.equal(await call(jwt), 401, 'the token itself is refused');
    t.equal(await call(padded), 401, 'and its padded spelling');
    t.equal(await call(`${jwt}=`), 401, 'and one = alone');
  });

  await t.test('a PS256 JWT whose signature starts with a zero byte: the spelling without it is refused', async (t) => {
    // OpenSSL's RSA-PSS verify takes a signature a leading zero byte short (RFC 8017 says k octets),
    // and that spelling is canonical base64url: hashed as another token, a revoked JWT came back.
    const idp = await keyedIdp(t, 'PS256');
    let jwt = '';
    let tries = 0;
    while (tries < 5000 && Buffer.from(jwt.split('.')[2] ?? '', 'base64url')[0] !== 0) jwt = await idp.sign({ n: ++tries });
    const [h, p, sig] = jwt.split('.') as [string, string, string];
    t.equal(Buffer.from(sig, 'base64url')[0], 0, `a signature starting with 0x00 (${tries} tries)`);
    const short = `${h}.${p}.${Buffer.from(sig, 'base64url').subarray(1).toString('base64url')}`;
    const s = await startTestSidecar(t, backend.url, {
      tokens: { issuers: [{ id: 'fapi', issuer: idp.issuer, audience: ['orders'], jwt: { algorithms: ['PS256'] } }] },
    });
    const call = caller(t, s);
    t.equal(await call(jwt), 200);
    const agent = testAgent(s.ca);
    t.teardown(() => agent.close());
    const before = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${short}` } });
    t.equal(before.status, 401, 'the short spelling is refused before any revocation');
    t.match(before.json(), { code: 'ERR_AUTHN_TOKEN_INVALID', detail: /not as long as its key's modulus/ });
    t.match(await revoke(s, short), { status: 400, body: { code: 'ERR_REQUEST_MALFORMED' } }, 'and is not revoked');
    t.equal((await revoke(s, jwt)).status, 200);
    t.equal(await call(jwt), 401, 'the token is refused');
    t.equal(await call(short), 401, 'and its short spelling');
  });

  await t.test('a revoked JWT respelled for introspection is refused, under auto and introspect (defect 166)', async (t) => {
    // An IdP that introspects JWTs with a lenient decoder answers for `token==` or a signature
    // with its spare bits set as for the token; Warden hashed them as written: 200 after revocation.
    const dotted = 'opaque.token.with-dotsQ'; // an opaque token holding dots: no JSON header, not a JWS
    const idp = await keyedIdp(t, 'ES256', [dotted]);
    const jwt = await idp.sign();
    const sig = jwt.split('.')[2]!;
    const respellings = [
      `${jwt}${'='.repeat(4 - (sig.length % 4))}`,
      ...spellingsOf(jwt),
      ...(sig.includes('-') || sig.includes('_') ? [jwt.replace(/-/g, '+').replace(/_/g, '/')] : []),
    ];
    for (const mode of ['auto', 'introspect'] as const) {
      await t.test(`authn.mode ${mode}`, async (t) => {
        const s = await startTestSidecar(t, backend.url, {
          tokens: {
            authn: { mode },
            issuers: [
              { id: 'corp', issuer: idp.issuer, audience: ['orders'], introspection: { client_id: 'rs', client_secret: 'secret' } },
            ],
          },
        });
        const call = caller(t, s);
        t.equal(await call(jwt), 200);
        const agent = testAgent(s.ca);
        t.teardown(() => agent.close());
        for (const other of respellings) {
          const r = await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${other}` } });
          t.equal(r.status, 401, `${other.slice(-4)}: refused before any revocation`);
          t.match(r.json(), { code: 'ERR_AUTHN_TOKEN_INVALID', detail: /not canonical base64url/ });
        }
        t.match((await revoke(s, respellings[0]!)).body, { code: 'ERR_REQUEST_MALFORMED' }, 'a respelling is not revoked');
        t.match((await revoke(s, jwt)).body, { revoked: true, idp: false });
        t.equal(await call(jwt), 401, 'the token is refused');
        for (const other of respellings) t.equal(await call(other), 401, `and ${other.slice(-4)}`);
        if (mode === 'introspect') t.equal(await call(dotted), 200, 'an opaque token with dots is still introspected');
      });
    }
  });

  await t.test('a revoked JWT stays refused past its exp whatever leeway a reload sets (minting off)', async (t) => {
    // The revocation lasted until exp + the leeway at revocation (1 s), acceptance used the current
    // one (60 s): between the two, the revoked JWT was accepted again.
    const idp = await keyedIdp(t, 'ES256');
    const config = (leeway: string) => ({
      tokens: { leeway, mint: { enabled: false }, issuers: [{ id: 'corp', issuer: idp.issuer, audience: ['orders'] }] },
    });
    const s = await startTestSidecar(t, backend.url, config('1s'));
    const call = caller(t, s);
    const exp = Math.floor(Date.now() / 1000) + 3;
    const jwt = await idp.sign({}, exp);
    t.equal(await call(jwt), 200);
    t.equal((await revoke(s, jwt)).status, 200);
    const text = await testConfigYaml(backend.url, config('60s'));
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(s.sidecar.current.loaded.file, text)), 'reloaded: leeway 1s → 60s');
    await sleep(exp * 1000 - Date.now() + 2000);
    const requests = backend.requests.length;
    t.equal(await call(jwt), 401, 'exp + 2 s, within the new leeway: still refused');
    t.equal(backend.requests.length, requests, 'nothing reached the backend');
  });

  await t.test('only a token this sidecar accepts is revoked; nothing from a web page', async (t) => {
    const s = await startTestSidecar(t, backend.url, { tokens: { issuers: [demoIssuer(idp)] } });
    const call = caller(t, s);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    // A JWT naming the trusted issuer, living until 9999, signed by no one: 100 000 of these filled
    // the denylist for good, and every real revocation after failed (defect 102).
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'x' })).toString('base64url');
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Json;
    const payload = Buffer.from(JSON.stringify({ ...claims, exp: 253402300799, jti: 'forged' })).toString('base64url');
    const forged = `${header}.${payload}.${Buffer.alloc(64, 7).toString('base64url')}`;
    const refusedForged = await revoke(s, forged);
    t.equal(refusedForged.status, 400, 'a forged JWT: 400');
    t.match(refusedForged.body, { code: 'ERR_REQUEST_MALFORMED', detail: /nothing was revoked/ });
    const junk = await revoke(s, 'random-opaque-string-the-idp-never-issued');
    t.equal(junk.status, 400, 'an opaque string its IdP does not know: 400, not a day on the list');
    t.match(junk.body, { detail: /nothing was revoked/ });

    for (const headers of [
      { origin: 'https://evil.example' },
      { 'sec-fetch-site': 'cross-site' },
      { origin: 'null' },
      { 'sec-fetch-dest': 'empty' },
    ]) {
      const res = await request(`${s.adminUrl}/tokens/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', ...headers },
        body: `token=${jwt}`,
      });
      t.equal(res.statusCode, 403, `${JSON.stringify(headers)}: refused`);
      t.match(await res.body.json(), { code: 'ERR_ADMIN_BROWSER_REFUSED' });
    }
    t.equal(await call(jwt), 200, 'the token still works: nothing was revoked');
    t.match(await revoke(s, jwt), { status: 200, body: { revoked: true } }, 'revoked with curl');
    t.match(await revoke(s, jwt), { status: 200, body: { revoked: true } }, 'and again: already revoked');
    t.equal(await call(jwt), 401);
  });

  await t.test('an IdP that will not revoke: refused past every cache lifetime, until the token ends', async (t) => {
    // RFC 7009 lets an IdP refuse a client that did not get the token: 400 unauthorized_client.
    const refusing: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"unauthorized_client"}'));
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    t.teardown(() => refusing.close());
    const endpoint = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/revoke`;
    const s = await startTestSidecar(t, backend.url, {
      tokens: { issuers: [demoIssuer(idp, 'demo', { revocation_endpoint: endpoint })], cache: { max_ttl: '300ms' }, idp: { grace: '0s' } },
    });
    const call = caller(t, s);
    const seen = (await idp.issueToken()).accessToken; // cached here: its exp is known
    const unseen = (await idp.issueToken()).accessToken; // never introspected: its exp is not
    t.equal(await call(seen), 200);
    for (const token of [seen, unseen]) t.match((await revoke(s, token)).body, { revoked: true, idp: false });
    await sleep(900); // three times max_ttl: no cached answer is left, and the IdP still says active
    t.equal(await call(seen), 401, 'refused until its exp');
    t.equal(await call(unseen), 401, 'refused, its exp unknown');
  });

  await t.test('opaque tokens under several introspecting issuers: refused wherever routed, only its own IdP told', async (t) => {
    const other = await startDemoIdp();
    t.teardown(() => other.close());
    const s = await startTestSidecar(t, backend.url, {
      // One introspecting issuer in reach per route: an opaque token does not say whose it is (defect 172).
      tokens: { issuers: [demoIssuer(other, 'a'), demoIssuer(idp, 'b')], authn: { issuers: ['a'] } },
      routes: [
        { id: 'partners', path: '/b/*', authn: { issuers: ['b'] } },
        { id: 'any', path: '/x' },
      ],
    });
    const call = caller(t, s);
    const token = (await idp.issueToken()).accessToken;
    t.equal(await call(token, '/b/x'), 200);
    const { status, body } = await revoke(s, token);
    t.equal(status, 200);
    t.match(body, { idp: true, token_hash: tokenHash(idp.issuer, token).slice(0, 16) }, "revoked at b's IdP, under b's hash");
    t.equal(await call(token, '/b/x'), 401, "refused on issuer b's route");
    t.equal(await call(token, '/x'), 401, 'and on the others');
    const unknown = await revoke(s, (await idp.issueToken()).accessToken);
    t.equal(unknown.status, 400, 'a token no issuer here has seen: which IdP to ask is unknown');
    t.match(unknown.body, { detail: /revoke it at its IdP/ });
  });

  await t.test('with Redis: a replica that starts later, or misses the message, refuses the token', async (t) => {
    const redis = await startTestRedis(t);
    const prefix = `rev${Date.now()}:`;
    const config = { tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url, prefix } } };
    const a = await startTestSidecar(t, backend.url, config);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    const opaque = (await idp.issueToken()).accessToken;
    const answers = [(await revoke(a, jwt)).body, (await revoke(a, opaque)).body];
    for (const body of answers) t.match(body, { revoked: true, shared: true, service: 'test' });
    // What a revocation covers: this service's replicas. "shared": true alone read as "everywhere"
    // (docs/adversarial.md 216).
    t.match(answers[0], {
      detail: new RegExp(
        `^Refused from now on by every replica of service test \\(Redis prefix ${prefix}\\); other services that accept this token still do: revoke it through each of them \\(a JWT cannot be revoked at its IdP\\)\\.$`,
      ),
    });
    t.match(answers[1], {
      idp: true,
      detail: /revoked at its IdP too, so other services that accept it refuse it once their cached answer is re-checked/,
    });
    // The IdP call is timed as docs/tokens.md says (it was documented and never recorded).
    t.match(
      await (await fetch(`${a.adminUrl}/metrics`)).text(),
      /warden_idp_call_duration_seconds_count\{[^}]*kind="revocation"[^}]*outcome="ok"[^}]*\} 1/,
      'warden_idp_call_duration_seconds{kind="revocation"}',
    );
    t.match(
      (await revoke(a, jwt)).body,
      { revoked: true, detail: 'The token was already revoked here; nothing changed.' },
      'again: said so',
    );

    const b = await startTestSidecar(t, backend.url, config);
    const callB = caller(t, b);
    t.equal(await callB(jwt), 401, 'a JWT revoked before this replica started');
    t.equal(await callB(opaque), 401, 'an opaque token revoked before this replica started');

    // A mark this replica never got a message for (written while its channel was down), then a reconnect.
    const missed = (await idp.issueToken({ resource: idp.audience })).accessToken;
    t.equal(await callB(missed), 200);
    const admin = new Redis(redis.url);
    t.teardown(() => admin.disconnect());
    // Written as a replica writes it (tagged with the key the replicas derive from their IdP client).
    const tokens = parseSidecarConfig('sidecar.yaml', await testConfigYaml(backend.url, config)).config.tokens;
    const seal = createSharedSeal(sharedStateSecret(tokens!)!);
    const key = `${prefix}rev:${tokenHash(idp.issuer, missed)}`;
    await admin.set(key, seal.sealMark(key, Date.now() + 60_000), 'PX', 60_000);
    t.equal(await callB(missed), 200, 'no message: not known yet');
    await admin.client('KILL', 'TYPE', 'pubsub');
    await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    let status = 200;
    for (let i = 0; i < 60 && status === 200; i++) {
      await sleep(50);
      status = await callB(missed);
    }
    t.equal(status, 401, 'refused once the replica has reconnected and read the marks');
  });

  await t.test('with Redis restarted empty: the replicas write their revocations back', async (t) => {
    const redis = await startTestRedis(t);
    const prefix = `restart${Date.now()}:`;
    const config = { tokens: { issuers: [demoIssuer(idp)], shared: { redis: redis.url, prefix } } };
    const a = await startTestSidecar(t, backend.url, config);
    const jwt = (await idp.issueToken({ resource: idp.audience })).accessToken;
    t.match((await revoke(a, jwt)).body, { revoked: true, shared: true });
    const mark = `${prefix}rev:${tokenHash(idp.issuer, jwt)}`;
    const connections = await redis.clients();
    await redis.stop();
    await redis.start(); // no persistence: every mark is gone
    const admin = new Redis(redis.url);
    t.teardown(() => admin.disconnect());
    await redis.waitForClients(connections + 1);
    let restored = 0;
    for (let i = 0; i < 60 && restored === 0; i++) {
      await sleep(50);
      restored = await admin.exists(mark);
    }
    t.equal(restored, 1, 'replica A wrote its revocation back once it reconnected');
    const pttl = await admin.pttl(mark);
    t.ok(pttl > 0, `for the token's remaining life (${pttl} ms)`);
    const b = await startTestSidecar(t, backend.url, config);
    t.equal(await caller(t, b)(jwt), 401, 'a replica started after the restart refuses the revoked JWT');
    t.equal(await caller(t, a)(jwt), 401, 'and so does A');
  });

  await t.test('with Redis: a revocation lasts as long as the token, a week-long one too', async (t) => {
    const WEEK_S = 7 * 86_400;
    const longIdp = await startDemoIdp({ accessTokenTtlSeconds: WEEK_S });
    t.teardown(() => longIdp.close());
    const redis = await startTestRedis(t);
    const prefix = `week${Date.now()}:`;
    const a = await startTestSidecar(t, backend.url, { tokens: { issuers: [demoIssuer(longIdp)], shared: { redis: redis.url, prefix } } });
    const listener = new Redis(redis.url);
    t.teardown(() => listener.disconnect());
    const published = new Promise<string>((resolve) => listener.on('message', (_channel: string, message: string) => resolve(message)));
    await listener.subscribe(`${prefix}revocations`);
    const jwt = (await longIdp.issueToken({ resource: longIdp.audience })).accessToken;
    const exp = (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp;
    t.ok(exp * 1000 - Date.now() > 6 * 86_400_000, 'the token lives a week');
    t.match((await revoke(a, jwt)).body, { revoked: true, shared: true });
    const admin = new Redis(redis.url);
    t.teardown(() => admin.disconnect());
    const pttl = await admin.pttl(`${prefix}rev:${tokenHash(longIdp.issuer, jwt)}`);
    t.ok(pttl > exp * 1000 - Date.now() - 60_000, `the mark lasts until the token's exp (${Math.round(pttl / 3_600_000)} h), not a day`);
    const until = Number((await published).split(' ')[1]);
    t.ok(until >= exp * 1000, 'and the replicas are told to refuse it until then');
  });
});
