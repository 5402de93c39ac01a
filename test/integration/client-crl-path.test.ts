/**
 * client_crl's chain path (ClientTrust in file mode) against a caller who forges certificates:
 * anyone can certify a public key, so a certificate with an intermediate's name and key, "issued"
 * under the root's name by a key of the caller's, verifies the caller's own certificate and names
 * the root as its issuer. OpenSSL never takes it (its signature is checked), but the path to the
 * intermediate's CRL entry was looked for by names above the first step, and through intermediates
 * remembered from other callers, a memory any caller could fill. Red team 28 follow-up:
 * - a full handshake `[dave, expired forgery of I, I]` (OpenSSL takes I, the first time-valid one)
 *   was linked through the forgery, whose serial is not I's: dave, under revoked I, was served;
 * - 150 handshakes of another caller, each with 7 forgeries of its own intermediate, emptied the
 *   memory of intermediates: dave's resumed session then had no path, nothing was checked, and it
 *   was served;
 * - forgeries that name each other made the search exponential (seconds of CPU per handshake).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { issueClient, makeCa, makeCrl } from '../support/openssl-pki.js';
import { startTestSidecar, type Teardown, type TestSidecar } from '../support/sidecar.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const dir = mkdtempSync(join(tmpdir(), 'warden-crl-path-'));
const CA_EXT =
  'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n';

const root = makeCa('/CN=Path Root/O=Example', 'ec');
const i = makeCa('/CN=Path Intermediate I/O=Example', 'ec', { ca: root, serial: '5000' });
const j = makeCa('/CN=Path Intermediate J/O=Example', 'ec', { ca: root, serial: '5001' });
const dave = issueClient(i, 'dave', '1001');
const erin = issueClient(j, 'erin', '1002');
const rootOnly = join(dir, 'root.pem');
writeFileSync(rootOnly, root.certPem);

const skidOf = (certFile: string): string => {
  const skid = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(openssl(['x509', '-in', certFile, '-noout', '-text']))?.[1];
  if (skid === undefined) throw new Error(`no SKID in ${certFile}`);
  return skid;
};

/** A self-signed CA of the caller's with `subject` and, optionally, another CA's key identifier. */
function forger(name: string, subject: string, skid?: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', ...(skid ? ['-addext', `subjectKeyIdentifier=${skid}`] : [])]); // prettier-ignore
  return { certFile, keyFile };
}

/**
 * `count` CA certificates of `csr`'s name and key issued by `by` (one openssl run), PEM each;
 * `expired`: valid for a minute a day ago (OpenSSL prefers a time-valid issuer, so it skips them).
 */
