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
  t.equal(warned.length, 1, 'one warning in the log for the three refusals (once a minute per identity)');
  t.match(warned[0], { active: 5, limit: 5 });

  // The limit lowered (the same database, a CA restarted with 3) while an identity holds 5, two of
  // them expiring in an hour: a place frees when the third to expire does, not the first.
  const enrollAt = async (at: typeof ca) =>
    (
      await postToCa<Answer>(
        `${at.url}/v1/enroll`,
        { token: at.createToken({ spiffe_id: PAYMENTS }).token, csr: (await makeCsr({ spiffeId: PAYMENTS })).csrPem },
        { ca: at.rootPem },
      )
    ).status;
  const database = { path: dbPath };
  const shortLived = await startCaUnderTest(t, { certificates: { lifetime: '1h' }, database });
  t.same([await enrollAt(shortLived.ca), await enrollAt(shortLived.ca)], [201, 201]);
  t.same([await enrollAt(ca), await enrollAt(ca)], [201, 201], 'with the one from before: three of 24 h, two of 1 h');
  const lowered = await startCaUnderTest(t, { certificates: { max_active_per_identity: 3 }, database });
  const dispatcher = new Agent({ connect: { ca: lowered.ca.rootPem } });
  t.teardown(() => dispatcher.close());
  const over = await request(`${lowered.ca.url}/v1/enroll`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      token: lowered.ca.createToken({ spiffe_id: PAYMENTS }).token,
      csr: (await makeCsr({ spiffeId: PAYMENTS })).csrPem,
    }),
  });
  await over.body.dump();
  t.equal(over.statusCode, 429, 'over the lowered limit');
  const retryAfter2 = Number(over.headers['retry-after']);
  t.ok(retryAfter2 > 23 * 3600, `Retry-After: when the third to expire does, in a day (${retryAfter2} s), not the first, in an hour`);
});

t.test('at the limit, a concurrent duplicate of an enrollment that won gets its certificate, not 429 (row 227)', async (t) => {
  const { ca } = await startCaUnderTest(t, { certificates: { max_active_per_identity: 3 } });
  for (let i = 0; i < 2; i++) {
    const r = await postToCa<Answer>(
      `${ca.url}/v1/enroll`,
      { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem },
      { ca: ca.rootPem },
    );
    t.equal(r.status, 201);
  }
  const { token } = ca.createToken({ spiffe_id: ORDERS });
  const csr = await makeCsr({ spiffeId: ORDERS });
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => postToCa<Answer>(`${ca.url}/v1/enroll`, { token, csr: csr.csrPem }, { ca: ca.rootPem })),
  );
  t.same(
    answers.map((a) => a.status),
    Array(8).fill(201),
    'eight at once with one token and one CSR: each answered with the certificate',
  );
  t.equal(new Set(answers.map((a) => a.body.serial)).size, 1, 'one certificate');
  t.equal(ca.list({ spiffe_id: ORDERS, status: 'valid' }).length, 3, 'the identity at its limit, not past it');
});
