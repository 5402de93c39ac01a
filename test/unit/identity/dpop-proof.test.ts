/**
 * DPoP proof checks (src/identity/dpop-proof.ts, dpop-htu.ts, dpop-replay.ts), RFC 9449 §4.3: one
 * valid proof per request, and each way a proof can be wrong, forged or replayed.
 */
import t from 'tap';
import { createHmac, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { WardenError } from '../../../src/errors.js';
import {
  configureReplayCache,
  createDpopProofs,
  replayCacheFor,
  replayShareOf,
  type DpopRequest,
} from '../../../src/identity/dpop-proof.js';
import { htuMatches } from '../../../src/identity/dpop-htu.js';
import { ReplayCache } from '../../../src/identity/dpop-replay.js';
import { dpopClient } from '../../support/dpop.js';

const CFG = {
  max_age: 60_000,
  clock_skew: 5_000,
  algorithms: ['ES256', 'ES384', 'ES512', 'RS256', 'PS256', 'EdDSA'],
  replay_cache_entries: 1000,
};
const TOKEN = 'opaque-access-token-1';
const HTU = 'https://api.example:8443/orders/7';
const ATTRS = { 'warden.token.issuer': 'idp' };
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const request = (proof: string | string[] | undefined, over: Partial<DpopRequest> = {}): DpopRequest => ({
  method: 'GET',
  path: '/orders/7',
  scheme: 'https',
  authority: 'api.example:8443',
  proof,
  ...over,
});

const outcome = async (v: unknown) => {
  const r = await v;
  return r instanceof WardenError ? { code: r.code, rule: r.rule } : r;
};

t.test('a valid proof passes once; the same proof again is a replay', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const client = await dpopClient();
  const proof = await client.proof('GET', HTU, { token: TOKEN });
  t.equal(await proofs.check(request(proof), TOKEN, client.jkt, ATTRS), undefined);
  const again = await proofs.check(request(proof), TOKEN, client.jkt, ATTRS);
  t.same(await outcome(again), { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.replay' });
  t.match(
    (again as WardenError).headers?.['www-authenticate'],
    /^DPoP realm="orders", error="invalid_dpop_proof", error_description="[^"]+", algs="ES256 ES384 ES512 RS256 PS256 EdDSA"$/,
  );
  t.equal((again as WardenError).status, 401);
});

t.test('each allowed algorithm family verifies (RS256, PS256, EdDSA)', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  for (const alg of ['RS256', 'PS256', 'EdDSA'] as const) {
    const client = await dpopClient(alg);
    t.equal(await proofs.check(request(await client.proof('GET', HTU, { token: TOKEN })), TOKEN, client.jkt, ATTRS), undefined, alg);
  }
  const only = createDpopProofs({ ...CFG, algorithms: ['ES256'] }, 'orders');
  const rsa = await dpopClient('RS256');
  t.same(await outcome(only.check(request(await rsa.proof('GET', HTU, { token: TOKEN })), TOKEN, rsa.jkt, ATTRS)), {
    code: 'ERR_AUTHN_DPOP_INVALID',
    rule: 'dpop.alg',
  });
});

