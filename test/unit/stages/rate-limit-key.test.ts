/**
 * The rate limit's key kind: the first identity of `key` the request has — except `peer` for a
 * client behind a trusted proxy. That peer is the front: with it, every client behind a front that
 * presents a certificate shared one bucket (red team 28 F3).
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

t.test('behind a trusted proxy (the client address from X-Forwarded-For) the peer is skipped', async (t) => {
  const a = testContext({ peer: front, clientAddress: '198.51.100.1', clientForwarded: true });
  const b = testContext({ peer: front, clientAddress: '198.51.100.2', clientForwarded: true });
  t.equal(keyKindOf(a, KEYS), 'ip', 'the next kind: the address');
  t.not(clientOf(a, keyKindOf(a, KEYS)), clientOf(b, keyKindOf(b, KEYS)), 'two clients behind one front: two buckets');
  t.equal(keyKindOf(testContext({ peer: front, clientForwarded: true, principal }), KEYS), 'client_id', 'or the token’s client');
  t.equal(keyKindOf(testContext({ peer: front, clientForwarded: true }), ['peer']), 'ip', '[peer] alone: the address');
});
