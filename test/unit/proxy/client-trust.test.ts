/**
 * Which client CAs an inbound connection relies on (ClientTrust.classify), the CAs whose removal
 * from client_ca or the mesh trust bundle closes it. Red team 28 F1: the root was taken from the
 * first certificate the client sent that led to any trusted root, on the leaf's path or not, so
 * `[leaf, rootB, intA]` (OpenSSL verifies leaf → intA → rootA) was recorded as rootB's and outlived
 * the removal of rootA. The anchors now come from the leaf's own verified paths: every issuer named
 * by the certificate below and whose key verifies its signature.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { issuerKeyOf } from '../../../src/net/client-crl.js';
import { ClientTrust } from '../../../src/proxy/client-trust.js';
import { issueClient, makeCa, type OpensslCa } from '../../support/openssl-pki.js';

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const dir = mkdtempSync(join(tmpdir(), 'warden-client-trust-'));
let serial = 0x40;

const rootA = makeCa('/CN=Root A', 'ec');
const intA = makeCa('/CN=Int A', 'ec', { ca: rootA, serial: '10' });
const rootB = makeCa('/CN=Root B', 'ec');
const alice = issueClient(intA, 'alice', '20');
const skidOfIntA = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(openssl(['x509', '-in', intA.certFile, '-noout', '-text']))?.[1];
if (skidOfIntA === undefined) throw new Error('no SKID in Int A');

/** A CA certificate for `csr` (its key and subject) issued by `issuer`, with these extensions. */
function sign(
  csr: string,
  issuer: OpensslCa | { certFile: string; keyFile: string },
  ext: string,
  out = join(dir, `cert-${serial}.crt`),
): X509Certificate {
  const extFile = join(dir, `ext-${serial}`);
  writeFileSync(extFile, ext);
  openssl(['x509', '-req', '-in', csr, '-CA', issuer.certFile, '-CAkey', issuer.keyFile, '-set_serial', `0x${(serial++).toString(16)}`, '-days', '5', '-extfile', extFile, '-out', out]); // prettier-ignore
  return new X509Certificate(readFileSync(out));
}
const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
/** A new key and CSR with `subject`. */
function csrOf(subject: string): { csr: string; key: string } {
  const csr = join(dir, `req-${serial}.csr`);
  const key = join(dir, `req-${serial++}.key`);
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subject]);
  return { csr, key };
}

const x = (pem: string) => new X509Certificate(pem);
const leaf = x(alice.certPem);
const [ra, ia, rb] = [x(rootA.certPem), x(intA.certPem), x(rootB.certPem)];
const pem = (...cas: OpensslCa[]) => Buffer.from(cas.map((c) => c.certPem).join(''));
/** Int A's key and name certified by Root B as well (a cross-certificate): a second path, to Root B. */
const crossA = sign(join(intA.dir, 'ca.csr'), rootB, `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
/** Named as Int A, with Int A's key identifier, under Root B: only its signature tells it from Int A. */
const impostorCa = (() => {
  const { csr, key } = csrOf('/CN=Int A');
  const certFile = join(dir, 'impostor.crt');
  sign(csr, rootB, `${CA_EXT}subjectKeyIdentifier=${skidOfIntA}\nauthorityKeyIdentifier=keyid\n`, certFile);
  return { dir, subject: '/CN=Int A', certFile, keyFile: key, certPem: readFileSync(certFile, 'utf8') };
})();
const impostor = new X509Certificate(impostorCa.certPem);
/** A client of the impostor's: its verified chain makes the sidecar remember the impostor. */
const mallory = new X509Certificate(issueClient(impostorCa, 'mallory', '21').certPem);

const anchorsOf = (trust: ClientTrust, chain: X509Certificate[]) => [...trust.classify(chain).anchors].sort();
const sorted = (...certs: X509Certificate[]) => certs.map((c) => c.fingerprint256).sort();
const modes = [
  ['file mode', true],
  ['mesh', false],
] as const;

t.test('the root of the path OpenSSL took, not the first trusted certificate the client sent', async (t) => {
  for (const [mode, fileMode] of modes) {
    const trust = new ClientTrust(pem(rootA, rootB), fileMode);
    t.same(anchorsOf(trust, [leaf, ia]), sorted(ra), `${mode}: [leaf, intA] → root A`);
    t.same(anchorsOf(trust, [leaf, rb, ia]), sorted(ra), `${mode}: [leaf, rootB, intA] → root A, not root B`);
    t.same(anchorsOf(trust, [leaf, impostor, ia]), sorted(ra), `${mode}: a CA of Int A's name and key id under root B is not Int A`);
  }
});

