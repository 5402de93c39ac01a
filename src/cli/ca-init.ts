/** `warden ca init`: create a CA (root, intermediate, admin identity) in an empty directory. */
import { MAX_SECRET_FILE_BYTES, readFailure, readFileBounded } from '../config/bounded-file.js';
import { resolve } from 'node:path';
import { CaExistsError, initCa, TRUST_DOMAIN } from '../ca/init.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';

export const caInitHelp = `Usage: warden ca init --trust-domain DOMAIN --dir DIR [--passphrase-file FILE | --passphrase-env VAR]

Creates a Warden CA in DIR: a root CA (ECDSA P-256, 10 years), an issuing intermediate (1 year),
the administrator's client certificate (spiffe://DOMAIN/warden/admin) used by warden ca token|revoke|list,
the database ca.db (empty, stamped with DOMAIN; warden ca serve refuses to start without it),
bundle.pem (the root, for clients) and a ca.yaml to start from. Private keys and ca.db are written
0600 and the keys, with a passphrase, encrypted (AES-256-CBC PKCS#8). Refuses a DIR that already
holds any of these files before writing anything. All or nothing: the files are made and synced in
DIR/.warden-ca-init, then moved into DIR, bundle.pem last; what an interrupted init left there is
removed by the next one.
Prints the root fingerprint (sha256:<hex>) that sidecars can pin as mesh.ca.fingerprint.

Options:
  --trust-domain DOMAIN   the SPIFFE trust domain, e.g. example.org
  --dir DIR               where to write the CA (created if missing; must not hold a CA)
  --passphrase-file FILE  encrypt the keys with the passphrase in FILE (ca.yaml refers to FILE)
  --passphrase-env VAR    encrypt the keys with the passphrase in environment variable VAR
  -h, --help              show this help
Exit codes: 0 created, 1 failure, 2 usage error or DIR already holds a CA`;

export async function runCaInit(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('ca init', argv, {
    'trust-domain': { type: 'string' },
    dir: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'passphrase-env': { type: 'string' },
  });
  if (values.help) {
    console.log(caInitHelp);
    return EXIT.ok;
  }
  const trustDomain = values['trust-domain'];
  if (!trustDomain) throw new UsageError('warden ca init: missing --trust-domain DOMAIN (see warden ca init --help)');
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new UsageError(
      `warden ca init: --trust-domain "${trustDomain}" must be lower-case letters, digits, "." and "-" (e.g. example.org)`,
    );
  }
  if (!values.dir) throw new UsageError('warden ca init: missing --dir DIR (see warden ca init --help)');
  const { passphrase, reference } = readPassphrase('ca init', values['passphrase-file'], values['passphrase-env']);
  try {
    const ca = await initCa({ trustDomain, dir: values.dir, passphrase, passphraseReference: reference });
    if (ca.removed.length > 0) {
      console.error(`warden ca init: removed what an interrupted warden ca init had left: ${ca.removed.join(', ')}`);
    }
    console.log(`Created a Warden CA for trust domain ${ca.trustDomain} in ${ca.dir}${passphrase ? ' (keys encrypted)' : ''}`);
    console.log(`  administrator: ${ca.adminSpiffeId} (admin.crt, admin.key)`);
    console.log(`  trust bundle:  ${resolve(ca.dir, 'bundle.pem')}`);
    console.log(`  database:      ${resolve(ca.dir, 'ca.db')} (back it up with the keys: it holds the revocations)`);
    console.log(`  next:          warden ca serve -c ${resolve(ca.dir, 'ca.yaml')}`);
    console.log(`root fingerprint: ${ca.fingerprint}`);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CaExistsError) throw new UsageError(`warden ca init: ${err.message}`);
    throw err;
  }
}

/** The passphrase from --passphrase-file or --passphrase-env, and how ca.yaml should refer to it. */
export function readPassphrase(
  command: string,
  file: string | undefined,
  env: string | undefined,
): { passphrase: string | undefined; reference: string | undefined } {
  if (file !== undefined && env !== undefined)
    throw new UsageError(`warden ${command}: give --passphrase-file or --passphrase-env, not both`);
  let passphrase: string | undefined;
  let reference: string | undefined;
  if (file !== undefined) {
    try {
      // A one-shot command: `--passphrase-file <(pass show ca)` or /dev/stdin is read, as before.
      passphrase = readFileBounded(file, MAX_SECRET_FILE_BYTES, { allowFifo: true })
        .toString('utf8')
        .replace(/\r?\n$/, '');
    } catch (err) {
      throw new UsageError(`warden ${command}: cannot read --passphrase-file ${file} (${readFailure(err)})`);
    }
    reference = `\${file:${resolve(file)}}`;
  } else if (env !== undefined) {
    passphrase = process.env[env];
    if (passphrase === undefined) throw new UsageError(`warden ${command}: environment variable ${env} (--passphrase-env) is not set`);
    reference = `\${${env}}`;
  }
  if (passphrase !== undefined && passphrase.length < 8)
    throw new UsageError(`warden ${command}: the passphrase must have at least 8 characters`);
  return { passphrase, reference };
}
