/**
 * `warden ca token create | list | revoke`, `warden ca revoke | list`: the CA's admin API over mTLS
 * with the administrator certificate.
 */
import { createAdminClientFromDir, type AdminClient } from '../ca/admin-client.js';
import type { RevocationReason } from '../ca/api.js';
import { readCaConfig } from '../config/ca-load.js';
import { parseDuration } from '../config/units.js';
import { spiffeIdProblem } from '../net/spiffe-id.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';
import { readPassphrase } from './ca-init.js';

const connectionHelp = `Where the CA is (one of):
  -c, --config FILE       the CA's ca.yaml: its listen address, dir and passphrase
  --url URL --dir DIR     the CA's https URL and a directory with admin.crt, admin.key and bundle.pem
  --passphrase-file FILE, --passphrase-env VAR   the passphrase of an encrypted admin.key (with --url)
  -h, --help              show this help
Exit codes: 0 done, 1 the CA refused or could not be reached, 2 usage error`;

export const caTokenCreateHelp = `Usage: warden ca token create --id SPIFFE_ID [--dns NAME,…] [--ttl DURATION] (-c FILE | --url URL --dir DIR)

Creates a single-use bootstrap token for one workload identity and prints the token alone on
stdout (capture it: TOKEN=$(warden ca token create …)); its details (and its id, for
warden ca token list|revoke) go to stderr.

Options:
  --id SPIFFE_ID          the identity the token enrolls, e.g. spiffe://example.org/ns/shop/sa/orders
  --dns NAME,…            DNS names the certificate may also carry (repeatable)
  --ttl DURATION          token lifetime in s, m or h, e.g. 10m, 1h, 168h (default: the CA's tokens.ttl)
${connectionHelp}`;

export const caRevokeHelp = `Usage: warden ca revoke (--serial HEX | --id SPIFFE_ID) [--reason REASON] (-c FILE | --url URL --dir DIR)

Revokes one certificate by serial, or every unexpired certificate of an identity together with
every unused bootstrap token for it. The CA re-signs its CRL at once; sidecars refuse the
certificate once they have fetched it (mesh.refresh.crl). When the CA cannot re-sign it, the
revocation stands all the same: a warning says so (exit 0) and the CA signs again on the next fetch.
The last valid administrator certificate is not revoked (ERR_CA_LAST_ADMIN): make a new one first
with warden ca admin issue, then revoke the old one with it.

Options:
  --serial HEX            serial as printed by warden ca list (the identity's tokens stay usable)
  --id SPIFFE_ID          every valid certificate and unused bootstrap token of this identity
  --reason REASON         unspecified (default), keyCompromise, superseded, cessationOfOperation
${connectionHelp}`;

export const caListHelp = `Usage: warden ca list [--id SPIFFE_ID] [--status valid|revoked|expired] [--json] (-c FILE | --url URL --dir DIR)

Lists the certificates the CA has issued, newest first.

Options:
  --id SPIFFE_ID          only this identity
  --status STATUS         only valid, revoked or expired certificates
  --json                  the API's JSON instead of a table
${connectionHelp}`;

export const caTokenListHelp = `Usage: warden ca token list [--id SPIFFE_ID] [--json] (-c FILE | --url URL --dir DIR)

Lists the bootstrap tokens the CA has created, newest first: id, identity, state (unused, used,
expired, revoked), creation and expiry. Never the tokens themselves (the CA keeps only a hash).

Options:
  --id SPIFFE_ID          only this identity
  --json                  the API's JSON instead of a table
${connectionHelp}`;

export const caTokenRevokeHelp = `Usage: warden ca token revoke (--token-id ID | --id SPIFFE_ID) (-c FILE | --url URL --dir DIR)

Revokes a bootstrap token that is still unused, or every unused one of an identity: an enrollment
with it is refused from now on. Certificates already issued are not touched (warden ca revoke).

Options:
  --token-id ID           the token's id, as printed by warden ca token create and list
  --id SPIFFE_ID          every unused token of this identity
${connectionHelp}`;

const connectionOptions = {
  config: { type: 'string', short: 'c' },
  url: { type: 'string' },
  dir: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'passphrase-env': { type: 'string' },
} as const;

interface ConnectionValues {
  config?: string | undefined;
  url?: string | undefined;
  dir?: string | undefined;
  'passphrase-file'?: string | undefined;
  'passphrase-env'?: string | undefined;
}