t.test('refused: request mismatches (htm, htu, ath), time (iat), jti', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const c = await dpopClient();
  const now = Math.floor(Date.now() / 1000);
  const cases: [string, Promise<string>, string, Partial<DpopRequest>?][] = [
    ['another method', c.proof('POST', HTU, { token: TOKEN }), 'dpop.htm'],
    ['the method in lower case', c.proof('get', HTU, { token: TOKEN }), 'dpop.htm'],
    ['another path', c.proof('GET', 'https://api.example:8443/orders/8', { token: TOKEN }), 'dpop.htu'],
    ['another host', c.proof('GET', 'https://other.example:8443/orders/7', { token: TOKEN }), 'dpop.htu'],
    ['another port', c.proof('GET', 'https://api.example:9443/orders/7', { token: TOKEN }), 'dpop.htu'],
    ['http', c.proof('GET', 'http://api.example:8443/orders/7', { token: TOKEN }), 'dpop.htu'],
    ['a relative htu', c.proof('GET', '/orders/7', { token: TOKEN }), 'dpop.htu'],
    ['htu with user info', c.proof('GET', 'https://u:p@api.example:8443/orders/7', { token: TOKEN }), 'dpop.htu'],
    ['no htu', c.proof('GET', HTU, { token: TOKEN, claims: { htu: undefined } }), 'dpop.htu'],
    ['no ath', c.proof('GET', HTU), 'dpop.ath'],
    ['the ath of another token', c.proof('GET', HTU, { token: 'another-token' }), 'dpop.ath'],
    ['iat 2 minutes ago', c.proof('GET', HTU, { token: TOKEN, iat: now - 120 }), 'dpop.iat'],
    ['iat 61 s ago', c.proof('GET', HTU, { token: TOKEN, iat: now - 61 }), 'dpop.iat'],
    ['iat a minute ahead', c.proof('GET', HTU, { token: TOKEN, iat: now + 60 }), 'dpop.iat'],
    ['no iat', c.proof('GET', HTU, { token: TOKEN, claims: { iat: undefined } }), 'dpop.iat'],
    ['no jti', c.proof('GET', HTU, { token: TOKEN, claims: { jti: undefined } }), 'dpop.jti'],
    ['a jti of 300 characters', c.proof('GET', HTU, { token: TOKEN, jti: 'j'.repeat(300) }), 'dpop.jti'],
    ['no Host known', c.proof('GET', HTU, { token: TOKEN }), 'dpop.htu', { authority: undefined }],
  ];
  for (const [name, proof, rule, over] of cases) {
    t.same(await outcome(proofs.check(request(await proof, over), TOKEN, c.jkt, ATTRS)), { code: 'ERR_AUTHN_DPOP_INVALID', rule }, name);
  }
});

t.test('accepted: htu spellings of the same URI (RFC 9449 §4.3 normalisation), iat within the skew', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const c = await dpopClient();
  const now = Math.floor(Date.now() / 1000);
  const ok: [string, string, Partial<DpopRequest>?, number?][] = [
    ['scheme and host in upper case', 'HTTPS://API.Example:8443/orders/7'],
    ['query and fragment ignored', 'https://api.example:8443/orders/7?x=1#frag'],
    ['dot segments and an escaped unreserved character', 'https://api.example:8443/a/../%6Frders/./7'],
    ['the default port written out', 'https://api.example:443/orders/7', { authority: 'api.example' }],
    ['the default port in the Host', 'https://api.example/orders/7', { authority: 'api.example:443' }],
    ["a trusted proxy's scheme", 'http://api.example:8443/orders/7', { scheme: 'http' }],
    ['iat 3 s ahead (within clock_skew)', HTU, {}, now + 3],
    ['iat 50 s ago', HTU, {}, now - 50],
  ];
  for (const [name, htu, over, iat] of ok) {
    const proof = await c.proof('GET', htu, { token: TOKEN, ...(iat !== undefined ? { iat } : {}) });
    t.equal(await proofs.check(request(proof, over), TOKEN, c.jkt, ATTRS), undefined, name);
  }
  t.notOk(
    htuMatches('https://api.example:8443/orders/7', { scheme: 'https', authority: 'bad host', path: '/orders/7' }),
    'a Host that is not one',
  );
});

t.test('typ: dpop+jwt, with or without its media type prefix, in any letter case (RFC 7515 §4.1.9)', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const c = await dpopClient();
  for (const typ of ['dpop+jwt', 'DPoP+JWT', 'application/dpop+jwt', 'Application/DPoP+JWT'])
    t.equal(await proofs.check(request(await c.proof('GET', HTU, { token: TOKEN, header: { typ } })), TOKEN, c.jkt, ATTRS), undefined, typ);
  for (const typ of ['application/jwt', 'text/dpop+jwt', 'application/dpop+jwt; charset=utf-8', 'application/at+jwt', ' dpop+jwt'])
    t.same(
      await outcome(proofs.check(request(await c.proof('GET', HTU, { token: TOKEN, header: { typ } })), TOKEN, c.jkt, ATTRS)),
      { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.typ' },
      typ,
    );
});

