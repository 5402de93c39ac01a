/** `warden ca serve -c FILE`: run the CA's HTTPS API until SIGTERM/SIGINT. */
import { ConfigError } from '../config/config-error.js';
import { loadCaConfig, type LoadedCaConfig } from '../config/ca-load.js';
import { startCaServer, type CaServer } from '../ca/server.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';
import { bindProblem } from './bind-error.js';

export const caServeHelp = `Usage: warden ca serve -c FILE [--create-database | --accept-restored-database]

Runs the Warden CA: enrollment with bootstrap tokens, renewal over mTLS, the trust bundle, the CRL
and the admin API (see docs/ca.md). Logs and security events are JSON lines on stdout.
The database (database.path) must exist — warden ca init makes it: a missing one is refused, as a
new one would lose every revocation. Restore it from a backup, or correct database.path.
A database older than what the CA last published (DIR/crl-published.json: a restored backup) is
refused too: its CRLs would un-revoke what was revoked since.

Options:
  -c, --config FILE   CA configuration (ca.yaml, as written by warden ca init)
  --create-database   make a new, empty database at database.path, which must not exist: only for
                      a CA directory made by an older warden ca init (before it made the database)
                      that never served; start without it afterwards
  --accept-restored-database
                      start on a database older than what the CA published (restored from an
                      older backup), raising the security event warden.ca.database_restored;
                      refused when the database is not older: start without it afterwards, and
                      revoke again what was revoked since
  -h, --help          show this help

Signals:
  SIGTERM, SIGINT     stop accepting, close the database, exit 0
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 invalid configuration or usage`;

export async function runCaServe(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('ca serve', argv, {
    config: { type: 'string', short: 'c' },
    'create-database': { type: 'boolean' },
    'accept-restored-database': { type: 'boolean' },
  });
  if (values.help) {
    console.log(caServeHelp);
    return EXIT.ok;
  }
  if (!values.config) throw new UsageError('warden ca serve: missing -c FILE (the CA configuration; see warden ca serve --help)');
  const loaded = await loadCaConfig(values.config);
  const ca = await startOrExplain(loaded, {
    createDatabase: values['create-database'] === true,
    acceptRestoredDatabase: values['accept-restored-database'] === true,
  });
  return new Promise<number>((resolve) => {
    const stop = () => void ca.close().then(() => resolve(EXIT.ok));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

async function startOrExplain(
  loaded: LoadedCaConfig,
  flags: { createDatabase: boolean; acceptRestoredDatabase: boolean },
): Promise<CaServer> {
  try {
    return await startCaServer({ config: loaded.config, material: loaded.material, ...flags });
  } catch (err) {
    const { host, port } = loaded.config.listen;
    const problem = bindProblem(err as NodeJS.ErrnoException, host, port);
    if (problem) throw new ConfigError([loaded.issue(['listen', problem.field], problem.message)]);
    throw err;
  }
}
