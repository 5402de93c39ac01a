/**
 * A revocation of a JWT whose `exp` is absurdly far ahead (1e16 s from a hostile IdP, 1e13 s: an
 * exp in ms) is revoked for ever and shared like any other: written back to a Redis that lost it in
 * a form every replica reads, and it does not keep a replica from reading the marks it missed while
 * its channel was down. Before, its end went to Redis unbounded: PX ~1e19 failed the write-back's
 * transaction, which skipped the read of the marks on every reconnect (a JWT revoked by another
 * replica meanwhile stayed accepted), and an end of 17 digits was a mark no replica read back.
 * A real Redis, a real IdP of its own key.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import t from 'tap';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { request } from 'undici';
import { createSharedSeal, sharedStateSecret } from '../../src/identity/shared-seal.js';
import type { TokensConfig } from '../../src/config/types.js';
import { tokenHash } from '../../src/identity/token-hash.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestRedis } from '../support/redis.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const KEY = 'k'.repeat(40);

function caller(t: { teardown(fn: () => unknown): void }, s: TestSidecar) {
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  return async (token: string) => (await fetchText(`${s.url}/x`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
}

async function revoke(s: TestSidecar, token: string): Promise<Record<string, unknown>> {
  const res = await request(`${s.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await res.body.json()) as Record<string, unknown>;
}

t.test('a revocation of a JWT with an exp centuries ahead does not break shared revocations', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let issuer = '';
  const idp = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  t.teardown(() => {
    idp.closeAllConnections();
    idp.close();
  });
  const sign = (sub: string, exp: number) =>
    new SignJWT({ sub, aud: 'api', scope: 'read', client_id: 'app' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(privateKey);

  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const redis = await startTestRedis(t);
  const prefix = `farexp${Date.now()}:`;
  const config = {
    tokens: { issuers: [{ id: 'corp', issuer, audience: ['api'] }], shared: { redis: redis.url, prefix, key: KEY, write_back: '300ms' } },
  };
  const a = await startTestSidecar(t, backend.url, config);
  const callA = caller(t, a);
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  const seal = createSharedSeal(sharedStateSecret({ shared: { key: KEY }, issuers: [] } as unknown as TokensConfig)!);
  const markOf = (jwt: string) => `${prefix}rev:${tokenHash(issuer, jwt)}`;

  // exp 1e16 s: an end of ~1e19 ms, past what Redis takes as an expiry. exp 1e13 s (an exp in ms):
  // an end of 17 digits, past what a mark holds.
  const hostile = await sign('bob', 1e16);
  const inMs = await sign('carol', 1e13);
  for (const jwt of [hostile, inMs]) {
    t.equal(await callA(jwt), 200, 'accepted before its revocation');
    t.match(await revoke(a, jwt), { revoked: true, shared: true });
    t.equal(await callA(jwt), 401, 'refused once revoked');
  }

  // Redis loses the marks (a restart without persistence): the write-back puts them back, readable.
  await admin.flushall();
  const written = async () => Promise.all([hostile, inMs].map(async (jwt) => admin.get(markOf(jwt))));
  let values = await written();
  for (let i = 0; i < 40 && values.some((v) => v === null); i++) {
    await sleep(100);
    values = await written();
  }
  for (const [i, value] of values.entries()) {
    const until = typeof value === 'string' ? seal.openMark(markOf([hostile, inMs][i]!), value) : undefined;
    t.ok(until !== undefined && until > Date.now() + 100 * 365 * 86_400_000, `mark ${i} written back, readable, for ever (${until})`);
  }

  // Another replica revokes a token while A's channel is down: a mark, no message. A reads it on reconnect.
  const victim = await sign('alice', Math.floor(Date.now() / 1000) + 3600);
  t.equal(await callA(victim), 200);
  const mark = markOf(victim);
  await admin.set(mark, seal.sealMark(mark, Date.now() + 3_600_000), 'PX', 3_600_000);
  t.equal(await callA(victim), 200, 'no message: not known yet');
  await admin.client('KILL', 'TYPE', 'pubsub');
  await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
  let status = 200;
  for (let i = 0; i < 60 && status === 200; i++) {
    await sleep(100);
    status = await callA(victim);
  }
  t.equal(status, 401, 'refused once A has reconnected and read the marks');

  const b = await startTestSidecar(t, backend.url, config);
  const callB = caller(t, b);
  t.equal(await callB(hostile), 401, 'a replica started later refuses the exp-1e16 JWT');
  t.equal(await callB(inMs), 401, 'and the exp-in-ms one');
  t.equal(await callB(victim), 401, 'and the one revoked while A was disconnected');
});
