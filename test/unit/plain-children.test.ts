// test/support/plain-children.ts (loaded before every test file by .taprc): the Node processes a
// test starts run without tap's process-info loader, and keep the options a test gives them.
import t from 'tap';
import { spawnSync } from 'node:child_process';

const printOptions = ['-e', 'console.log(JSON.stringify(process.env.NODE_OPTIONS ?? null))'];

t.test("a child started with the test's environment has no tap loader in NODE_OPTIONS", async (t) => {
  const child = spawnSync(process.execPath, printOptions, { encoding: 'utf8' });
  t.equal(child.status, 0, child.stderr);
  const options = JSON.parse(child.stdout) as string | null;
  t.notMatch(options ?? '', /processinfo/);
});

t.test('options a test sets for its child are kept', async (t) => {
  const env = { ...process.env, NODE_OPTIONS: '--max-old-space-size=64 --no-warnings' };
  const child = spawnSync(process.execPath, printOptions, { encoding: 'utf8', env });
  t.equal(child.status, 0, child.stderr);
  // tap writes each option back quoted ("--no-warnings"); node reads both spellings alike.
  const options = (JSON.parse(child.stdout) as string).split(' ').map((option) => option.replace(/^"(.*)"$/, '$1'));
  t.same(options, ['--max-old-space-size=64', '--no-warnings']);
});
