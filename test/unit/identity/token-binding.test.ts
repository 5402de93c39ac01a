/**
 * Sender-constrained tokens (src/identity/token-binding.ts): which tokens are bound (cnf, token_type
 * DPoP), what proves the binding (the connection's certificate, a DPoP proof with the DPoP scheme),
 * and that anything else — a cnf member nobody here can check included — is refused.
 */
import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { createDpopProofs } from '../../../src/identity/dpop-proof.js';
import { principalOf, type IssuerPolicy } from '../../../src/identity/principal.js';
import { createTokenBinding, type BoundRequest } from '../../../src/identity/token-binding.js';
import { NO_PEER, type PeerIdentity } from '../../../src/mesh/peer-identity.js';
import { dpopClient } from '../../support/dpop.js';
import { bearerChallenge } from '../../../src/pipeline/rescue.js';

const policy: IssuerPolicy = { id: 'idp', issuer: 'https://idp.example.com', audience: ['orders'], anyAudience: false, tokenTypes: [] };
const CFG = { max_age: 60_000, clock_skew: 5_000, algorithms: ['ES256'], replay_cache_entries: 1000 };
const TOKEN = 'the-token';
const CERT_HEX = 'ab'.repeat(32);
const X5T = Buffer.from(CERT_HEX, 'hex').toString('base64url');
const peer = (sha256: string, verified = true): PeerIdentity => ({ ...NO_PEER, presented: true, verified, error: undefined, sha256 });

const principal = (claims: Record<string, unknown>) => principalOf({ sub: 's', ...claims }, policy, 'jwt', 'cd'.repeat(32));
const req = (over: Partial<BoundRequest> = {}): BoundRequest => ({
  method: 'GET',
  path: '/orders',
  peer: NO_PEER,
  headers: {},
  upstreamHeaders: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example' },
  ...over,
});
const outcome = async (v: unknown) => {
  const r = await v;
  // The challenge the response carries: the refusal's own, else rescue's Bearer one.
  const challenge = r instanceof WardenError ? (r.headers?.['www-authenticate'] ?? bearerChallenge(r, 'orders')) : undefined;
  return r instanceof WardenError ? { code: r.code, rule: r.rule, challenge: challenge?.split(' ')[0] } : r;
};
const binding = () => createTokenBinding(createDpopProofs(CFG, 'orders'));

t.test('a bearer token (no cnf, no token_type DPoP) passes with the Bearer scheme, a stray DPoP header ignored', async (t) => {
  const b = binding();
  t.equal(b.check(req(), principal({}), TOKEN, false), undefined);
  t.equal(b.check(req(), principal({ token_type: 'Bearer' }), TOKEN, false), undefined);
  t.equal(b.check(req({ headers: { dpop: 'anything' } }), principal({}), TOKEN, false), undefined, 'RFC 9449 §7.2');
  t.same(await outcome(b.check(req(), principal({}), TOKEN, true)), {
    code: 'ERR_AUTHN_TOKEN_UNBOUND',
    rule: 'dpop.not_bound',
    challenge: 'DPoP',
  });
});

t.test('cnf it cannot check: refused (fail closed)', async (t) => {
  const b = binding();
  const cases: [string, Record<string, unknown>, string][] = [
    ['cnf.jwk (RFC 7800)', { cnf: { jwk: { kty: 'EC' } } }, 'cnf.unknown'],
    ['cnf.kid', { cnf: { kid: 'k1' } }, 'cnf.unknown'],
    ['a known member beside an unknown one', { cnf: { 'x5t#S256': X5T, jku: 'https://x' } }, 'cnf.unknown'],
    ['x5t#S256 not a string', { cnf: { 'x5t#S256': 7 } }, 'cnf.unknown'],
    ['cnf a string', { cnf: 'x' }, 'cnf.format'],
    ['cnf null', { cnf: null }, 'cnf.format'],
    ['cnf an array', { cnf: [X5T] }, 'cnf.format'],
    ['cnf empty', { cnf: {} }, 'cnf.empty'],
    ['token_type DPoP without cnf', { token_type: 'DPoP' }, 'cnf.jkt'],
    ['token_type dpop, cnf.x5t#S256 only', { token_type: 'dpop', cnf: { 'x5t#S256': X5T } }, 'cnf.jkt'],
  ];
  for (const [name, claims, rule] of cases) {
    const r = await b.check(req({ peer: peer(CERT_HEX) }), principal(claims), TOKEN, false);
    t.same(r && { code: r.code, rule: r.rule }, { code: 'ERR_AUTHN_TOKEN_UNBOUND', rule }, name);
  }
});

t.test('cnf.x5t#S256 (RFC 8705): only on a connection with that verified certificate, on every request', async (t) => {
  const b = binding();
  const p = principal({ cnf: { 'x5t#S256': X5T } });
  t.equal(b.check(req({ peer: peer(CERT_HEX) }), p, TOKEN, false), undefined, 'the certificate it is bound to');
  const refused = { code: 'ERR_AUTHN_TOKEN_UNBOUND', rule: 'cnf.x5t', challenge: 'Bearer' };
  t.same(await outcome(b.check(req(), p, TOKEN, false)), refused, 'no certificate (the same principal, a later request)');
  t.same(await outcome(b.check(req({ peer: peer('cd'.repeat(32)) }), p, TOKEN, false)), refused, 'another certificate');
  t.same(await outcome(b.check(req({ peer: peer(CERT_HEX, false) }), p, TOKEN, false)), refused, 'that certificate, not verified');
  t.equal(b.check(req({ peer: peer(CERT_HEX) }), p, TOKEN, false), undefined, 'and again with it');
  t.same(await outcome(b.check(req({ peer: peer(CERT_HEX) }), p, TOKEN, true)), {
    code: 'ERR_AUTHN_TOKEN_UNBOUND',
    rule: 'dpop.not_bound',
    challenge: 'DPoP',
  });
});

t.test('cnf.jkt (RFC 9449): the DPoP scheme and a proof of that key; the Bearer scheme is refused', async (t) => {
  const b = binding();
  const c = await dpopClient();
  const p = principal({ cnf: { jkt: c.jkt }, token_type: 'DPoP' });
  t.same(await outcome(b.check(req(), p, TOKEN, false)), { code: 'ERR_AUTHN_TOKEN_UNBOUND', rule: 'dpop.scheme', challenge: 'DPoP' });
  const proof = await c.proof('GET', 'https://api.example/orders', { token: TOKEN });
  t.same(await outcome(b.check(req({ headers: { dpop: proof } }), p, TOKEN, false)), {
    code: 'ERR_AUTHN_TOKEN_UNBOUND',
    rule: 'dpop.scheme',
    challenge: 'DPoP',
  });
  t.equal(await b.check(req({ headers: { dpop: proof } }), p, TOKEN, true), undefined);
  t.same(await outcome(b.check(req(), p, TOKEN, true)), { code: 'ERR_AUTHN_DPOP_INVALID', rule: 'dpop.missing', challenge: 'DPoP' });

  // Bound to both: both proofs are needed.
  const both = principal({ cnf: { jkt: c.jkt, 'x5t#S256': X5T } });
  const proof2 = await c.proof('GET', 'https://api.example/orders', { token: TOKEN });
  t.same(await outcome(b.check(req({ headers: { dpop: proof2 } }), both, TOKEN, true)), {
    code: 'ERR_AUTHN_TOKEN_UNBOUND',
    rule: 'cnf.x5t',
    challenge: 'Bearer',
  });
  t.equal(await b.check(req({ headers: { dpop: proof2 }, peer: peer(CERT_HEX) }), both, TOKEN, true), undefined);
});
