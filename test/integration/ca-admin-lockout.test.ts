/**
 * The administrator certificate: revoking the last valid one locked the administrator out for good
 * (no command issued another, and `ca init` refuses a directory holding a CA). Now that revocation is
 * refused (409 ERR_CA_LAST_ADMIN), and `warden ca admin issue` makes a new one offline, which a
 * running CA accepts at once. Real `warden ca serve` and `warden ca admin issue` processes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { initCa } from '../../src/ca/init.js';
import { canonicalSerial } from '../../src/net/serial.js';
import { x509 } from '../../src/ca/pki.js';
import { makeCsr, postToCa, repoRoot, serveCaProcessIn, TRUST_DOMAIN } from '../support/ca-harness.js';

const ADMIN = `spiffe://${TRUST_DOMAIN}/warden/admin`;

type Problem = {
  code?: string;
  rule?: string;
  detail?: string;
  revoked?: string[];
  certificates?: { serial: string; kind: string; status: string }[];
};

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('the last valid admin certificate cannot be revoked; ca admin issue makes a new one the running CA accepts', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-admin-')), 'ca');
  await initCa({ trustDomain: TRUST_DOMAIN, dir });
  const { port, config } = await serveCaProcessIn(t, dir);
  const url = `https://127.0.0.1:${port}`;
  const bundle = readFileSync(join(dir, 'bundle.pem'), 'utf8');
  const adminFiles = () => ({
    ca: bundle,
    cert: readFileSync(join(dir, 'admin.crt'), 'utf8'),
    key: readFileSync(join(dir, 'admin.key'), 'utf8'),
  });
  const serialOf = (pem: string) => canonicalSerial(new x509.X509Certificate(pem).serialNumber);
  const first = adminFiles();
  const firstSerial = serialOf(first.cert);
  const revoke = (body: unknown, as = first) => postToCa<Problem>(`${url}/v1/admin/revocations`, body, as);

  for (const body of [{ serial: firstSerial }, { spiffe_id: ADMIN }, { serial: firstSerial, reason: 'keyCompromise' }]) {
    t.match(
      await revoke(body),
      { status: 409, body: { code: 'ERR_CA_LAST_ADMIN', detail: /warden ca admin issue/ } },
      `refused: ${JSON.stringify(body)}`,
    );
  }
  const listed = await postToCa<Problem>(`${url}/v1/admin/tokens`, { spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` }, first);
  t.equal(listed.status, 201, 'the administrator still works');

  const renewed = await postToCa<Problem>(`${url}/v1/renew`, { csr: (await makeCsr({ spiffeId: ADMIN })).csrPem }, first);
  t.match(renewed, { status: 401, body: { detail: 'an admin certificate cannot be renewed over the API' } }, '"an admin", not "a admin"');

  const issued = warden('ca', 'admin', 'issue', '-c', config);
  t.equal(issued.code, 0, `ca admin issue: exit 0 (${issued.stderr.trim()})`);
  t.match(issued.stdout, new RegExp(`still valid: ${firstSerial} \\(${firstSerial}: the admin.crt replaced\\)`));
  const second = adminFiles();
  const secondSerial = serialOf(second.cert);
  t.not(secondSerial, firstSerial, 'admin.crt replaced');
  t.not(second.key, first.key, 'with a new key');
  t.equal(statSync(join(dir, 'admin.key')).mode & 0o777, 0o600, 'admin.key is 0600');

  // The running CA accepts it at once (it is in the ledger), and it can retire the old one.
  t.match(await revoke({ serial: firstSerial, reason: 'keyCompromise' }, second), { status: 200, body: { revoked: [firstSerial] } });
  t.match(
    await revoke({ serial: secondSerial }, second),
    { status: 409, body: { code: 'ERR_CA_LAST_ADMIN' } },
    'now the new one is the last',
  );
  t.match(
    await postToCa<Problem>(`${url}/v1/admin/tokens`, { spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop/sa/orders` }, first),
    { status: 403, body: { code: 'ERR_CA_CERT_REVOKED' } },
    'the old one is refused',
  );
  const list = warden('ca', 'list', '--id', ADMIN, '--json', '-c', config);
  t.equal(list.code, 0, `the CLI uses the new admin.crt (${list.stderr.trim()})`);
  const statuses = Object.fromEntries(
    (JSON.parse(list.stdout) as Problem).certificates!.filter((c) => c.kind === 'admin').map((c) => [c.serial, c.status]),
  );
  t.same(statuses, { [firstSerial]: 'revoked', [secondSerial]: 'valid' });
});
