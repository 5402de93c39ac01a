/**
 * listeners.inbound.tls.client_ca and mesh.ca.bundle must hold certificates the listener can trust:
 * OpenSSL skipped what is not a PEM certificate, so the CA in DER, an empty file, a key or a file cut
 * short loaded as "no CA" (every caller refused; at a reload, every open mTLS connection closed).
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError } from '../../../src/config/config-error.js';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { testCertificate } from '../../support/certs.js';
import { issueClient, makeCa } from '../../support/openssl-pki.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-client-ca-file-'));
const ca = makeCa('/CN=Clients CA', 'ec');
const other = makeCa('/CN=Partner CA', 'ec');
const client = issueClient(ca, 'alice', '10');

/** A file in `dir` holding `data`; its path. */
function file(name: string, data: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

async function withClientCa(path: string): Promise<string> {
  const c = await testCertificate();
  return `listeners:
  inbound:
    tls:
      cert: ${c.certFile}
      key: ${c.keyFile}
      client_certificates: require
      client_ca: ${path}
upstream:
  url: http://127.0.0.1:8080
`;
}

function issuesOf(text: string): string[] {
  try {
    parseSidecarConfig('s.yaml', text);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

const der = new X509Certificate(ca.certPem).raw;
const pem = ca.certPem;

t.test('a client_ca that trusts no one is refused, naming the field and what it holds', async (t) => {
  const cases: [string, string | Buffer, RegExp][] = [
    ['ca.der', der, /holds no PEM certificate \(DER\? convert it with openssl x509 -inform der -in \S+ca\.der -out \S+ca\.der\.pem\)/],
    ['empty.pem', '', /holds no PEM certificate \(the file is empty\)/],
    ['key.pem', readFileSync(ca.keyFile), /holds no PEM certificate \(it holds a private key\)/],
    ['text.pem', 'HOME=/root\0PATH=/bin\0', /holds no PEM certificate \(no "-----BEGIN CERTIFICATE-----" block\)/],
    // A mounted secret read mid-write: the second CA cut short (its callers would lose their connections).
    ['cut.pem', pem + other.certPem.slice(0, 200), /: certificate 2 of 2 does not parse \(a file cut short or damaged\)/],
    ['damaged.pem', pem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'), /: its certificate does not parse/],
    // A client's own certificate given for its CA: OpenSSL anchors nothing on it.
    [
      'leaf.pem',
      client.certPem,
      /: its certificate \("CN=alice"\) is neither a CA certificate \(basicConstraints CA:TRUE\) nor self-signed/,
    ],
    ['two-leaves.pem', client.certPem + client.certPem, /: its certificates \("CN=alice", …\) are neither a CA certificate/],
  ];
  for (const [name, data, why] of cases) {
    const path = file(name, data);
    const lines = issuesOf(await withClientCa(path));
    t.equal(lines.length, 1, `${name}: one line`);
    t.match(lines[0], /^s\.yaml:7 listeners\.inbound\.tls\.client_ca: /, `${name}: names the field`);
    t.match(lines[0], why, `${name}: says why`);
    t.match(lines[0], /: give the PEM certificates of the CAs client certificates chain to$/, `${name}: says what belongs there`);
  }
});

t.test(
  'PEM CAs, with text around them, a self-signed client certificate pinned as its own anchor, and a leaf beside its CA, load',
  async (t) => {
    const self = await testCertificate();
    const accepted: [string, string][] = [
      ['one.pem', pem],
      ['two.pem', `# clients\n${pem}\n# partners\n${other.certPem}`],
      ['pinned.pem', self.certPem],
      // A fullchain file (a leaf, then its CA): OpenSSL trusts the CA in it, the leaf does no harm (the review found it refused).
      ['fullchain.pem', client.certPem + pem],
    ];
    for (const [name, data] of accepted) {
      const loaded = parseSidecarConfig('s.yaml', await withClientCa(file(name, data)));
      t.ok(loaded.tls?.clientCa?.equals(Buffer.from(data)), `${name}: loaded`);
    }
  },
);

t.test('mesh.ca.bundle is held to the same: a DER or cut-short root is refused', async (t) => {
  const mesh = (path: string) =>
    'listeners: { inbound: { port: 0 } }\nupstream: { url: "http://127.0.0.1:1" }\n' +
    `mesh: { spiffe_id: "spiffe://td.test/ns/a/sa/b", ca: { url: "https://ca:8444", bundle: "${path}" } }\n`;
  t.match(issuesOf(mesh(file('root.der', der))).join('\n'), /s\.yaml:3 mesh\.ca\.bundle: \S+root\.der holds no PEM certificate \(DER\?/);
  t.match(
    issuesOf(mesh(file('root-cut.pem', pem.slice(0, 300)))).join('\n'),
    /mesh\.ca\.bundle: \S+root-cut\.pem: its certificate does not parse/,
  );
  t.same(issuesOf(mesh(file('root.pem', pem))), [], 'a PEM root loads');
});
