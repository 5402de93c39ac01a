/**
 * An enrollment whose answer never came (lost after the CA's commit): the sidecar keeps the key and
 * CSR it sent (state_dir/enrollment-pending.json) and sends them again, and the CA answers that retry
 * with the certificate the token paid for. A new key each attempt got ERR_CA_TOKEN_USED for good.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Agent, request } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { meshSection, ORDERS, postToCa, startCaUnderTest } from '../support/ca-harness.js';
import { startTestSidecar } from '../support/sidecar.js';

t.test('the sidecar sends the same key again after an answer that never came, and gets its certificate', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const state = mkdtempSync(join(tmpdir(), 'warden-state-'));
  const { token } = ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] });

  // A first attempt the CA refuses (a token it does not know) leaves its key and CSR behind.
  await t.rejects(
    startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { bootstrap_token: 'x'.repeat(43), state_dir: state })),
    /enrollment at .* failed: ERR_CA_TOKEN/,
  );
  const file = join(state, 'enrollment-pending.json');
  t.ok(existsSync(file), 'the attempt left its key and CSR in state_dir');
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by this user only: it holds the key');
  const pending = JSON.parse(readFileSync(file, 'utf8')) as { keyPem: string; csrPem: string };

  // The answer lost after the CA's commit: that CSR reached the CA with the real token, which it spent.
  const dispatcher = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => dispatcher.close());
  const lost = await request(`${ca.url}/v1/enroll`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, csr: pending.csrPem }),
  });
  const issued = (await lost.body.json()) as { serial: string };
  t.equal(lost.statusCode, 201, 'the CA issued (its answer is the one the sidecar never read)');

  const s = await startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { bootstrap_token: token, state_dir: state }));
  const own = new X509Certificate(s.sidecar.mesh?.material().cert ?? '');
  t.equal(
    own.serialNumber.toLowerCase().replace(/^0+/, ''),
    issued.serial.toLowerCase().replace(/^0+/, ''),
    'the retry got that certificate',
  );
  t.ok(own.checkPrivateKey((await import('node:crypto')).createPrivateKey(pending.keyPem)), 'for the key that was kept');
  t.notOk(readdirSync(state).includes('enrollment-pending.json'), 'and the pending key is gone once the credentials are saved');
  t.equal(ca.list({ spiffe_id: ORDERS }).length, 1, 'one certificate issued in all');
});

t.test('a kept key the CA refuses for good (revoked as compromised) is dropped, and the error names its file', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const state = mkdtempSync(join(tmpdir(), 'warden-state-'));
  const file = join(state, 'enrollment-pending.json');
  await t.rejects(
    startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { bootstrap_token: 'x'.repeat(43), state_dir: state })),
    /ERR_CA_TOKEN/,
  );
  const pending = JSON.parse(readFileSync(file, 'utf8')) as { csrPem: string };
  // The key was certified (the lost answer) and then revoked as compromised: no token certifies it again.
  const first = ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] });
  const lost = await postToCa<{ serial: string }>(`${ca.url}/v1/enroll`, { token: first.token, csr: pending.csrPem }, { ca: ca.rootPem });
  t.equal(lost.status, 201);
  await ca.revoke({ serial: lost.body.serial, reason: 'keyCompromise' });

  const { token } = ca.createToken({ spiffe_id: ORDERS, dns_names: ['localhost'] });
  await t.rejects(
    startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { bootstrap_token: token, state_dir: state })),
    { message: new RegExp(`ERR_CA_KEY_REJECTED.*kept in ${file.replace(/[.]/g, '\\.')} was refused and that file removed`) },
    'the error says which file held the refused key',
  );
  t.notOk(existsSync(file), 'the refused key is no longer kept');
  const s = await startTestSidecar(t, backend.url, meshSection(ca, ORDERS, { bootstrap_token: token, state_dir: state }));
  t.ok(s.sidecar.mesh?.material().cert, 'the next start enrolls with a new key and the same token');
});
