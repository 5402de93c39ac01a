/** The `warden` command as a person runs it: help, version, config check, usage and config errors. */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, testConfigYaml } from '../support/sidecar.js';

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-cli-')), 'sidecar.yaml');
  writeFileSync(file, text);
  return file;
}

t.test('--version and --help', async (t) => {
  const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
  t.same(warden('--version'), { code: 0, stdout: `warden ${version}\n`, stderr: '' });
  const help = warden('--help');
  t.equal(help.code, 0);
  t.match(help.stdout, /proxy -c FILE/);
  t.match(help.stdout, /config check -c FILE/);
  for (const command of [['proxy'], ['config', 'check'], ['dev']]) {
    const r = warden(...command, '--help');
    t.equal(r.code, 0, `${command.join(' ')} --help`);
    t.match(r.stdout, new RegExp(`^Usage: warden ${command.join(' ')}`));
  }
  t.equal(warden().code, 2, 'no command: usage, exit 2');
  // A command group lists its commands (it said "unknown command").
  const ca = warden('ca', '--help');
  t.equal(ca.code, 0, 'ca --help');
  t.match(ca.stdout, /^Usage: warden ca <command>[^]*ca serve -c FILE[^]*ca token create[^]*ca list/);
  t.notMatch(ca.stdout, /proxy -c FILE/, 'only its own commands');
  const token = warden('ca', 'token', '--help');
  t.equal(token.code, 0);
  t.same(
    token.stdout
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim().split(/\s+/).slice(0, 3).join(' ')),
    ['ca token create', 'ca token list', 'ca token revoke'],
  );
  const bare = warden('ca');
  t.equal(bare.code, 2, 'ca alone: its commands on stderr, exit 2');
  t.match(bare.stderr, /^Usage: warden ca <command>/);
  t.match(warden('config', '--help').stdout, /config check -c FILE/);
});

t.test('usage errors are one line and exit 2', async (t) => {
  const unknown = warden('proxi');
  t.equal(unknown.code, 2);
  t.equal(unknown.stderr, 'warden: unknown command "proxi" (see warden --help)\n');
  t.equal(warden('ca', 'token', 'foo').stderr, 'warden: unknown command "ca token foo" (see warden --help)\n', 'named as typed');
  const missing = warden('proxy');
  t.equal(missing.code, 2);
  t.equal(missing.stderr, 'warden proxy: missing -c FILE (the sidecar configuration; see warden proxy --help)\n');
  const badFlag = warden('config', 'check', '--cfg', 'x');
  t.equal(badFlag.code, 2);
  t.match(badFlag.stderr, /^warden config check: Unknown option '--cfg'.*\(see warden config check --help\)\n$/);
});

t.test('a second file is refused, not ignored: a stray argument or a repeated -c is a usage error', async (t) => {
  const file = configFile(await testConfigYaml('http://127.0.0.1:8080'));
  const other = configFile('listeners: [\n');
  // `-c a b` checked a and said nothing of b; `-c a -c b` checked only b.
  t.same(warden('config', 'check', '-c', file, other), {
    code: 2,
    stdout: '',
    stderr: `warden config check: Unexpected argument '${other}'. This command does not take positional arguments (see warden config check --help)\n`,
  });
  t.same(warden('config', 'check', '-c', other, '--config', file), {
    code: 2,
    stdout: '',
    stderr: 'warden config check: -c/--config is given more than once; it takes one value (see warden config check --help)\n',
  });
  t.equal(warden('proxy', '-c', file, '-c', file).code, 2, 'every command');
  t.equal(warden('config', 'check', '-c', file).code, 0);
});

t.test('config check: valid file, exit 0', async (t) => {
  const file = configFile(await testConfigYaml('http://127.0.0.1:8080', { routes: [{ id: 'a', path: '/a' }] }));
  const r = warden('config', 'check', '-c', file);
  t.equal(r.code, 0);
  t.match(r.stdout, /valid — inbound 127\.0\.0\.1:0, upstream http:\/\/127\.0\.0\.1:8080, 1 routes/);
});

t.test('config check and proxy: invalid file → one line per problem (file:line field: expected), exit 2', async (t) => {
  const text = (await testConfigYaml('http://127.0.0.1:8080')).replace(/port: 0\n/, 'port: "84x3"\n');
  const file = configFile(text);
  const line = text.split('\n').findIndex((l) => l.includes('84x3')) + 1;
  for (const args of [
    ['config', 'check', '-c', file],
    ['proxy', '-c', file],
  ]) {
    const r = warden(...args);
    t.equal(r.code, 2, `${args[0]} exit 2`);
    t.equal(r.stderr, `${file}:${line} listeners.inbound.port: must be an integer 0–65535 (0 picks a free port), got "84x3"\n`);
  }
  const missing = warden('config', 'check', '-c', '/nonexistent.yaml');
  t.equal(missing.code, 2);
  t.equal(missing.stderr, '/nonexistent.yaml: cannot read the configuration (file not found)\n');
});

