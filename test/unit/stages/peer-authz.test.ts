import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import type { RequestContext } from '../../../src/pipeline/stage.js';
import { NO_PEER, peerNow, type PeerIdentity } from '../../../src/mesh/peer-identity.js';
import { readCrl } from '../../../src/net/crl-reader.js';
import { createRevocationList } from '../../../src/mesh/revocation-list.js';
import { createPeerAuthzStage } from '../../../src/stages/peer-authz.js';
import { testContext } from '../../support/request-context.js';

const verified = (spiffeId: string, serial = '0a1b', notAfter = Infinity): PeerIdentity => ({
  presented: true,
  verified: true,
  error: undefined,
  spiffeId,
  serial,
  chain: [],
  sha256: 'ab'.repeat(32),
  notAfter,
});
const noCert: PeerIdentity = NO_PEER;

function ctx(peer: PeerIdentity, incoming: Record<string, string> = {}): RequestContext {
  return testContext({ protocol: '2', peer, headers: incoming });
}
const codeOf = (v: unknown) => (v instanceof WardenError ? v.code : v);

t.test('require: no certificate → 401 ERR_PEER_CERT_REQUIRED; optional lets it through without XFCC', async (t) => {
  const required = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: 'spiffe://td/ns/a/sa/me' }, { revocations: undefined });
  t.equal(codeOf(required.run(ctx(noCert))), 'ERR_PEER_CERT_REQUIRED');
  const optional = createPeerAuthzStage({ mtls: 'optional', allow: [], ownId: 'spiffe://td/ns/a/sa/me' }, { revocations: undefined });
  const c = ctx(noCert);
  t.equal(optional.run(c), undefined);
  t.equal(c.upstreamHeaders['x-forwarded-client-cert'], undefined);
});

t.test('a presented but unverified certificate is refused even where mTLS is optional', async (t) => {
  const stage = createPeerAuthzStage({ mtls: 'optional', allow: [], ownId: undefined }, { revocations: undefined });
  const expired = { ...verified('spiffe://td/x'), verified: false, error: 'CERT_HAS_EXPIRED' };
  t.equal(codeOf(stage.run(ctx(expired))), 'ERR_PEER_CERT_INVALID');
  t.equal(codeOf(stage.run(ctx({ ...expired, error: 'CERT_REVOKED' }))), 'ERR_PEER_REVOKED');
});

t.test('allow list: exact ids and prefixes; others → 403 ERR_AUTHZ_PEER_DENIED', async (t) => {
  const stage = createPeerAuthzStage(
    { mtls: 'require', allow: ['spiffe://td/ns/payments/*', 'spiffe://td/ns/shop/sa/frontend'], ownId: 'spiffe://td/ns/a/sa/me' },
    { revocations: undefined },
  );
  t.equal(stage.run(ctx(verified('spiffe://td/ns/payments/sa/api'))), undefined);
  t.equal(stage.run(ctx(verified('spiffe://td/ns/shop/sa/frontend'))), undefined);
  t.equal(codeOf(stage.run(ctx(verified('spiffe://td/ns/shop/sa/frontend2')))), 'ERR_AUTHZ_PEER_DENIED');
  t.equal(codeOf(stage.run(ctx(verified('spiffe://td/ns/paymentsX/sa/api')))), 'ERR_AUTHZ_PEER_DENIED');
  t.equal(codeOf(stage.run(ctx(verified('spiffe://td/ns/payments')))), 'ERR_AUTHZ_PEER_DENIED');
});

t.test('XFCC is computed from the verified certificate', async (t) => {
  const stage = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: 'spiffe://td/ns/a/sa/me' }, { revocations: undefined });
  const c = ctx(verified('spiffe://td/ns/b/sa/caller'), { 'x-forwarded-client-cert': 'By=evil;URI=spiffe://td/ns/admin' });
  t.equal(stage.run(c), undefined);
  t.equal(c.upstreamHeaders['x-forwarded-client-cert'], `By=spiffe://td/ns/a/sa/me;Hash=${'ab'.repeat(32)};URI=spiffe://td/ns/b/sa/caller`);
});

t.test('a serial on the CRL in force is refused on every request (kept-alive connections too)', async (t) => {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const crl = await x509.X509CrlGenerator.create({
    issuer: 'CN=test',
    nextUpdate: new Date(Date.now() + 60_000),
    entries: [{ serialNumber: '00A1B2', revocationDate: new Date() }],
    signingAlgorithm: alg,
    signingKey: keys.privateKey,
  });
  const empty = await x509.X509CrlGenerator.create({
    issuer: 'CN=test',
    nextUpdate: new Date(Date.now() + 60_000),
    entries: [],
    signingAlgorithm: alg,
    signingKey: keys.privateKey,
  });
  const revocations = createRevocationList();
  revocations.update(readCrl(new Uint8Array(empty.rawData)));
  const stage = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: undefined }, { revocations });
  const c = () => ctx(verified('spiffe://td/ns/b/sa/caller', 'a1b2'));
  t.equal(stage.run(c()), undefined, 'allowed before the CRL lists it');
  revocations.update(readCrl(new Uint8Array(crl.rawData)));
  t.equal(revocations.size, 1);
  t.equal(codeOf(stage.run(c())), 'ERR_PEER_REVOKED', 'refused once it does (serials compared without leading zeros or case)');
  t.equal(stage.run(ctx(verified('spiffe://td/ns/b/sa/caller', 'a1b3'))), undefined, 'other serials unaffected');
});

