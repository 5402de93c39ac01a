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
  t.equal(
    readFileBounded(fifo, 1024 * 1024, { allowFifo: true }).toString('utf8'),
    text,
    'the whole pipe, across chunks (allowed: -c at startup)',
  );
  t.throws(
    () => readFileBounded('/dev/zero', 100_000),
    { code: 'EFBIG', message: 'larger than 100000 bytes' },
    'a device stops at the bound',
  );
});

t.test('a FIFO is refused unless allowed, at once, though no writer ever opens it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-fifo-'));
  const fifo = join(dir, 'secret');
  execFileSync('mkfifo', [fifo]);
  // In a child with a timeout: opening it blocking would hold this process for good.
  const script = `import { readFileBounded } from ${JSON.stringify(new URL('../../../src/config/bounded-file.ts', import.meta.url).href)};
try { readFileBounded(${JSON.stringify(fifo)}, 1024); console.log('read'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    timeout: 10_000,
    encoding: 'utf8',
  });
  t.match(out, /^ENOTFILE: a FIFO, not a file: reading it could wait for a writer without end; name a regular file/);
});

t.test('before anything is served a FIFO is read: a ${file:…} at startup, not at reload', async (t) => {
  const { parseYamlSource } = await import('../../../src/config/yaml-source.js');
  const dir = mkdtempSync(join(tmpdir(), 'warden-fifo-'));
  const fifo = join(dir, 'secret');
  execFileSync('mkfifo', [fifo]);
  const writer = spawn('sh', ['-c', 'printf s3cret > "$1"', 'sh', fifo], { stdio: 'ignore' });
  t.teardown(() => writer.kill());
  const text = `service:\n  name: \${file:${fifo}}\n`;
  t.match(parseYamlSource(join(dir, 'sidecar.yaml'), text).data, { service: { name: 's3cret' } }, 'at startup: read (`${file:/dev/fd/N}`)');
  t.throws(() => parseYamlSource(join(dir, 'sidecar.yaml'), text, process.env, true), /a FIFO, not a file/, 'at reload: refused');
});