function connect(command: string, values: ConnectionValues): AdminClient {
  if (values.config !== undefined) {
    if (values.url !== undefined || values.dir !== undefined)
      throw new UsageError(`warden ${command}: give -c FILE or --url with --dir, not both`);
    const config = readCaConfig(values.config);
    const host = ['0.0.0.0', '::'].includes(config.listen.host) ? '127.0.0.1' : config.listen.host;
    return createAdminClientFromDir(
      `https://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}`,
      config.dir,
      config.passphrase,
      values.config,
    );
  }
  if (values.url === undefined || values.dir === undefined) {
    throw new UsageError(
      `warden ${command}: say where the CA is: -c ca.yaml, or --url https://HOST:PORT with --dir DIR (see warden ${command} --help)`,
    );
  }
  if (!/^https:\/\/[^/?#]+\/?$/.test(values.url))
    throw new UsageError(`warden ${command}: --url must be an https origin like https://warden-ca:8444`);
  const { passphrase } = readPassphrase(command, values['passphrase-file'], values['passphrase-env']);
  return createAdminClientFromDir(values.url, values.dir, passphrase);
}

async function withClient<T>(command: string, values: ConnectionValues, fn: (client: AdminClient) => Promise<T>): Promise<T> {
  const client = connect(command, values);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export async function runCaTokenCreate(argv: string[]): Promise<number> {
  const command = 'ca token create';
  const { values } = parseCommandArgs(command, argv, {
    ...connectionOptions,
    id: { type: 'string' },
    // Repeatable: `--dns a --dns b` kept only b before (a comma list works too).
    dns: { type: 'string', multiple: true },
    ttl: { type: 'string' },
  });
  if (values.help) {
    console.log(caTokenCreateHelp);
    return EXIT.ok;
  }
  // The sidecars' own parser: the CA refuses anything else as well, this says why before connecting.
  const problem = values.id ? spiffeIdProblem(values.id) : 'missing';
  if (!values.id || problem !== undefined) {
    throw new UsageError(
      `warden ${command}: --id must be a SPIFFE ID like spiffe://example.org/ns/shop/sa/orders (${problem}; see warden ${command} --help)`,
    );
  }
  let ttlSeconds: number | undefined;
  if (values.ttl !== undefined) {
    const ms = parseDuration(values.ttl);
    // Durations have no day unit (as in ca.yaml): "7d" is not a duration, not a too-short one.
    if (ms === undefined)
      throw new UsageError(`warden ${command}: --ttl "${values.ttl}" is not a duration: use s, m or h, like 30s, 10m, 1h or 168h (7 days)`);
    if (ms < 1000 || ms % 1000 !== 0)
      throw new UsageError(`warden ${command}: --ttl must be whole seconds, at least 1s (a number without a unit is milliseconds)`);
    ttlSeconds = ms / 1000;
  }
  const dnsNames = (values.dns ?? [])
    .flatMap((list) => list.split(','))
    .map((n) => n.trim())
    .filter(Boolean);
  const id = values.id;
  const created = await withClient(command, values, (client) =>
    client.createToken({ spiffe_id: id, dns_names: dnsNames, ...(ttlSeconds === undefined ? {} : { ttl_seconds: ttlSeconds }) }),
  );
  console.error(
    `bootstrap token for ${created.spiffe_id}${created.dns_names.length ? ` (dns ${created.dns_names.join(', ')})` : ''}, single-use, expires ${created.expires_at}${created.id ? `, id ${created.id}` : ''}`,
  );
  console.log(created.token);
  return EXIT.ok;
}

const REASONS: readonly RevocationReason[] = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'];

export async function runCaRevoke(argv: string[]): Promise<number> {
  const command = 'ca revoke';
  const { values } = parseCommandArgs(command, argv, {
    ...connectionOptions,
    serial: { type: 'string' },
    id: { type: 'string' },
    reason: { type: 'string' },
  });
  if (values.help) {
    console.log(caRevokeHelp);
    return EXIT.ok;
  }
  if ((values.serial === undefined) === (values.id === undefined))
    throw new UsageError(`warden ${command}: give exactly one of --serial HEX or --id SPIFFE_ID`);
  const reason = (values.reason ?? 'unspecified') as RevocationReason;
  if (!REASONS.includes(reason)) throw new UsageError(`warden ${command}: --reason must be one of ${REASONS.join(', ')}`);
  const request = values.serial !== undefined ? { serial: values.serial, reason } : { spiffe_id: values.id as string, reason };
  const result = await withClient(command, values, (client) => client.revoke(request));
  console.log(
    result.revoked.length === 0
      ? 'nothing to revoke (already revoked or expired)'
      : `revoked ${result.revoked.length}: ${result.revoked.join(' ')}`,
  );
  if (values.id !== undefined) {
    const tokens = result.revoked_tokens as string[] | undefined;
    // A CA older than token revocation answers without the field: its tokens were not revoked.
    console.log(
      tokens === undefined
        ? 'bootstrap tokens: not revoked (this CA predates token revocation: upgrade it, then warden ca token revoke --id)'
        : `unused bootstrap tokens revoked: ${tokens.length}${tokens.length ? ` (${tokens.join(' ')})` : ''}`,
    );
  }
  // Revoked all the same (retrying finds nothing to revoke): a warning, not a failure.
  if (typeof result.crl_error === 'string') console.error(`warning: the CRL was ${result.crl_error}`);
  return EXIT.ok;
}

export async function runCaTokenList(argv: string[]): Promise<number> {
  const command = 'ca token list';
  const { values } = parseCommandArgs(command, argv, { ...connectionOptions, id: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) {
    console.log(caTokenListHelp);
    return EXIT.ok;
  }
  const tokens = await withClient(command, values, (client) => client.listTokens({ spiffe_id: values.id }));
  if (values.json) {
    console.log(JSON.stringify({ tokens }, null, 2));
    return EXIT.ok;
  }
  printTable([
    ['ID', 'SPIFFE ID', 'STATE', 'CREATED', 'EXPIRES'],
    ...tokens.map((k) => [k.id, k.spiffe_id, k.state, k.created_at, k.expires_at]),
  ]);
  return EXIT.ok;
}

export async function runCaTokenRevoke(argv: string[]): Promise<number> {
  const command = 'ca token revoke';
  const { values } = parseCommandArgs(command, argv, { ...connectionOptions, 'token-id': { type: 'string' }, id: { type: 'string' } });
  if (values.help) {
    console.log(caTokenRevokeHelp);
    return EXIT.ok;
  }
  const tokenId = values['token-id'];
  if ((tokenId === undefined) === (values.id === undefined))
    throw new UsageError(`warden ${command}: give exactly one of --token-id ID or --id SPIFFE_ID`);
  if (tokenId !== undefined && !/^[0-9a-f]{16}$/.test(tokenId))
    throw new UsageError(`warden ${command}: --token-id must be 16 hexadecimal digits, as printed by warden ca token list`);
  const request = tokenId !== undefined ? { token_id: tokenId } : { spiffe_id: values.id as string };
  const result = await withClient(command, values, (client) => client.revokeTokens(request));
  console.log(
    result.revoked.length === 0
      ? 'nothing to revoke (already used, expired or revoked)'
      : `revoked ${result.revoked.length} bootstrap token${result.revoked.length === 1 ? '' : 's'}: ${result.revoked.join(' ')}`,
  );
  return EXIT.ok;
}

export async function runCaList(argv: string[]): Promise<number> {
  const command = 'ca list';
  const { values } = parseCommandArgs(command, argv, {
    ...connectionOptions,
    id: { type: 'string' },
    status: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    console.log(caListHelp);
    return EXIT.ok;
  }
  const status = values.status;
  if (status !== undefined && status !== 'valid' && status !== 'revoked' && status !== 'expired') {
    throw new UsageError(`warden ${command}: --status must be valid, revoked or expired`);
  }
  const certificates = await withClient(command, values, (client) => client.listCertificates({ spiffe_id: values.id, status }));
  if (values.json) {
    console.log(JSON.stringify({ certificates }, null, 2));
    return EXIT.ok;
  }
  printTable([
    ['SERIAL', 'SPIFFE ID', 'KIND', 'STATUS', 'NOT AFTER'],
    ...certificates.map((c) => [c.serial, c.spiffe_id, c.kind, c.status, c.not_after]),
  ]);
  return EXIT.ok;
}

/** Columns padded to their widest cell, two spaces apart; the header row first. */
function printTable(rows: string[][]): void {
  // A loop, not Math.max(...column): a list of ~125 000 certificates spread as arguments overflowed the stack.
  const widths = rows[0]!.map((_, i) => rows.reduce((widest, r) => Math.max(widest, (r[i] ?? '').length), 0));
  for (const row of rows)
    console.log(
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    );
}
