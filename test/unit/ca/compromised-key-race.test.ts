/**
 * A key revoked as compromised while an enrollment or renewal with it is being signed: the revocation
 * lists the key's certificates before the new one exists, so the issuing transaction must refuse the
 * key itself (a red team got 72 of 300 such races certified, valid and off the CRL).
 * Deterministic: the issuer waits in issue() until the keyCompromise revocation has committed.
 */
import t, { type Test } from 'tap';
import type { IssuedCredentials } from '../../../src/ca/api.js';
import type { CrlPublisher } from '../../../src/ca/crl.js';
import { createIssuer, type Issuer } from '../../../src/ca/issuer.js';
import { loadCaMaterial } from '../../../src/ca/layout.js';
import { x509 } from '../../../src/ca/pki.js';
import { createCaService, type CaService, type WorkloadPeer } from '../../../src/ca/service.js';
import { openCaStore, type CaStore } from '../../../src/ca/store.js';
import { createTokens } from '../../../src/ca/tokens.js';
import { createEventBus } from '../../../src/telemetry/events.js';
import { makeCsr, ORDERS, testCaMaterial, TRUST_DOMAIN } from '../../support/ca-harness.js';

interface Setup {
  service: CaService;
  store: CaStore;
  /** Runs `during` inside the next issue() call, before it signs. */
  duringNextIssue: (during: () => Promise<unknown>) => void;
}

async function setup(t: Test): Promise<Setup> {
  const material = await loadCaMaterial((await testCaMaterial()).dir);
  const store = openCaStore(':memory:');
  t.teardown(() => store.close());
  const real = createIssuer({
    intermediate: material.intermediate,
    intermediateKey: material.intermediateKey,
    issuingRoot: material.issuingRoot,
    trustDomain: TRUST_DOMAIN,
    lifetimeMs: 3_600_000,
    backdateMs: 0,
  });
  let pending: (() => Promise<unknown>) | undefined;
  const issuer: Issuer = {
    notAfter: real.notAfter,
    async issue(request) {
      const during = pending;
      pending = undefined;
      await during?.();
      return real.issue(request);
    },
  };
  const crl = { refresh: async () => Buffer.alloc(0) } as unknown as CrlPublisher;
  const service = createCaService({
    store,
    tokens: createTokens(store),
    issuer,
    crl,
    events: createEventBus(),
    trustDomain: TRUST_DOMAIN,
    intermediatePem: material.intermediatePem,
    bundlePem: material.bundlePem,
    tokenTtlMs: 3_600_000,
  });
  return { service, store, duringNextIssue: (during) => void (pending = during) };
}

const caller = { actor: 'anonymous' };

function peerOf(store: CaStore, issued: IssuedCredentials): WorkloadPeer {
  return {
    actor: issued.spiffe_id,
    spiffeId: issued.spiffe_id,
    record: store.getCertificate(issued.serial)!,
    certificate: new x509.X509Certificate(issued.certificate),
  };
}

/** Valid (unexpired, unrevoked) certificates of the identity whose key is `keyId`. */
function validWithKey(store: CaStore, keyId: string): string[] {
  return store
    .listCertificates({ spiffeId: ORDERS, status: 'valid', now: Date.now() })
    .filter((c) => c.key_id === keyId)
    .map((c) => c.serial);
}

t.test('an enrollment signed while its key is revoked as compromised is refused, and its token stays unused', async (t) => {
  const { service, store, duringNextIssue } = await setup(t);
  const k = await makeCsr({ spiffeId: ORDERS });
  const c1 = await service.enroll({ token: service.createToken({ spiffe_id: ORDERS }, caller).token, csr: k.csrPem }, caller);
  const keyId = store.getCertificate(c1.serial)!.key_id;
  const spare = service.createToken({ spiffe_id: ORDERS }, caller);

  let revoked: string[] = [];
  duringNextIssue(async () => {
    revoked = (await service.revoke({ serial: c1.serial, reason: 'keyCompromise' }, caller)).revoked;
  });
  await t.rejects(
    service.enroll({ token: spare.token, csr: k.csrPem }, caller),
    { code: 'ERR_CA_KEY_REJECTED', status: 400, rule: 'csr.key.compromised' },
    'refused in the issuing transaction',
  );
  t.same(revoked, [c1.serial], 'the revocation committed while the enrollment was being signed');
  t.same(validWithKey(store, keyId), [], 'no valid certificate of the compromised key');
  t.equal(service.listTokens({ spiffe_id: ORDERS }).find((row) => row.id === spare.id)?.state, 'unused', 'the token is not spent');
});

t.test('a renewal to a key revoked as compromised while it is signed is refused', async (t) => {
  const { service, store, duringNextIssue } = await setup(t);
  const k = await makeCsr({ spiffeId: ORDERS });
  const c1 = await service.enroll({ token: service.createToken({ spiffe_id: ORDERS }, caller).token, csr: k.csrPem }, caller);
  const keyId = store.getCertificate(c1.serial)!.key_id;
  // Another certificate of the identity (another key), renewing to K: its lineage is not C1's.
  const other = await service.enroll(
    { token: service.createToken({ spiffe_id: ORDERS }, caller).token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem },
    caller,
  );

  duringNextIssue(() => service.revoke({ serial: c1.serial, reason: 'keyCompromise' }, caller));
  await t.rejects(service.renew({ csr: k.csrPem }, peerOf(store, other)), {
    code: 'ERR_CA_KEY_REJECTED',
    status: 400,
    rule: 'csr.key.compromised',
  });
  t.same(validWithKey(store, keyId), [], 'no valid certificate of the compromised key');
  t.equal(store.getCertificate(other.serial)?.revoked_at, null, 'the renewing certificate (another key) is untouched');
});