t.test('refused: header and signature (typ, alg, jwk, forged, tampered, shape)', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const c = await dpopClient();
  const thief = await dpopClient();
  const valid = await c.proof('GET', HTU, { token: TOKEN });
  const [h, p, s] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const hmacInput = `${b64({ alg: 'HS256', typ: 'dpop+jwt', jwk: c.jwk })}.${p}`;
  const privateJwk = { ...c.jwk, d: 'AAAA' };
  const cases: [string, string | Promise<string>, string][] = [
    ['typ JWT', c.proof('GET', HTU, { token: TOKEN, header: { typ: 'JWT' } }), 'dpop.typ'],
    ['no typ', `${b64({ alg: 'ES256', jwk: c.jwk })}.${p}.${s}`, 'dpop.typ'],
    ['alg none', `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: c.jwk })}.${p}.`, 'dpop.format'],
    ['alg none with a signature part', `${b64({ alg: 'none', typ: 'dpop+jwt', jwk: c.jwk })}.${p}.AAAA`, 'dpop.alg'],
    [
      'HS256 keyed with the public key',
      `${hmacInput}.${createHmac('sha256', JSON.stringify(c.jwk)).update(hmacInput).digest('base64url')}`,
      'dpop.alg',
    ],
    ['no jwk', `${b64({ alg: 'ES256', typ: 'dpop+jwt' })}.${p}.${s}`, 'dpop.jwk'],
    ['a private jwk', `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: privateJwk })}.${p}.${s}`, 'dpop.jwk'],
    ['jwk of one key, signed by another', c.proof('GET', HTU, { token: TOKEN, signingKey: thief.privateKey }), 'dpop.signature'],
    ['claims changed after signing', `${h}.${b64({ ...claims, htm: 'GET', jti: 'other' })}.${s}`, 'dpop.signature'],
    ['not a JWS', 'not-a-proof', 'dpop.format'],
    ['a JWS with junk in the header', `bm90anNvbg.${p}.${s}`, 'dpop.format'],
    ['two proofs (repeated header, joined)', `${valid}, ${valid}`, 'dpop.multiple'],
  ];
  for (const [name, proof, rule] of cases) {
    t.same(await outcome(proofs.check(request(await proof), TOKEN, c.jkt, ATTRS)), { code: 'ERR_AUTHN_DPOP_INVALID', rule }, name);
  }
  t.same(await outcome(proofs.check(request([valid, valid]), TOKEN, c.jkt, ATTRS)), {
    code: 'ERR_AUTHN_DPOP_INVALID',
    rule: 'dpop.multiple',
  });
  t.same(await outcome(proofs.check(request(undefined), TOKEN, c.jkt, ATTRS)), { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.missing' });
  // The original, untouched, still passes: none of the refusals above took its jti.
  t.equal(await proofs.check(request(valid), TOKEN, c.jkt, ATTRS), undefined);
});

t.test("a valid proof of another key (the thief's own) does not prove the token's binding", async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const owner = await dpopClient();
  const thief = await dpopClient();
  const refused = await proofs.check(request(await thief.proof('GET', HTU, { token: TOKEN })), TOKEN, owner.jkt, ATTRS);
  t.same(await outcome(refused), { code: 'ERR_AUTHN_TOKEN_UNBOUND', rule: 'dpop.jkt' });
  t.match((refused as WardenError).headers?.['www-authenticate'], /^DPoP realm="orders", error="invalid_token"/);
});