t.test('no CRL in force yet: a caller with a certificate gets 503 ERR_MESH_CRL_UNAVAILABLE, one without is judged as before', async (t) => {
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, false, ['sign', 'verify']);
  const revocations = createRevocationList();
  const optional = createPeerAuthzStage({ mtls: 'optional', allow: [], ownId: 'spiffe://td/ns/a/sa/me' }, { revocations });
  const refused = optional.run(ctx(verified('spiffe://td/ns/b/sa/caller')));
  t.equal(codeOf(refused), 'ERR_MESH_CRL_UNAVAILABLE', 'not served unchecked');
  t.match(refused, { status: 503, rule: 'mesh.crl', headers: { 'retry-after': '5' } });
  t.equal(optional.run(ctx(noCert)), undefined, 'a caller without a certificate on an optional route: as before');
  const required = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: 'spiffe://td/ns/a/sa/me' }, { revocations });
  t.equal(codeOf(required.run(ctx(noCert))), 'ERR_PEER_CERT_REQUIRED', 'and on a required one: as before');
  const crl = await x509.X509CrlGenerator.create({
    issuer: 'CN=test',
    nextUpdate: new Date(Date.now() + 60_000),
    entries: [],
    signingAlgorithm: alg,
    signingKey: keys.privateKey,
  });
  revocations.update(readCrl(new Uint8Array(crl.rawData)));
  t.equal(optional.run(ctx(verified('spiffe://td/ns/b/sa/caller'))), undefined, 'served once a CRL is in force');
});

t.test('file mode: a trusted certificate without a SPIFFE ID passes without an allow list, never with one', async (t) => {
  const anonymous: PeerIdentity = { ...verified('spiffe://td/x'), spiffeId: undefined };
  const open = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: undefined }, { revocations: undefined });
  const c = ctx(anonymous);
  t.equal(open.run(c), undefined);
  t.equal(c.upstreamHeaders['x-forwarded-client-cert'], `Hash=${'ab'.repeat(32)}`);
  const listed = createPeerAuthzStage({ mtls: 'require', allow: ['spiffe://td/*'], ownId: undefined }, { revocations: undefined });
  t.equal(codeOf(listed.run(ctx(anonymous))), 'ERR_AUTHZ_PEER_DENIED');
});

t.test('a certificate verified at the handshake that has since expired: 401 on every later request', async (t) => {
  // A kept-alive connection or a resumed TLS session outlives the certificate; a revoked one drops
  // off the CRL once expired, so without this it would be served again.
  const stage = createPeerAuthzStage({ mtls: 'require', allow: [], ownId: undefined }, { revocations: undefined });
  const expired = stage.run(ctx(verified('spiffe://td/ns/a/sa/x', '0a1b', Date.now() - 1000)));
  t.equal(codeOf(expired), 'ERR_PEER_CERT_INVALID');
  t.match(expired, { rule: 'tls:CERT_HAS_EXPIRED' });
  t.equal(stage.run(ctx(verified('spiffe://td/ns/a/sa/x', '0a1b', Date.now() + 60_000))), undefined, 'valid a minute more: admitted');
});

t.test(
  'client_crl: peerNow marks a listed certificate CERT_REVOKED per request; peer-authz refuses it (rule tls.client_crl)',
  async (t) => {
    const peer = { ...verified('spiffe://td/x', '1001'), chain: [{ issuer: 'ca-a', serial: '1001' }] };
    const crl = { revokes: (issuer: string | undefined, serial: string | undefined) => issuer === 'ca-a' && serial === '1001' };
    t.equal(peerNow(peer, crl).error, 'CERT_REVOKED');
    t.equal(peerNow(peer, crl).verified, false);
    const other = { ...peer, chain: [{ issuer: 'ca-b', serial: '1001' }] };
    t.equal(peerNow(other, crl), other, 'another issuer, the same serial: untouched');
    // A revoked intermediate (root's serial 1001) refuses the leaf under it; a sibling path is untouched.
    const under = {
      ...peer,
      chain: [
        { issuer: 'int-x', serial: '77' },
        { issuer: 'ca-a', serial: '1001' },
      ],
    };
    t.equal(peerNow(under, crl).error, 'CERT_REVOKED', 'an intermediate of the chain revoked: the leaf is refused');
    const sibling = {
      ...peer,
      chain: [
        { issuer: 'int-y', serial: '77' },
        { issuer: 'ca-a', serial: '1002' },
      ],
    };
    t.equal(peerNow(sibling, crl), sibling, 'under another intermediate: untouched');
    t.equal(peerNow(peer, undefined), peer, 'without client_crl: untouched');
    const stage = createPeerAuthzStage({ mtls: 'optional', allow: [], ownId: undefined }, { revocations: undefined });
    const refusal = stage.run(ctx(peerNow(peer, crl)));
    t.ok(refusal instanceof WardenError && refusal.code === 'ERR_PEER_REVOKED' && refusal.rule === 'tls.client_crl');
    // A chain not traced to client_ca (ClientTrust found no path): nothing could be checked, refused.
    const untraced = { ...peer, chain: [] };
    t.equal(peerNow(untraced, crl).error, 'WARDEN_CHAIN_UNTRACED', 'no path: not checkable');
    t.equal(peerNow(untraced, undefined), untraced, 'no path, without client_crl: untouched');
    const unknown = stage.run(ctx(peerNow(untraced, crl)));
    t.ok(unknown instanceof WardenError && unknown.code === 'ERR_PEER_REVOCATION_UNKNOWN' && unknown.rule === 'tls.client_crl');
  },
);