t.test('every root the leaf reaches: a cross-certified intermediate relies on both', async (t) => {
  for (const [mode, fileMode] of modes) {
    t.same(anchorsOf(new ClientTrust(pem(rootA, rootB), fileMode), [leaf, ia, crossA]), sorted(ra, rb), `${mode}: root A and root B`);
    t.same(anchorsOf(new ClientTrust(pem(rootB), fileMode), [leaf, ia, crossA]), sorted(rb), `${mode}: root B only when A is not trusted`);
  }
});

t.test('a resumed session (the leaf only) is judged by the intermediates of verified paths, in both modes', async (t) => {
  for (const [mode, fileMode] of modes) {
    const trust = new ClientTrust(pem(rootA, rootB), fileMode);
    anchorsOf(trust, [leaf, rb, ia]);
    t.same(anchorsOf(trust, [leaf]), sorted(ra), `${mode}: after [leaf, rootB, intA]: root A`);
    const reloaded = new ClientTrust(pem(rootB), fileMode, trust);
    t.same(anchorsOf(reloaded, [leaf]), [], `${mode}: against a trust without root A: none`);
    const other = new ClientTrust(pem(rootA, rootB), fileMode);
    t.same(anchorsOf(other, [mallory, impostor]), sorted(rb), `${mode}: mallory, under the impostor of Int A: root B`);
    t.same(anchorsOf(other, [leaf]), [], `${mode}: then alice resumed, Int A not remembered: none, not root B through the impostor`);
  }
});

t.test('an intermediate of client_ca the client did not send is relied on too', async (t) => {
  const trust = new ClientTrust(pem(rootA, intA), true);
  t.same(anchorsOf(trust, [leaf]), sorted(ia, ra), 'leaf alone: Int A (client_ca) and root A');
  t.same(anchorsOf(trust, [leaf, ia]), sorted(ra), 'Int A sent by the client: root A only');
});

