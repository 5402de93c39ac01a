// test/support/lean-test-processes.js (loaded into tap's runner by `npm run tap`): what the runner
// starts runs without tap's process-info loader, and keeps every other option.
import t from 'tap';
import { spawnSync } from 'node:child_process';

// The loader as tap names it (a file: URL in node_modules).
const processInfoImport = import.meta.resolve('@tapjs/processinfo/import');

// A child with the runner's preload starts a grandchild as tap starts a test file (an asynchronous
// spawn); the grandchild prints what it was started with.
const runner = `
const { execFile } = require('node:child_process');
execFile(process.execPath, [
  '--import=${processInfoImport}', '--enable-source-maps', '--max-old-space-size=96',
  '-e', 'console.log(JSON.stringify({ argv: process.execArgv, options: process.env.NODE_OPTIONS ?? null }))',
], { env: { ...process.env, NODE_OPTIONS: '"--import=${processInfoImport}" --no-warnings' } },
  (error, stdout, stderr) => { process.stdout.write(stdout); process.stderr.write(stderr); if (error) process.exitCode = 1; });
`;

t.test('a process the runner starts has no process-info loader in its arguments or NODE_OPTIONS', async (t) => {
  const child = spawnSync(process.execPath, ['--import=./test/support/lean-test-processes.js', '-e', runner], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.equal(child.status, 0, child.stderr);
  const started = JSON.parse(child.stdout) as { argv: string[]; options: string | null };
  t.same(started.argv.slice(0, 2), ['--enable-source-maps', '--max-old-space-size=96']);
  t.notMatch(started.argv.join(' '), /processinfo/);
  t.equal(started.options, '--no-warnings');
});

t.test('without the preload, the same child keeps the loader (the case above is not vacuous)', async (t) => {
  const child = spawnSync(process.execPath, ['-e', runner], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  t.equal(child.status, 0, child.stderr);
  const started = JSON.parse(child.stdout) as { argv: string[]; options: string | null };
  t.match(started.argv[0], /@tapjs\/processinfo/);
});

t.test(
  'npm test runs this file without the loader',
  { skip: process.env.npm_lifecycle_event !== 'tap' && process.env.npm_lifecycle_event !== 'test' },
  async (t) => {
    t.notMatch(process.execArgv.join(' '), /processinfo/);
  },
);
