/**
 * certificates.max_active_per_identity: one workload certificate renewed ~44 times a second (8
 * connections), each renewal a new 24 h certificate, with no bound; revoking the identity then put
 * them all on the CRL (past ~125 000 it could not be signed). Enroll and renew are refused with 429
 * ERR_CA_IDENTITY_LIMIT once an identity holds that many unexpired, unrevoked certificates.
 */
import Database from 'better-sqlite3';
import t from 'tap';
import { Agent, request } from 'undici';
import type { IssuedCredentials } from '../../src/ca/api.js';
import { makeCsr, ORDERS, postToCa, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';

const PAYMENTS = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/payments`;

type Answer = IssuedCredentials & { code?: string; detail?: string; rule?: string };

t.test('a workload renewing past the limit is refused; other identities are not; revoking frees room', async (t) => {
  const { ca, dbPath, logs } = await startCaUnderTest(t, { certificates: { max_active_per_identity: 5 } }, { logs: true });
  const enroll = async (spiffeId: string, token = ca.createToken({ spiffe_id: spiffeId }).token) =>
    postToCa<Answer>(`${ca.url}/v1/enroll`, { token, csr: (await makeCsr({ spiffeId })).csrPem }, { ca: ca.rootPem });
  const renewFrom = async (holder: IssuedCredentials, keyPem: string) => {
    const csr = await makeCsr({ spiffeId: holder.spiffe_id });
    const dispatcher = new Agent({ connect: { ca: ca.rootPem, cert: holder.certificate + holder.chain, key: keyPem } });
    try {
      const res = await request(`${ca.url}/v1/renew`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csr: csr.csrPem }),
      });
      return {
        status: res.statusCode,
        retryAfter: res.headers['retry-after'],
        body: (await res.body.json()) as Answer,
        keyPem: csr.keyPem,
      };
    } finally {
      await dispatcher.close();
    }
  };

  const csr = await makeCsr({ spiffeId: ORDERS });
  const first = (
    await postToCa<Answer>(
      `${ca.url}/v1/enroll`,
      { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: csr.csrPem },
      { ca: ca.rootPem },
    )
  ).body;
  // Four renewals from the same certificate (what a sidecar retrying after lost answers does): 5 valid.
  const renewed: IssuedCredentials[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await renewFrom(first, csr.keyPem);
    t.equal(r.status, 201, `renewal ${i + 1} under the limit`);
    renewed.push(r.body);
  }
  const refused = await renewFrom(first, csr.keyPem);
  t.match(refused, { status: 429, body: { code: 'ERR_CA_IDENTITY_LIMIT', detail: /holds 5 valid certificates/ } }, 'the sixth: 429');
  const retryAfter = Number(refused.retryAfter);
  t.ok(retryAfter > 23 * 3600 && retryAfter <= 24 * 3600, `Retry-After: when the first of them expires (${retryAfter} s)`);
  t.equal(ca.list({ spiffe_id: ORDERS, status: 'valid' }).length, 5, 'nothing issued past the limit');

  const token = ca.createToken({ spiffe_id: ORDERS });
  t.match(await enroll(ORDERS, token.token), { status: 429, body: { code: 'ERR_CA_IDENTITY_LIMIT' } }, 'an enrollment too');
  t.equal(ca.listTokens({ spiffe_id: ORDERS }).find((k) => k.id === token.id)?.state, 'unused', 'its token is not spent');

  const other = await enroll(PAYMENTS);
  t.equal(other.status, 201, 'another identity enrolls');

  t.same((await ca.revoke({ serial: renewed[0]?.serial })).revoked.length, 1);
  t.same((await ca.revoke({ serial: renewed[1]?.serial })).revoked.length, 1);
  t.equal((await renewFrom(first, csr.keyPem)).status, 201, 'revoked certificates free their place');
  t.equal((await enroll(ORDERS, token.token)).status, 201, 'and the unspent token enrolls');
  t.equal((await renewFrom(first, csr.keyPem)).status, 429, 'full again');

  const db = new Database(dbPath, { readonly: true });
  t.teardown(() => db.close());
  const rows = db
    .prepare<[], { actor: string; subject: string; outcome: string; detail: string }>(
      `SELECT actor, subject, outcome, detail FROM audit WHERE detail LIKE 'ERR_CA_IDENTITY_LIMIT%' ORDER BY id`,
    )
    .all();
  t.same(
    rows.map((r) => [r.subject, r.outcome, r.detail]),
    [
      [ORDERS, 'refused', 'ERR_CA_IDENTITY_LIMIT (ca.identity.max_active)'],
      [ORDERS, 'refused', 'ERR_CA_IDENTITY_LIMIT (ca.identity.max_active)'],
    ],
    'audited, aggregated per client, action and identity within a minute (the renewal, the enrollment): a loop writes no row each',
  );
  const warned = logs.filter((l) => l.level === 'warn' && l['warden.spiffe.id'] === ORDERS);
  t.equal(warned.length, 3, 'a warning in the log per refusal');
  t.match(warned[0], { active: 5, limit: 5 });
});
