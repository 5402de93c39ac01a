/**
 * Files the operator names are read up to a bound, in chunks: a device stops at the bound, and a
 * pipe (`-c <(envsubst < sidecar.yaml)`, which has no size to stat) is read to its end.
 */
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileBounded } from '../../../src/config/bounded-file.js';

t.test('a pipe is read to its end, a device stops at the bound', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-fifo-'));
  const fifo = join(dir, 'sidecar.yaml');
  const source = join(dir, 'source.yaml');
  execFileSync('mkfifo', [fifo]);
  const text = `service:\n  name: ${'x'.repeat(200_000)}\n`;
  writeFileSync(source, text);
  // The writer needs nothing from this process, whose thread the synchronous read holds.
  const writer = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', source, fifo], { stdio: 'ignore' });
  t.teardown(() => writer.kill());
  t.equal(readFileBounded(fifo, 1024 * 1024).toString('utf8'), text, 'the whole pipe, across chunks');
  t.throws(
    () => readFileBounded('/dev/zero', 100_000),
    { code: 'EFBIG', message: 'larger than 100000 bytes' },
    'a device stops at the bound',
  );
});