t.test('the key is compared before the signature is verified; RSA proof keys are of a client’s size', async (t) => {
  const proofs = createDpopProofs(CFG, 'orders');
  const owner = await dpopClient();
  const thief = await dpopClient();
  const valid = await owner.proof('GET', HTU, { token: TOKEN });
  const [, p, s] = valid.split('.') as [string, string, string];
  const unbound = { code: 'ERR_AUTHN_TOKEN_UNBOUND', rule: 'dpop.jkt' };
  // Another key's jwk over the owner's claims and signature: refused on its thumbprint (it used to be verified first: dpop.signature).
  t.same(
    await outcome(proofs.check(request(`${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: thief.jwk })}.${p}.${s}`), TOKEN, owner.jkt, ATTRS)),
    unbound,
    'header swapped for another key',
  );

  // An RSA key with a 3072-bit modulus and a 3072-bit exponent: verifying with it cost ten requests.
  const big = (bytes: number) => {
    const b = randomBytes(bytes);
    b[0] = (b[0] as number) | 0x80;
    b[bytes - 1] = (b[bytes - 1] as number) | 1;
    return b.toString('base64url');
  };
  const rsaProof = (jwk: Record<string, string>) =>
    `${b64({ alg: 'RS256', typ: 'dpop+jwt', jwk })}.${p}.${randomBytes(jwk.n ? Buffer.from(jwk.n, 'base64url').length : 256).toString('base64url')}`;
  const hugeExponent = { kty: 'RSA', n: big(384), e: big(384) };
  // An RSA key of a client's size that is not the token's: refused on its thumbprint, unverified (before: dpop.signature).
  t.same(
    await outcome(proofs.check(request(rsaProof({ kty: 'RSA', n: big(256), e: 'AQAB' })), TOKEN, owner.jkt, ATTRS)),
    unbound,
    'another RSA key',
  );
  // Such a key is refused on its size, before its thumbprint or signature, bound to the token (an IdP that bound one) or not.
  t.same(
    await outcome(proofs.check(request(rsaProof(hugeExponent)), TOKEN, owner.jkt, ATTRS)),
    { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.jwk' },
    'a 3072-bit exponent, not the token’s key',
  );
  const sizes: [string, Record<string, string>][] = [
    ['a 3072-bit exponent', hugeExponent],
    ['a 33-bit exponent', { kty: 'RSA', n: big(256), e: Buffer.from([1, 0, 0, 0, 1]).toString('base64url') }],
    ['a 1024-bit modulus', { kty: 'RSA', n: big(128), e: 'AQAB' }],
    ['an 8192-bit modulus', { kty: 'RSA', n: big(1024), e: 'AQAB' }],
    ['no exponent', { kty: 'RSA', n: big(256), e: '' }],
    ['a zero exponent', { kty: 'RSA', n: big(256), e: 'AAAA' }],
  ];
  for (const [name, jwk] of sizes) {
    const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256').catch(() => owner.jkt);
    t.same(
      await outcome(proofs.check(request(rsaProof(jwk)), TOKEN, jkt, ATTRS)),
      { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.jwk' },
      name,
    );
  }
  // The sizes clients use pass the size check (and fail only on their made-up signature).
  for (const [name, jwk] of [
    ['2048-bit modulus, e = 65537', { kty: 'RSA', n: big(256), e: 'AQAB' }],
    ['4096-bit modulus, a 32-bit exponent', { kty: 'RSA', n: big(512), e: big(4) }],
  ] as const) {
    const jkt = await calculateJwkThumbprint(jwk, 'sha256');
    t.same(
      await outcome(proofs.check(request(rsaProof(jwk)), TOKEN, jkt, ATTRS)),
      { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.signature' },
      name,
    );
  }
  // An unknown key type has no thumbprint.
  t.same(
    await outcome(
      proofs.check(request(`${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: 'XYZ', x: 'AA' } })}.${p}.${s}`), TOKEN, owner.jkt, ATTRS),
    ),
    { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.jwk' },
    'a jwk of no known type',
  );
  t.equal(await proofs.check(request(valid), TOKEN, owner.jkt, ATTRS), undefined, 'the owner’s proof still passes');
});

t.test('the replay cache: full is refused (503), never evicted; entries end after max_age + clock_skew', async (t) => {
  const proofs = createDpopProofs({ ...CFG, replay_cache_entries: 2, replay_entries_per_caller: 2 }, 'orders');
  const c = await dpopClient();
  for (let i = 0; i < 2; i++)
    t.equal(await proofs.check(request(await c.proof('GET', HTU, { token: TOKEN })), TOKEN, c.jkt, ATTRS), undefined);
  const full = await proofs.check(request(await c.proof('GET', HTU, { token: TOKEN })), TOKEN, c.jkt, ATTRS);
  t.same(await outcome(full), { code: 'ERR_DPOP_REPLAY_FULL', rule: 'dpop.replay_cache' });
  t.equal((full as WardenError).status, 503);
  t.equal((full as WardenError).headers?.['retry-after'], '1');

  const cache = new ReplayCache(2, 1000);
  t.equal(cache.remember('a', 0), 'fresh');
  t.equal(cache.remember('a', 999), 'replayed');
  t.equal(cache.remember('b', 500), 'fresh');
  t.equal(cache.remember('c', 600), 'full');
  t.equal(cache.remember('a', 1000), 'fresh', "a's life has ended: it left, and is new again");
  t.equal(cache.remember('c', 1500), 'fresh', 'b has ended too');
  t.equal(cache.size, 2);
});

t.test('the replay cache: each caller holds at most its share; past it only that caller is refused (429)', async (t) => {
  t.equal(replayShareOf({ replay_cache_entries: 200_000 }), 25_000, 'an eighth by default…');
  t.equal(replayShareOf({ replay_cache_entries: 3000 }), 1000, '…at least 1 000…');
  t.equal(replayShareOf({ replay_cache_entries: 1000 }), 500, '…at most half');
  t.equal(replayShareOf({ replay_cache_entries: 1000, replay_entries_per_caller: 1000 }), 1000, 'or as configured');

  const proofs = createDpopProofs({ ...CFG, replay_cache_entries: 4, replay_entries_per_caller: 2 }, 'orders');
  const c = await dpopClient();
  const send = async (caller?: string) => proofs.check(request(await c.proof('GET', HTU, { token: TOKEN })), TOKEN, c.jkt, ATTRS, caller);
  t.equal(await send('mallory'), undefined);
  t.equal(await send('mallory'), undefined);
  const over = await send('mallory');
  t.same(await outcome(over), { code: 'ERR_DPOP_REPLAY_SHARE', rule: 'dpop.replay_share' });
  t.equal((over as WardenError).status, 429);
  t.equal((over as WardenError).headers?.['retry-after'], '1');
  t.equal(await send('alice'), undefined, 'another caller is not affected');
  t.equal(await send(), undefined, 'without a caller, the key is the caller');
  t.same(await outcome(await send('bob')), { code: 'ERR_DPOP_REPLAY_FULL', rule: 'dpop.replay_cache' }, 'full is still full');

  const cache = new ReplayCache(10, 1000, 2);
  t.equal(cache.remember('a', 0, 'm'), 'fresh');
  t.equal(cache.remember('b', 100, 'm'), 'fresh');
  t.equal(cache.remember('c', 200, 'm'), 'share');
  t.equal(cache.remember('a', 300, 'x'), 'replayed', 'a replay is a replay, whoever sends it');
  t.equal(cache.remember('d', 300, 'x'), 'fresh');
  t.equal(cache.owners, 2);
  t.equal(cache.remember('c', 1000, 'm'), 'fresh', "a's life has ended: m holds one entry, and may add another");
  t.equal(cache.remember('e', 1050, 'm'), 'share', 'b and c: its share again');
  t.equal(cache.remember('f', 2500, 'y'), 'fresh');
  t.equal(cache.owners, 1, 'callers whose entries have all ended are forgotten');
  t.equal(cache.size, 1);
});

t.test('the replay cache outlives a reload: configure keeps what was seen, lengthens lives, never shortens them', async (t) => {
  const cache = new ReplayCache(2, 1000);
  t.equal(cache.remember('a', 0), 'fresh');
  cache.configure(3, 2000);
  t.equal(cache.remember('a', 1500), 'replayed', "a longer life lengthens a's: it is still refused at 1 500");
  t.equal(cache.remember('b', 1600), 'fresh');
  t.equal(cache.remember('c', 1700), 'fresh', 'room for three now');
  cache.configure(3, 100);
  t.equal(cache.remember('b', 1900), 'replayed', 'a shorter life does not shorten b’s (it ends at 3 600)');
  t.equal(cache.remember('a', 2000), 'fresh', "a's lengthened life has ended");

  const first = createDpopProofs(CFG, 'orders');
  const c = await dpopClient();
  const proof = await c.proof('GET', HTU, { token: TOKEN });
  t.equal(await first.check(request(proof), TOKEN, c.jkt, ATTRS), undefined, 'accepted once');
  const shared = replayCacheFor(CFG);
  const before = createDpopProofs(CFG, 'orders', shared);
  t.equal(await before.check(request(proof), TOKEN, c.jkt, ATTRS), undefined, 'by the runtime before the reload');
  const after = createDpopProofs({ ...CFG, max_age: 120_000 }, 'orders', shared);
  configureReplayCache(shared, { ...CFG, max_age: 120_000 });
  t.same(
    await outcome(await after.check(request(proof), TOKEN, c.jkt, ATTRS)),
    { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.replay' },
    'refused by the one after it',
  );
});
