// test/support/temp-root.ts (loaded before every test file by .taprc): a test process's temporary
// files, and those of what it starts, live in one directory of its own, gone when it exits.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { repoRoot } from '../support/sidecar.js';

t.test('this process: its own temporary directory, inherited by the processes it starts', async (t) => {
  const root = tmpdir();
  t.match(basename(root), /^warden-tests-/);
  t.ok(existsSync(root));
  const child = spawnSync(process.execPath, ['-e', 'console.log(require("node:os").tmpdir())'], { encoding: 'utf8' });
  t.equal(child.stdout.trim(), root, 'a child process makes its files there too');
});

t.test('a process that loads it leaves nothing behind when it exits', async (t) => {
  // The child writes a file and a folder into its temporary directory and prints where it was.
  const script = join(mkdtempSync(join(tmpdir(), 'temp-root-check-')), 'child.mjs');
  writeFileSync(
    script,
    `import { mkdirSync, writeFileSync } from 'node:fs';\nimport { tmpdir } from 'node:os';\n` +
      `mkdirSync(tmpdir() + '/a/b', { recursive: true });\nwriteFileSync(tmpdir() + '/a/b/key.pem', 'x');\nconsole.log(tmpdir());\n`,
  );
  const child = spawnSync(process.execPath, ['--import=tsx', `--import=${join(repoRoot, 'test/support/temp-root.ts')}`, script], {
    encoding: 'utf8',
    cwd: repoRoot,
  });
  t.equal(child.status, 0, child.stderr);
  const itsRoot = child.stdout.trim();
  t.match(basename(itsRoot), /^warden-tests-/);
  t.not(itsRoot, tmpdir(), 'not this process’s');
  t.notOk(existsSync(itsRoot), 'removed at exit, with what was in it');
});
