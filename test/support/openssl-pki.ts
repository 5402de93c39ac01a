/**
 * An operator's own PKI, made with the `openssl` CLI as an operator would: CAs (RSA or ECDSA),
 * intermediate CAs and client certificates with chosen serials, and CRLs from `openssl ca -gencrl` (for
 * `listeners.inbound.tls.client_crl`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyType = 'rsa' | 'ec' | 'ed25519';

export interface OpensslCa {
  readonly dir: string;
  readonly subject: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
}

export interface ClientCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Hex, as given to `-set_serial`. */
  readonly serial: string;
}

const openssl = (args: string[], cwd?: string) => execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });

const newKey = (type: KeyType): string[] =>
  type === 'rsa'
    ? ['-newkey', 'rsa:2048']
    : type === 'ec'
      ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']
      : ['-newkey', 'ed25519'];

/**
 * A CA: `subject` like "/CN=Clients CA/O=Example"; self-signed, or, with `parent`, an intermediate
 * that `parent` issues with serial `serial` (hex).
 */
export function makeCa(subject: string, type: KeyType = 'rsa', parent?: { ca: OpensslCa; serial: string }): OpensslCa {
  const dir = mkdtempSync(join(tmpdir(), 'warden-openssl-ca-'));
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (parent === undefined) {
    openssl([
      'req', '-x509', ...newKey(type), '-nodes', '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]); // prettier-ignore
  } else {
    const csr = join(dir, 'ca.csr');
    const ext = join(dir, 'ca.ext');
    writeFileSync(
      ext,
      'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    openssl(['req', '-new', ...newKey(type), '-nodes', '-keyout', keyFile, '-out', csr, '-subj', subject]);
    openssl(['x509', '-req', '-in', csr, '-CA', parent.ca.certFile, '-CAkey', parent.ca.keyFile, '-set_serial', `0x${parent.serial}`, '-days', '20', '-extfile', ext, '-out', certFile]); // prettier-ignore
  }
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'crlnumber'), '01\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ ca ]',
      'default_ca = CA_default',
      '[ CA_default ]',
      `database = ${join(dir, 'index.txt')}`,
      `crlnumber = ${join(dir, 'crlnumber')}`,
      'default_md = sha256',
      'default_crl_days = 7',
      'crl_extensions = crl_ext',
      '[ crl_ext ]',
      'authorityKeyIdentifier = keyid:always',
      '',
    ].join('\n'),
  );
  return { dir, subject, certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}

/** A client certificate (ECDSA P-256, clientAuth) issued by `ca` with serial `serial` (hex). */
export function issueClient(ca: OpensslCa, name: string, serial: string): ClientCert {
  const dir = mkdtempSync(join(tmpdir(), 'warden-openssl-client-'));
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, 'client.ext');
  writeFileSync(
    ext,
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n',
  );
  openssl(['req', '-new', ...newKey('ec'), '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', `0x${serial}`, '-days', '10', '-extfile', ext, '-out', certFile]); // prettier-ignore
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8'), serial };
}

/** openssl's time format for -crl_lastupdate / -crl_nextupdate. */
const asn1Time = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/**
 * A CRL of `ca` listing `serials` (hex), PEM unless `der`; `nextUpdate` (ms epoch) in the past makes
 * a stale one. Each call numbers its CRL one more (openssl's crlnumber file).
 */
export function makeCrl(ca: OpensslCa, serials: readonly string[], options: { nextUpdate?: number; der?: boolean } = {}): Buffer {
  const index = serials
    .map(
      (s) =>
        `R\t301231000000Z\t${asn1Time(Date.now() - 3_600_000).slice(2)}\t${(s.length % 2 ? `0${s}` : s).toUpperCase()}\tunknown\t/CN=x`,
    )
    .join('\n');
  writeFileSync(join(ca.dir, 'index.txt'), index ? `${index}\n` : '');
  const out = join(ca.dir, 'crl.pem');
  const dates =
    options.nextUpdate === undefined
      ? ['-crldays', '7']
      : ['-crl_lastupdate', asn1Time(options.nextUpdate - 86_400_000), '-crl_nextupdate', asn1Time(options.nextUpdate)];
  openssl(['ca', '-gencrl', '-config', join(ca.dir, 'ca.cnf'), '-keyfile', ca.keyFile, '-cert', ca.certFile, '-out', out, ...dates]);
  if (!options.der) return readFileSync(out);
  return openssl(['crl', '-in', out, '-outform', 'DER']);
}
