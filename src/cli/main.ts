/** The `warden` command: picks the subcommand, maps failures to one-line messages and exit codes. */
import { writeSync } from 'node:fs';
import { WARDEN_VERSION } from '../version.js';
import { ConfigError } from '../config/config-error.js';
import { isWardenError } from '../errors.js';
import { EXIT, UsageError } from './args.js';
import { guardOutput, STALLED_READER_MS } from './output-flush.js';
const version = WARDEN_VERSION;

const help = `Usage: warden <command> [options]

Warden is a security sidecar for HTTP APIs.

Commands:
  proxy -c FILE          run the sidecar
  enroll -c FILE         enroll at the Warden CA once and exit (init container)
  config check -c FILE   validate a sidecar configuration
  dev                    run the embedded demo (CA, backend, sidecar); what \`npm start\` runs
  ca init --trust-domain D --dir DIR   create a CA (root, intermediate, admin identity)
  ca serve -c FILE       run the CA (enrollment, renewal, bundle, CRL, admin API)
  ca token create --id SPIFFE_ID       create a bootstrap token (printed alone on stdout)
  ca token list [--id SPIFFE_ID]       list bootstrap tokens (id, state; never the token)
  ca token revoke (--token-id ID | --id SPIFFE_ID)   revoke unused bootstrap tokens
  ca revoke (--serial S | --id SPIFFE_ID)   revoke certificates (--id: and unused tokens)
  ca list                list issued certificates
  ca admin issue -c FILE   issue a new administrator certificate (admin.crt, admin.key) offline

Options:
  -h, --help             help (also after any command: warden proxy --help)
  -v, --version          print the version`;

/**
 * Each command's module is loaded only when it runs: `warden proxy` does not load the CA's
 * service and SQLite store or the demo's OpenID provider.
 */
type Command = () => Promise<(argv: string[]) => Promise<number>>;

const commands: Record<string, Command> = {
  proxy: async () => (await import('./proxy.js')).runProxy,
  'config check': async () => (await import('./config-check.js')).runConfigCheck,
  dev: async () => (await import('./dev.js')).runDev,
  enroll: async () => (await import('./enroll.js')).runEnroll,
  'ca init': async () => (await import('./ca-init.js')).runCaInit,
  'ca serve': async () => (await import('./ca-serve.js')).runCaServe,
  'ca token create': async () => (await import('./ca-admin.js')).runCaTokenCreate,
  'ca token list': async () => (await import('./ca-admin.js')).runCaTokenList,
  'ca token revoke': async () => (await import('./ca-admin.js')).runCaTokenRevoke,
  'ca revoke': async () => (await import('./ca-admin.js')).runCaRevoke,
  'ca list': async () => (await import('./ca-admin.js')).runCaList,
  'ca admin issue': async () => (await import('./ca-admin-issue.js')).runCaAdminIssue,
};

/** Groups whose subcommand is part of the command name (`config check`, `ca token create`). */
const groups: Record<string, string> = { config: 'warden config check -c FILE', ca: 'warden --help' };

function commandName(argv: string[]): string {
  const [first = '', second, third] = argv;
  if (!Object.hasOwn(groups, first)) return first;
  const three = [first, second, third].join(' ');
  return Object.hasOwn(commands, three) ? three : `${first} ${second ?? ''}`.trim();
}

/**
 * The command group `argv` names without a command of it (`ca`, `ca token --help`, `config -c x`:
 * its words up to the first option); undefined otherwise (`ca foo` is an unknown command).
 */
function groupOf(argv: string[]): string | undefined {
  const words: string[] = [];
  for (const arg of argv) {
    if (arg.startsWith('-')) break;
    words.push(arg);
  }
  const group = words.join(' ');
  return Object.keys(commands).some((c) => c.startsWith(`${group} `)) ? group : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    console.log(help);
    return first === undefined ? EXIT.usage : EXIT.ok;
  }
  if (first === '-v' || first === '--version') {
    console.log(`warden ${version}`);
    return EXIT.ok;
  }
  const name = commandName(argv);
  const command = commands[name];
  const group = command ? undefined : groupOf(argv);
  if (group !== undefined) {
    // `warden ca`, `warden ca token --help`: the group's commands, not "unknown command".
    const asked = argv.includes('-h') || argv.includes('--help');
    const lines = help.split('\n').filter((line) => line.startsWith(`  ${group} `));
    (asked ? console.log : console.error)(`Usage: warden ${group} <command> [options]\n\nCommands:\n${lines.join('\n')}`);
    return asked ? EXIT.ok : EXIT.usage;
  }
  if (!command) {
    const hint = (Object.hasOwn(groups, first) ? groups[first] : undefined) ?? 'warden --help';
    // As typed (its words up to its options): `ca token foo`, not the `ca token` it was looked up as.
    const options = argv.findIndex((a) => a.startsWith('-'));
    const typed = argv.slice(0, options < 0 ? 3 : Math.min(options, 3)).join(' ');
    console.error(`warden: unknown command "${typed || name}" (see ${hint})`);
    return EXIT.usage;
  }
  const rest = argv.slice(name.split(' ').length);
  try {
    const run = await command();
    return await run(rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const line of err.message.split('\n')) console.error(line);
      return EXIT.usage;
    }
    if (err instanceof UsageError) {
      console.error(err.message);
      return EXIT.usage;
    }
    // A WardenError's message is its title alone: the code and the detail say what and where.
    console.error(`warden ${name}: ${isWardenError(err) ? `${err.code}: ${err.detail ?? err.title}` : (err as Error).message}`);
    return EXIT.failure;
  }
}

// Before anything is printed: a reader that goes away (EPIPE) must not crash the command.
const output = guardOutput([process.stdout, process.stderr]);
const code = await main(process.argv.slice(2));
// Servers, pools and timers would keep the process alive after a command has decided to end; what
// it printed is written first. A reader that stalled got incomplete output: not a success.
const written = await output.flush();
if (!written) {
  try {
    // At once or not at all: console.error would queue behind what is stuck.
    writeSync(2, `warden: output cut short: its reader took nothing for ${STALLED_READER_MS / 1000} s\n`);
  } catch {
    // stderr is the stalled one, or closed: nowhere to say it
  }
}
process.exit(written ? code : code || EXIT.failure);
