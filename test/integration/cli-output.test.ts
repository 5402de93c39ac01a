/**
 * `warden ca list` into a pipe: output far larger than the pipe holds reaches a reader that waits
 * before it reads (on a pipe Node writes asynchronously, and the exit dropped what was still
 * queued: ~64 KiB arrived), and a reader that closes early ends the command at once, quietly.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { openCaStore } from '../../src/ca/store.js';
import { repoRoot, startCaUnderTest, type Teardown } from '../support/ca-harness.js';

/** ~125 bytes a table row, ~190 a JSON entry: 380 KiB and 570 KiB, several times a pipe's 64 KiB. */
const CERTIFICATES = 3000;

/** A CA holding CERTIFICATES more certificates (written to its database directly): the arguments that reach it. */
async function caWithManyCertificates(t: Teardown): Promise<{ args: string[]; total: number }> {
  const { ca, dir, dbPath } = await startCaUnderTest(t);
  const store = openCaStore(dbPath);
  const now = Date.now();
  store.transaction(() => {
    for (let i = 0; i < CERTIFICATES; i++) {
      const serial = (0x4000_0000 + i).toString(16).padStart(32, '5');
      store.insertCertificate({
        serial,
        spiffe_id: `spiffe://example.test/ns/load/sa/workload-${i}`,
        kind: 'renew',
        not_before: now - 60_000,
        not_after: now + 86_400_000,
        pem: 'not needed for the list',
        issued_at: now - i,
        key_id: serial,
      });
    }
  });
  store.close();
  return { args: ['--url', ca.url, '--dir', dir], total: ca.list().length };
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** From the read end's close (closeEarly) to the exit. */
  closeToExitMs: number;
}

/**
 * `warden ARGS`, its stdout read `readAfterMs` after its first bytes (meanwhile the pipe and this
 * side's buffer fill up and the CLI's writes wait); `closeEarly`: the read end is closed at the
 * first chunk read (`| head -c 100`).
 */
function warden(args: string[], options: { readAfterMs?: number; closeEarly?: boolean } = {}): Promise<Run> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const stdout: Buffer[] = [];
  let closedAt = 0;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Paused, not unread: the data of a stream nobody listens to is thrown away when the child exits.
  child.stdout.on('data', (d: Buffer) => {
    stdout.push(d);
    if (options.closeEarly) {
      child.stdout.destroy();
      closedAt ||= Date.now();
    }
  });
  child.stdout.pause();
  // The pause starts with the first bytes: the CLI has written by then, and finds the pipe full.
  const waitForOutput = setInterval(() => {
    if (child.stdout.readableLength === 0) return;
    clearInterval(waitForOutput);
    setTimeout(() => child.stdout.resume(), options.readAfterMs ?? 0);
  }, 10);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(killer);
      clearInterval(waitForOutput);
      resolve({ code, signal, stdout: Buffer.concat(stdout).toString(), stderr, closeToExitMs: Date.now() - closedAt });
    });
  });
}

const { args, total } = await caWithManyCertificates(t);
// The four at once: most of their time is starting Node and loading the CLI.
const [table, json, ...closedEarly] = await Promise.all([
  warden(['ca', 'list', ...args], { readAfterMs: 1000 }),
  warden(['ca', 'list', '--json', ...args], { readAfterMs: 1000 }),
  warden(['ca', 'list', ...args], { readAfterMs: 300, closeEarly: true }),
  warden(['ca', 'list', '--json', ...args], { readAfterMs: 300, closeEarly: true }),
]);

t.test('a reader that waits 1 s before reading gets every line of the table and the whole JSON', async (t) => {
  t.equal(table.code, 0, table.stderr);
  t.equal(table.stderr, '');
  t.ok(table.stdout.length > 4 * 65_536, `the table is ${table.stdout.length} bytes, several pipe buffers`);
  const lines = table.stdout.split('\n');
  t.equal(lines.pop(), '', 'the table ends with its newline');
  t.equal(lines.length, total + 1, `the header and all ${total} rows arrived (got ${lines.length} lines)`);
  t.match(lines[0], /^SERIAL\s+SPIFFE ID/);
  t.match(lines.at(-1), /\s(valid|revoked|expired)\s+\S+$/, 'the last row is whole');

  t.equal(json.code, 0, json.stderr);
  t.equal(json.stderr, '');
  let parsed: { certificates?: unknown[] } = {};
  t.doesNotThrow(() => (parsed = JSON.parse(json.stdout) as typeof parsed), `the JSON (${json.stdout.length} bytes) parses`);
  t.equal(parsed.certificates?.length, total, 'and lists every certificate');
});

t.test('a reader that closes after the first chunk (| head -c 100): exit 0 at once, no stack trace', async (t) => {
  for (const [i, run] of closedEarly.entries()) {
    const name = i === 1 ? 'ca list --json' : 'ca list';
    t.equal(run.code, 0, `${name}: exit 0 (the reader chose to stop)`);
    t.equal(run.signal, null);
    t.equal(run.stderr, '', `${name}: nothing on stderr (no EPIPE stack trace)`);
    t.ok(run.stdout.length > 0 && run.stdout.length < 4 * 65_536, `${name}: the reader got its first chunk (${run.stdout.length} bytes)`);
    t.ok(run.closeToExitMs < 5000, `${name}: exited ${run.closeToExitMs} ms after the reader closed (a stalled reader: 30 s)`);
  }
});
