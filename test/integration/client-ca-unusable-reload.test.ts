/**
 * A client_ca that holds no CA certificate (the same CA in DER, an empty file — a mounted secret
 * caught mid-write): `config check` called it valid and a SIGHUP reload was "warden.config.reloaded",
 * after which every CA counted as removed — the open mTLS connections closed and every new handshake
 * refused. Now `config check` refuses it, naming the field, and the reload fails with the old trust
 * kept: the open connection and new ones are served.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { issueClient, makeCa } from '../support/openssl-pki.js';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A GET on an open h2 session: its status, or the error it met. */
function get(session: ClientHttp2Session): Promise<number | string> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) return resolve('SESSION_CLOSED');
    const stream = session.request({ ':path': '/echo' });
    let status: number | string = 'NO_RESPONSE';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', (err: NodeJS.ErrnoException) => (status = err.code ?? 'ERR'));
    stream.resume();
    stream.on('close', () => resolve(status));
    stream.end();
  });
}

t.test('a reload to a client_ca without a PEM CA certificate fails and keeps the trust in force', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const ca = makeCa('/CN=Clients CA', 'ec');
  const alice = issueClient(ca, 'alice', '10');
  const clientCa = join(mkdtempSync(join(tmpdir(), 'warden-client-ca-')), 'clients.pem');
  writeFileSync(clientCa, ca.certPem);
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, {
      listeners: { inbound: { tls: { client_certificates: 'require', client_ca: clientCa } } },
      lifecycle: { drain_timeout: '2s' },
    }),
  );
  const server = await testCertificate();
  const connect = () => {
    const session = h2Connect(warden.url, { ca: server.certPem, cert: alice.certPem, key: alice.keyPem });
    session.on('error', () => undefined);
    t.teardown(() => session.destroy());
    return session;
  };
  const kept = connect();
  t.equal(await get(kept), 200, 'before: an open h2 connection of a client_ca certificate is served');

  const variants: [string, Buffer | string, RegExp][] = [
    ['the CA in DER', new X509Certificate(ca.certPem).raw, /holds no PEM certificate \(DER\? convert it with openssl x509 -inform der/],
    ['an empty file', '', /holds no PEM certificate \(the file is empty\)/],
    ['a file cut short', ca.certPem.slice(0, 200), /its certificate does not parse \(a file cut short or damaged\)/],
  ];
  for (const [what, data, why] of variants) {
    writeFileSync(clientCa, data);
    const check = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'config', 'check', '-c', warden.configFile], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    t.equal(check.status, 2, `${what}: config check exits 2`);
    t.match(
      check.stderr,
      new RegExp(`sidecar\\.yaml:\\d+ listeners\\.inbound\\.tls\\.client_ca: ${clientCa.replace(/[.]/g, '\\.')}`),
      `${what}: names the field`,
    );
    t.match(check.stderr, why, `${what}: says what the file holds`);

    const seen = new Set(warden.lines.filter((l) => l.event === 'warden.config.reload_failed'));
    warden.child.kill('SIGHUP');
    const outcome = await warden.waitFor(
      (l) => l.event === 'warden.config.reloaded' || (l.event === 'warden.config.reload_failed' && !seen.has(l)),
    );
    t.equal(outcome.event, 'warden.config.reload_failed', `${what}: the reload is refused`);
    t.match(String(outcome['warden.detail']), /listeners\.inbound\.tls\.client_ca: /, `${what}: naming the field`);
    await sleep(200);
    t.equal(await get(kept), 200, `${what}: the open connection is still served`);
    const fresh = connect();
    t.equal(await get(fresh), 200, `${what}: a new connection is admitted (the old trust in force)`);
    fresh.close();
  }
  t.same(
    warden.lines.filter((l) => l.event === 'warden.tls.peer_denied').map((l) => l['error.type']),
    [],
    'no connection was closed as of a removed CA',
  );

  // The PEM back: a reload applies, and closes nothing.
  writeFileSync(clientCa, ca.certPem);
  warden.child.kill('SIGHUP');
  const reloaded = await warden.waitFor((l) => l.event === 'warden.config.reloaded');
  t.notMatch(String(reloaded['warden.detail']), /no longer trusted/, 'the same CA: nothing closed');
  t.equal(await get(kept), 200, 'the open connection is served after a good reload');
});
