/**
 * guardOutput over a real pipe (a child's stdin, a net.Socket like process.stdout on a pipe): the
 * flush waits while the reader takes bytes, even of one large write; gives up on a reader that
 * takes nothing; and stops at once, without an uncaught EPIPE, when the reader is gone.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { guardOutput } from '../../../src/cli/output-flush.js';

/** A Node child running `script` with its stdin a pipe from here, once it runs (it starts slowly on a busy machine). */
async function reader(t: { teardown(fn: () => void): void }, script: string) {
  const child = spawn(process.execPath, ['-e', `${script}; console.log('ready')`], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.stdout.once('data', resolve));
  return child;
}

/** Past the pipe (64 KiB) and whatever the reader buffers: most of it waits in this process. */
const LARGE = Buffer.alloc(512 * 1024, 'x');

t.test('nothing waiting: flushed at once', async (t) => {
  const stream = new PassThrough();
  const started = Date.now();
  t.equal(await guardOutput([stream]).flush(), true);
  t.ok(Date.now() - started < 100);
});

t.test('a slow reader of one large write: waited for, though the whole takes longer than the bound', async (t) => {
  // 64 KiB every 30 ms: 3 MiB take over 1.5 s, the stall bound is 1 s. The stream counts the one
  // write as pending until its last byte; only the socket's queue shows the reader's progress.
  const child = await reader(t, `process.stdin.on('data', () => { process.stdin.pause(); setTimeout(() => process.stdin.resume(), 30); })`);
  const guard = guardOutput([child.stdin], 1000);
  child.stdin.write(Buffer.alloc(3 * 1024 * 1024, 'x'));
  const started = Date.now();
  t.equal(await guard.flush(), true, 'written');
  t.equal(child.stdin.writableLength, 0);
  t.ok(Date.now() - started > 1000, `it took ${Date.now() - started} ms, more than the bound`);
});

t.test('a reader that takes nothing: given up on after the bound', async (t) => {
  const child = await reader(t, 'setTimeout(() => {}, 20000)');
  const guard = guardOutput([child.stdin], 300);
  child.stdin.write(LARGE);
  const started = Date.now();
  t.equal(await guard.flush(), false, 'not written');
  const ms = Date.now() - started;
  t.ok(ms >= 300 && ms < 3000, `gave up after ${ms} ms`);
  t.ok(child.stdin.writableLength > 0, 'the rest still waiting');
});

t.test('a reader that goes away after its first chunk (EPIPE): done at once, the error caught', async (t) => {
  const child = await reader(t, `process.stdin.once('data', () => process.exit(0));`);
  const guard = guardOutput([child.stdin]);
  child.stdin.write(LARGE);
  const started = Date.now();
  t.equal(await guard.flush(), true, 'nothing more to wait for');
  t.ok(Date.now() - started < 3000, `in ${Date.now() - started} ms, not the 30 s bound`);
});
