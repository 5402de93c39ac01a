/** `warden ca admin issue -c FILE`: a new administrator certificate, offline, from the CA directory. */
import { issueAdminCertificate } from '../ca/admin-issue.js';
import { withAdminIssueLock } from '../ca/admin-issue-lock.js';
import { loadCaConfigForAdminIssue } from '../config/ca-load.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';

export const caAdminIssueHelp = `Usage: warden ca admin issue -c FILE

Issues a new administrator certificate (spiffe://DOMAIN/warden/admin, 1 year) from the CA
directory's intermediate key and replaces admin.crt and admin.key with it (the key encrypted with
the CA's passphrase, as warden ca init writes it). Offline: it runs on the CA's host with ca.yaml
and writes the certificate into the CA's database, so a running CA accepts it at once. For an
administrator certificate that expires, was lost or leaked (admin.crt may be missing): the one it
replaces stays valid until it expires; revoke it with the new one (warden ca revoke --serial OLD
-c FILE). The CA refuses to revoke the last valid administrator certificate, so issue the new one
first. One run at a time: it holds admin-issue.lock in the CA directory while it writes (one
left by a killed run on this host is taken over). If admin.key or admin.crt cannot be written,
the new certificate is revoked and the error names the file.

Options:
  -c, --config FILE   the CA's ca.yaml (its dir, passphrase and database.path)
  -h, --help          show this help
Exit codes: 0 issued, 1 failure, 2 invalid configuration or usage`;

export async function runCaAdminIssue(argv: string[]): Promise<number> {
  const command = 'ca admin issue';
  const { values } = parseCommandArgs(command, argv, { config: { type: 'string', short: 'c' } });
  if (values.help) {
    console.log(caAdminIssueHelp);
    return EXIT.ok;
  }
  if (!values.config) throw new UsageError(`warden ${command}: missing -c FILE (the CA's ca.yaml; see warden ${command} --help)`);
  const { config, material } = await loadCaConfigForAdminIssue(values.config);
  const issued = await withAdminIssueLock(config.dir, () => issueAdminCertificate(config, material));
  console.log(
    `issued a new administrator certificate for ${issued.spiffeId}: serial ${issued.serial}, not after ${issued.notAfter.toISOString()}`,
  );
  console.log(`  written: ${issued.certPath}, ${issued.keyPath} (the CA accepts it now)`);
  if (issued.stillValid.length > 0) {
    console.log(
      `  still valid: ${issued.stillValid.join(' ')}${issued.replaced !== undefined && issued.stillValid.includes(issued.replaced) ? ` (${issued.replaced}: the admin.crt replaced)` : ''}; revoke what is no longer used: warden ca revoke --serial SERIAL -c ${values.config}`,
    );
  }
  return EXIT.ok;
}
