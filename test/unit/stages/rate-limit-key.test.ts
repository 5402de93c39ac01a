/**
 * The rate limit's key kind: the first identity of `key` the request has. `peer` is never skipped for
 * X-Forwarded-For: a workload in trusted_proxies would choose its own bucket (review rt28, F2).
 */
import t from 'tap';
import type { PeerIdentity } from '../../../src/mesh/peer-identity.js';
import { clientOf, keyKindOf } from '../../../src/stages/rate-limit.js';
import { testContext } from '../../support/request-context.js';

const front = { presented: true, verified: true, spiffeId: 'spiffe://example.org/ns/edge/sa/front' } as unknown as PeerIdentity;
const principal = { issuerId: 'idp', clientId: 'app', subject: 'alice' } as never;
const KEYS = ['peer', 'client_id', 'ip'] as const;

t.test('a verified peer keys the bucket when it is the client itself', async (t) => {
  const ctx = testContext({ peer: front, clientAddress: '10.0.0.1' });
  t.equal(keyKindOf(ctx, KEYS), 'peer');
});

t.test('a verified peer keys the bucket whatever X-Forwarded-For says (review rt28, F2)', async (t) => {
  // A workload inside trusted_proxies (a pod range) that writes X-Forwarded-For: one bucket, its certificate's.
  const a = testContext({ peer: front, clientAddress: '198.51.100.1' });
  const b = testContext({ peer: front, clientAddress: '198.51.100.2' });
  t.equal(keyKindOf(a, KEYS), 'peer');
  t.equal(clientOf(a, keyKindOf(a, KEYS)), clientOf(b, keyKindOf(b, KEYS)), 'two client addresses, one peer: one bucket');
  t.equal(
    keyKindOf(testContext({ peer: front, principal }), ['client_id', 'ip']),
    'client_id',
    'key: [client_id, ip] for a front: the token’s client',
  );
  t.equal(keyKindOf(a, ['client_id', 'ip']), 'ip', 'or the address');
});
