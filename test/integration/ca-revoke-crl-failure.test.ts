/**
 * A revocation committed while the CRL cannot be re-signed. `revoke` committed, then awaited the CRL
 * refresh before its audit row and answer: a refresh that threw made the answer 500 ERR_INTERNAL,
 * the audit row "refused", `warden ca revoke` print an error and exit 1 — and a retry said "nothing
 * to revoke", the revocations being in the table. The refresh is made to fail for real: the
 * database refuses the CRL number's update (a trigger, as a damaged or tampered database might),
 * after the revocation's own transaction committed.
 */
import Database from 'better-sqlite3';
import t from 'tap';
import { Agent, request } from 'undici';
import type { IssuedCredentials } from '../../src/ca/api.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { readCrl } from '../../src/net/crl-reader.js';
import { runCaRevoke } from '../../src/cli/ca-admin.js';
import { makeCsr, ORDERS, postToCa, startCaUnderTest } from '../support/ca-harness.js';

/** Runs `warden ca revoke ARGS` in this process: its exit status and what it printed. */
async function cliRevoke(args: string[]): Promise<{ status: number | string; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    return { status: await runCaRevoke(args), stdout: out.join('\n'), stderr: err.join('\n') };
  } catch (e) {
    return { status: `threw ${(e as Error).message}`, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

t.test('the CRL cannot be re-signed: the revocation is answered and audited as done, with a warning', async (t) => {
  const { ca, dir, dbPath, logs } = await startCaUnderTest(t, {}, { logs: true });
  const enroll = async () =>
    (
      await postToCa<IssuedCredentials>(
        `${ca.url}/v1/enroll`,
        { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem },
        { ca: ca.rootPem },
      )
    ).body;
  const victim = await enroll();
  const anonymous = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => anonymous.close());
  const fetchCrl = async () => {
    const res = await request(`${ca.url}/v1/crl`, { dispatcher: anonymous });
    return { status: res.statusCode, body: Buffer.from(await res.body.arrayBuffer()) };
  };
  t.equal((await fetchCrl()).status, 200, 'a CRL is signed and cached');

  const db = new Database(dbPath);
  t.teardown(() => db.close());
  db.exec(`CREATE TRIGGER refuse_crl_number BEFORE UPDATE ON crl_state BEGIN SELECT RAISE(ABORT, 'CRL number refused'); END`);

  const revoke = ['--serial', victim.serial, '--url', ca.url, '--dir', dir];
  const first = await cliRevoke(revoke);
  t.equal(first.status, 0, 'warden ca revoke exits 0: the certificate is revoked');
  t.equal(first.stdout, `revoked 1: ${victim.serial}`);
  t.match(first.stderr, /^warning: the CRL was not re-signed \(SQLITE_CONSTRAINT\w*: CRL number refused\); the CA tries again/);
  t.equal(ca.list({ spiffe_id: ORDERS }).find((c) => c.serial === victim.serial)?.status, 'revoked');

  const audit = db
    .prepare<[], { outcome: string; detail: string }>(`SELECT outcome, detail FROM audit WHERE action = 'revoke' ORDER BY id`)
    .all();
  t.equal(audit.length, 1, 'one audit row');
  t.equal(audit[0]?.outcome, 'ok', 'audited as done, not refused');
  t.match(audit[0]?.detail, new RegExp(`^unspecified: ${victim.serial}; CRL not re-signed`));
  t.ok(
    logs.some((l) => l.level === 'error' && String(l.msg).startsWith('revocations committed, but the CRL could not be re-signed')),
    'an error in the log',
  );

  // The CRL cached before the revocation lacks it: it is not served as current any more.
  t.equal((await fetchCrl()).status, 500, 'GET /v1/crl tries to re-sign, and says it could not');
  const again = await cliRevoke(revoke);
  t.same([again.status, again.stdout], [0, 'nothing to revoke (already revoked or expired)'], 'a retry: already revoked');

  db.exec('DROP TRIGGER refuse_crl_number');
  const crl = await fetchCrl();
  t.equal(crl.status, 200, 'the database writable again: the next GET signs a CRL');
  t.ok(readCrl(crl.body).serials.includes(canonicalSerial(victim.serial)), 'listing the revoked certificate');
});