t.test('hostile chains: a bounded walk, never a wrong root', async (t) => {
  const trust = new ClientTrust(pem(rootA, rootB), false);
  // Name and key-id look-alikes of Int A under root B: each needs a signature check against the leaf.
  const lookalikes = Array.from({ length: 6 }, () => {
    const { csr } = csrOf('/CN=Int A');
    return sign(csr, rootB, `${CA_EXT}subjectKeyIdentifier=${skidOfIntA}\nauthorityKeyIdentifier=keyid\n`);
  });
  t.same(anchorsOf(trust, [leaf, ...lookalikes, ia]), sorted(ra), 'six look-alikes before Int A: root A (seven signature checks)');
  // Int A's own key certified by a forger under Int A's name, and they name each other as issuer:
  // each verifies the leaf and claims the others. The signature checks are budgeted: unknown, not wrong.
  const forger = join(dir, 'forger');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${forger}.key`, '-out', `${forger}.crt`, '-subj', '/CN=Int A', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-addext', `subjectKeyIdentifier=${skidOfIntA}`]); // prettier-ignore
  const forged = Array.from({ length: 9 }, () =>
    sign(
      join(intA.dir, 'ca.csr'),
      { certFile: `${forger}.crt`, keyFile: `${forger}.key` },
      `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`,
    ),
  );
  t.ok(
    forged.every((f) => leaf.verify(f.publicKey) && f.checkIssued(forged[0] as X509Certificate)),
    'the forgeries verify the leaf and name each other',
  );
  t.same(anchorsOf(trust, [leaf, ...forged]), [], 'nine forgeries: none known');
  // Signature checks counted: the method wrapped for the one call.
  const verify = Object.getOwnPropertyDescriptor(X509Certificate.prototype, 'verify')?.value as (
    this: X509Certificate,
    key: KeyObject,
  ) => boolean;
  let verifications = 0;
  X509Certificate.prototype.verify = function (this: X509Certificate, key: KeyObject) {
    verifications++;
    return verify.call(this, key);
  };
  const anchors = anchorsOf(new ClientTrust(pem(rootA, rootB), false), [leaf, ...forged.slice(0, 8), ia]);
  X509Certificate.prototype.verify = verify;
  t.ok(verifications <= 8, `eight forgeries ahead of Int A: ${verifications} signature checks, at most 8`);
  t.same(anchors, [], '…then the walk gives up: none known (the connection is closed at the next removal), never a wrong root');
  for (const [label, count] of [
    ['16 KiB', 30],
    ['1 MiB', 2_000],
    ['10 MiB', 20_000],
  ] as const) {
    const chain = [leaf, ...Array.from({ length: count }, (_, i) => lookalikes[i % lookalikes.length] as X509Certificate), ia];
    const started = process.hrtime.bigint();
    const anchors = anchorsOf(trust, chain);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.same(anchors, [], `${label} of look-alikes (${count}) ahead of Int A: only the first ones looked at, none known`);
    t.ok(ms < 50, `…in ${ms.toFixed(2)} ms`);
  }
  const started = process.hrtime.bigint();
  anchorsOf(trust, [leaf, ...forged]);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.ok(ms < 50, `nine forgeries in ${ms.toFixed(2)} ms`);
});

/**
 * File mode: the path client_crl entries name (PeerIdentity.chain). Each step's signature is
 * checked, within a budget, and a path not found is "unknown" (empty), never a wrong one.
 */
const skidOfRootA = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(openssl(['x509', '-in', rootA.certFile, '-noout', '-text']))?.[1];
if (skidOfRootA === undefined) throw new Error('no SKID in Root A');
/** A key of the caller's, posing as Root A: its name and key identifier. */
const rootForger = (() => {
  const base = join(dir, 'root-forger');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}.key`, '-out', `${base}.crt`, '-subj', '/CN=Root A', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign', '-addext', `subjectKeyIdentifier=${skidOfRootA}`]); // prettier-ignore
  return { certFile: `${base}.crt`, keyFile: `${base}.key` };
})();
/** Int A's name and key "issued" under Root A's name by the forger: it verifies alice and names Root A. */
const forgedIntA = sign(join(intA.dir, 'ca.csr'), rootForger, `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
const serialsOf = (trust: ClientTrust, chain: X509Certificate[]) => trust.classify(chain).chain.map((l) => l.serial);
/** Counts X509Certificate.verify calls during `fn`. */
function counted<T>(fn: () => T): { value: T; verifications: number; ms: number } {
  const verify = Object.getOwnPropertyDescriptor(X509Certificate.prototype, 'verify')?.value as (
    this: X509Certificate,
    key: KeyObject,
  ) => boolean;
  let verifications = 0;
  X509Certificate.prototype.verify = function (this: X509Certificate, key: KeyObject) {
    verifications++;
    return verify.call(this, key);
  };
  const started = process.hrtime.bigint();
  try {
    const value = fn();
    return { value, verifications, ms: Number(process.hrtime.bigint() - started) / 1e6 };
  } finally {
    X509Certificate.prototype.verify = verify;
  }
}

t.test('client_crl path: a forgery of the intermediate under the root’s name is never a step', async (t) => {
  t.ok(leaf.verify(forgedIntA.publicKey) && forgedIntA.checkIssued(ra), 'the forgery verifies alice and names Root A');
  const trust = new ClientTrust(pem(rootA), true);
  t.same(serialsOf(trust, [leaf, forgedIntA, ia]), ['20', '10'], 'sent ahead of Int A: alice (20), then Int A (10), not the forgery');
  t.same(
    trust.classify([leaf, forgedIntA, ia]).chain.map((l) => l.issuer),
    [issuerKeyOf(ia), issuerKeyOf(ra)],
    'issued by Int A, and Int A by Root A',
  );
  const fresh = new ClientTrust(pem(rootA), true);
  fresh.classify([leaf, forgedIntA]);
  t.same(serialsOf(fresh, [leaf]), [], 'a chain through the forgery alone (OpenSSL refuses it) leaves nothing to resume through: unknown');
});

t.test('client_crl path: a resumed session is traced through intermediates of checked paths only', async (t) => {
  const trust = new ClientTrust(pem(rootA), true);
  t.same(serialsOf(trust, [leaf]), [], 'nothing remembered: unknown (the listener refuses it while client_crl is in force)');
  t.same(serialsOf(trust, [leaf, ia]), ['20', '10'], 'full handshake');
  t.same(serialsOf(trust, [leaf]), ['20', '10'], 'resumed: through Int A, remembered');
  for (let n = 0; n < 3; n++) trust.classify([leaf, ia, sign(join(intA.dir, 'ca.csr'), rootForger, `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`)]); // prettier-ignore
  t.same(serialsOf(trust, [leaf]), ['20', '10'], 'forgeries sent after Int A are not remembered: still Int A');
  t.same(serialsOf(new ClientTrust(pem(rootA, rootB), true, trust), [leaf]), ['20', '10'], 'and across a reload');
  const withIntA = new ClientTrust(pem(rootA, intA), true);
  t.same(serialsOf(withIntA, [leaf]), ['20', '10'], 'Int A in client_ca: found without memory');
});

t.test('client_crl path: hostile webs cost at most 8 signature checks, and end unknown', async (t) => {
  // F, a CA of the caller's; four certificates of F's name and key, each by F: each names and
  // verifies each other one. Ahead of Int A, Int A's name and key issued by F.
  const f = join(dir, 'web-f');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${f}.key`, '-out', `${f}.crt`, '-subj', '/CN=Web', '-days', '5', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']); // prettier-ignore
  openssl(['x509', '-x509toreq', '-in', `${f}.crt`, '-signkey', `${f}.key`, '-out', `${f}.csr`]);
  const byF = { certFile: `${f}.crt`, keyFile: `${f}.key` };
  const web = Array.from({ length: 4 }, () => sign(`${f}.csr`, byF, `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`));
  const ahead = sign(join(intA.dir, 'ca.csr'), byF, `${CA_EXT}subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`);
  const chain = [leaf, ahead, ia, ...web];
  const hostile = counted(() => new ClientTrust(pem(rootA), true).classify(chain).chain);
  t.ok(
    hostile.verifications <= 8 + 8,
    `[alice, Int A by F, Int A, 4 × F]: ${hostile.verifications} signature checks (≤ 8 for the path, 8 for the anchors)`,
  );
  t.same(hostile.value, [], '…the path not found within its 8: unknown, refused while client_crl is in force');
  t.ok(hostile.ms < 50, `…in ${hostile.ms.toFixed(2)} ms`);
  const honest = counted(() => new ClientTrust(pem(rootA), true).classify([leaf, ia]).chain);
  t.ok(honest.verifications <= 2, `an honest [alice, Int A]: ${honest.verifications} signature checks`);
  const trust = new ClientTrust(pem(rootA, rootB), true);
  const lookalikes = Array.from({ length: 6 }, () => sign(csrOf('/CN=Int A').csr, rootB, `${CA_EXT}subjectKeyIdentifier=${skidOfIntA}\nauthorityKeyIdentifier=keyid\n`)); // prettier-ignore
  for (const [label, count] of [
    ['16 KiB', 30],
    ['1 MiB', 2_000],
    ['10 MiB', 20_000],
  ] as const) {
    const many = [leaf, ...Array.from({ length: count }, (_, i) => lookalikes[i % lookalikes.length] as X509Certificate), ia];
    const r = counted(() => trust.classify(many).chain);
    t.same(r.value, [], `${label} of look-alikes (${count}) ahead of Int A: only the first ones looked at, unknown`);
    t.ok(r.ms < 50 && r.verifications <= 16, `…${r.verifications} signature checks in ${r.ms.toFixed(2)} ms`);
  }
});