function forge(csr: string, by: { certFile: string; keyFile: string }, count: number, expired = false): string[] {
  const ca = mkdtempSync(join(dir, 'forge-'));
  writeFileSync(join(ca, 'index.txt'), '');
  writeFileSync(join(ca, 'serial'), `${(0x7000 + Math.floor(Math.random() * 0x7000)).toString(16)}\n`);
  writeFileSync(join(ca, 'ext'), CA_EXT);
  writeFileSync(
    join(ca, 'ca.cnf'),
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${ca}/index.txt\nserial=${ca}/serial\nnew_certs_dir=${ca}\ndefault_md=sha256\npolicy=p\nunique_subject=no\ndefault_days=5\n[p]\ncommonName=supplied\norganizationName=optional\n`,
  );
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const dates = expired ? ['-startdate', stamp(Date.now() - 86_400_000), '-enddate', stamp(Date.now() - 86_340_000)] : [];
  const out = join(ca, 'out.pem');
  openssl(['ca', '-config', join(ca, 'ca.cnf'), '-batch', '-notext', '-preserveDN', '-cert', by.certFile, '-keyfile', by.keyFile, '-extfile', join(ca, 'ext'), ...dates, '-out', out, '-infiles', ...Array.from({ length: count }, () => csr)]); // prettier-ignore
  // -out keeps the last one only; each is in new_certs_dir as SERIAL.pem.
  return readdirSync(ca)
    .filter((name) => /^[0-9A-F]+\.pem$/.test(name))
    .map((name) => readFileSync(join(ca, name), 'utf8'));
}

/** Certificates of I's and J's names and keys "issued" under the root's name, by a key of the caller's. */
const rootForger = forger('root-forger', root.subject, skidOf(root.certFile));
const crl = join(dir, 'clients.crl');
writeFileSync(crl, makeCrl(root, ['5000'])); // I is revoked; J is not
const config = { listeners: { inbound: { tls: { client_certificates: 'require', client_ca: rootOnly, client_crl: crl } } } };

/** A TLS connection sending `chain` (PEM, leaf first) with `key`; `get` sends one HTTP/1.1 request. */
function connection(t: Teardown, s: TestSidecar, chain: string, key: string, session?: Buffer) {
  const socket: TLSSocket = tlsConnect({
    ...(session ? { session } : {}),
    host: '127.0.0.1',
    port: s.port,
    servername: 'localhost',
    ca: s.ca,
    cert: chain,
    key,
    ALPNProtocols: ['http/1.1'],
  });
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  const ready = new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  return {
    socket,
    async get(): Promise<{ status: number; code: string }> {
      await ready;
      received = '';
      socket.write('GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
      for (let n = 0; n < 3000; n++) {
        const head = received.indexOf('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(received)?.[1] ?? NaN);
        if (head >= 0 && received.length >= head + 4 + length) {
          const body = received.slice(head + 4, head + 4 + length);
          const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
          return { status, code: status >= 400 ? String((JSON.parse(body) as { code?: string }).code) : '' };
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return { status: 0, code: 'NO_ANSWER' };
    },
  };
}

t.test('a forgery of the revoked intermediate sent ahead of it does not hide it (full handshake)', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, config);
  const [forged] = forge(join(i.dir, 'ca.csr'), rootForger, 1, true);
  const c = connection(t, s, dave.certPem + String(forged) + i.certPem, dave.keyPem);
  const r = await c.get();
  t.ok(c.socket.authorized, 'OpenSSL verified the chain (dave → I → root; the expired forgery skipped)');
  t.same(r, { status: 401, code: 'ERR_PEER_REVOKED' }, 'dave, under revoked I, refused');
  t.equal(backend.requests.length, 0, 'the backend never saw him');
});

t.test('a resumed session is checked even after another caller sent 1 050 forgeries', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, config);
  const first = connection(t, s, dave.certPem + i.certPem, dave.keyPem);
  t.same(await first.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, 'dave, full handshake: refused');
  const session = first.socket.getSession();
  first.socket.destroy();
  const forged = forge(join(j.dir, 'ca.csr'), rootForger, 1050);
  for (let n = 0; n < forged.length; n += 7) {
    const c = connection(t, s, erin.certPem + j.certPem + forged.slice(n, n + 7).join(''), erin.keyPem);
    const r = await c.get();
    c.socket.destroy();
    if (n === 0) t.same(r.status, 200, 'erin, sending J and 7 forgeries of J after it: served (the first of 150)');
  }
  const again = connection(t, s, dave.certPem + i.certPem, dave.keyPem, session);
  const r = await again.get();
  t.ok(again.socket.isSessionReused(), 'the session was resumed');
  t.same(r, { status: 401, code: 'ERR_PEER_REVOKED' }, 'dave resumed: refused');
  t.equal(backend.requests.length, 150, 'the backend saw erin only');
});

t.test('forgeries that name each other cost at most a few signature checks, and a chain not traced is refused', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, config);
  // F: the caller's own CA; four certificates of F's name and key, each issued by F, so each names
  // and verifies each other one; ahead of J, an expired forgery of J issued by F.
  const f = forger('f', '/CN=Forger/O=Example');
  const fCsr = join(dir, 'f.csr');
  openssl(['x509', '-x509toreq', '-in', f.certFile, '-signkey', f.keyFile, '-out', fCsr]);
  const web = forge(fCsr, f, 4);
  const [ahead] = forge(join(j.dir, 'ca.csr'), f, 1, true);
  const started = process.hrtime.bigint();
  const c = connection(t, s, erin.certPem + String(ahead) + j.certPem + web.join(''), erin.keyPem);
  const r = await c.get();
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(c.socket.authorized, 'OpenSSL verified erin → J → root');
  t.ok(ms < 300, `answered in ${ms.toFixed(0)} ms`);
  t.same(r, { status: 401, code: 'ERR_PEER_REVOCATION_UNKNOWN' }, 'erin: her path was not traced within the budget, so refused');
  t.match(
    s.events.find((e) => e.name === 'warden.tls.peer_denied'),
    { 'warden.rule': 'tls.client_crl', 'warden.code': 'ERR_PEER_REVOCATION_UNKNOWN' },
    'with its event',
  );
  t.equal(backend.requests.length, 0, 'the backend never saw her');
  t.same(await connection(t, s, erin.certPem + j.certPem, erin.keyPem).get(), { status: 200, code: '' }, 'erin with her chain: served');
});

t.test(
  'honest chains are traced: a certificate sent twice, and a pinned self-signed client certificate (review rt28-2, F1, F3)',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    // A probe's self-signed client certificate (CA:FALSE, clientAuth) pinned in client_ca beside the root.
    const pinnedKey = join(dir, 'pinned.key');
    const pinnedCert = join(dir, 'pinned.crt');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', pinnedKey, '-out', pinnedCert, '-subj', '/CN=probe', '-days', '5', '-addext', 'basicConstraints=CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=clientAuth']); // prettier-ignore
    const withPinned = join(dir, 'root-and-pinned.pem');
    writeFileSync(withPinned, root.certPem + readFileSync(pinnedCert, 'utf8'));
    const s = await startTestSidecar(t, backend.url, {
      listeners: { inbound: { tls: { client_certificates: 'require', client_ca: withPinned, client_crl: crl } } },
    });
    // `cat cert.pem fullchain.pem`: the leaf twice; an intermediate twice. Read as "no chain" (a resumed
    // session) on a fresh sidecar, both were 401 ERR_PEER_REVOCATION_UNKNOWN.
    for (const [what, chain] of [
      ['the leaf twice', erin.certPem + erin.certPem + j.certPem],
      ['the intermediate twice', erin.certPem + j.certPem + j.certPem],
    ] as const) {
      const c = connection(t, s, chain, erin.keyPem);
      t.same(await c.get(), { status: 200, code: '' }, `erin sending ${what}: served`);
    }
    const probe = connection(t, s, readFileSync(pinnedCert, 'utf8'), readFileSync(pinnedKey, 'utf8'));
    t.same(await probe.get(), { status: 200, code: '' }, 'the pinned probe: served (no CRL can name it)');
    const revoked = connection(t, s, dave.certPem + dave.certPem + i.certPem, dave.keyPem);
    t.same(await revoked.get(), { status: 401, code: 'ERR_PEER_REVOKED' }, 'dave under revoked I, his leaf sent twice: still refused');
  },
);