t.test('config check: peers.allow without client certificates (no mesh) is an error naming the field', async (t) => {
  const text = await testConfigYaml('http://127.0.0.1:8080', {
    routes: [{ id: 'pay', path: '/pay/*', peers: { allow: ['spiffe://example.test/ns/payments/*'] } }],
  });
  const r = warden('config', 'check', '-c', configFile(text));
  t.equal(r.code, 2);
  t.match(
    r.stderr,
    /^\S+:\d+ routes\[0\]\.peers\.allow: needs listeners\.inbound\.tls\.client_certificates: request or require \(without them no caller presents a certificate\)\n$/,
  );
});

t.test('proxy: a port in use is reported against its field', async (t) => {
  const { createServer } = await import('node:net');
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const text = (await testConfigYaml('http://127.0.0.1:8080')).replace(/(inbound:\n\s+host: 127\.0\.0\.1\n\s+port:) 0/, `$1 ${port}`);
  const r = warden('proxy', '-c', configFile(text));
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`:\\d+ listeners\\.inbound\\.port: ${port} is already in use \\(EADDRINUSE\\)\\n$`));
});

t.test('ca init: a directory holding any file it would write is refused before a key is written', async (t) => {
  for (const existing of ['ca.yaml', 'bundle.pem', 'admin.crt']) {
    const dir = mkdtempSync(join(tmpdir(), 'warden-cli-init-'));
    writeFileSync(join(dir, existing), '# mine\n');
    const r = warden('ca', 'init', '--trust-domain', 'example.test', '--dir', dir);
    t.equal(r.code, 2, `${existing}: exit 2`);
    t.match(
      r.stderr,
      new RegExp(`^warden ca init: .*already holds .*\\(${existing.replace('.', '\\.')}\\).*\\n$`),
      `${existing}: one line naming it`,
    );
    t.same(readdirSync(dir), [existing], `${existing}: nothing else written`);
  }
  // A file that appears after the check (here a dangling link: not "existing", yet `wx` fails on it):
  // what was written already is removed, and bundle.pem, the last file, is the one refused.
  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-init-'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'bundle.pem'));
  const r = warden('ca', 'init', '--trust-domain', 'example.test', '--dir', dir);
  t.equal(r.code, 2, 'a file created in between: exit 2');
  t.match(r.stderr, /already holds .*\(bundle\.pem\)/, 'names it');
  t.same(readdirSync(dir), ['bundle.pem'], 'no key left behind');
  const ok = warden('ca', 'init', '--trust-domain', 'example.test', '--dir', join(dir, 'ca'));
  t.equal(ok.code, 0, 'an empty directory: created');
});

t.test('messages name the real problem: --ttl unit, an address not of this host, a damaged key', async (t) => {
  const ttl = warden(
    'ca',
    'token',
    'create',
    '--id',
    'spiffe://example.test/ns/a/sa/b',
    '--ttl',
    '7d',
    '--url',
    'https://127.0.0.1:1',
    '--dir',
    '/nonexistent',
  );
  t.equal(ttl.code, 2);
  t.match(ttl.stderr, /--ttl "7d" is not a duration: use s, m or h, .*168h/, '--ttl 7d: the unit');
  t.notMatch(ttl.stderr, /whole seconds or more/);

  // 192.0.2.1 (TEST-NET-1) is no address of a test machine: EADDRNOTAVAIL names the host field.
  const text = (await testConfigYaml('http://127.0.0.1:8080')).replace(/(admin:\n\s+host:) 127\.0\.0\.1/, '$1 192.0.2.1');
  t.match(text, /admin:\n\s+host: 192\.0\.2\.1/, 'the admin host replaced');
  const proxy = warden('proxy', '-c', configFile(text));
  t.equal(proxy.code, 2);
  t.match(proxy.stderr, /:\d+ listeners\.admin\.host: 192\.0\.2\.1 is not an address of this host \(EADDRNOTAVAIL\)\n$/, 'proxy: the host');

  const dir = mkdtempSync(join(tmpdir(), 'warden-cli-ca-'));
  t.equal(warden('ca', 'init', '--trust-domain', 'example.test', '--dir', dir).code, 0);
  const caYaml = join(dir, 'ca.yaml');
  writeFileSync(caYaml, readFileSync(caYaml, 'utf8').replace('host: 127.0.0.1', 'host: 192.0.2.1').replace('port: 8444', 'port: 0'));
  const serve = warden('ca', 'serve', '-c', caYaml);
  t.equal(serve.code, 2);
  t.match(serve.stderr, /:\d+ listen\.host: 192\.0\.2\.1 is not an address of this host \(EADDRNOTAVAIL\)\n$/, 'ca serve: the host');

  writeFileSync(join(dir, 'intermediate.key'), randomBytes(300));
  const damaged = warden('ca', 'serve', '-c', caYaml);
  t.not(damaged.code, 0);
  t.match(damaged.stderr, /intermediate\.key holds no PEM private key \(damaged or not a key file\)/, 'random bytes: damaged');
  t.notMatch(damaged.stderr, /is encrypted/);
});
