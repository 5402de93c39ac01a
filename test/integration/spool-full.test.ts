/**
 * A full spool disk (limits.spool_dir on a 256 KiB tmpfs): an upload that spills past it is refused
 * with 503 ERR_OVERLOADED and Retry-After (rule limits.spool_dir, the directory in the warn-level
 * event), not 500 and an "unexpected error" with a stack; its space is given back for the next one.
 * Needs root to mount the tmpfs (CI runs as root); skipped with the reason otherwise.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestBackend } from '../support/backend.js';
import { startTestClamd } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const spoolDir = mkdtempSync(join(tmpdir(), 'warden-small-spool-'));
let mounted = '';
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', spoolDir], { stdio: 'pipe' });
} catch (err) {
  mounted = `cannot mount a tmpfs for the spool (needs root): ${(err as Error).message.split('\n')[0]}`;
}

t.test('a full spool disk: 503 ERR_OVERLOADED with Retry-After, a warning naming the directory', { skip: mounted || false }, async (t) => {
  // Lazy: the sidecar's spool files are closed when its requests end, but nothing may keep the test's exit waiting.
  t.teardown(() => execFileSync('umount', ['-l', spoolDir]));
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const s = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '5s' } },
    limits: { max_body_bytes: '4MiB', body_memory_bytes: '64KiB', spool_dir: spoolDir },
    routes: [{ id: 'upload', path: '/upload', methods: ['POST'], malware_scan: true }],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const upload = (bytes: number) =>
    fetchText(`${s.url}/upload`, agent, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: randomBytes(bytes),
    });

  const before = backend.requests.length;
  const full = await upload(1024 * 1024);
  t.equal(full.status, 503, '1 MiB spilled onto a 256 KiB disk: 503');
  t.equal(full.json().code, 'ERR_OVERLOADED');
  t.equal(full.headers['retry-after'], '1');
  t.equal(backend.requests.length, before, 'not forwarded');
  const shed = s.events.filter((e) => e.name === 'warden.traffic.shed');
  t.equal(shed.length, 1, 'one event for the refusal');
  t.equal(shed[0]?.['warden.rule'], 'limits.spool_dir');
  t.equal(shed[0]?.['error.type'], 'ENOSPC');
  t.match(shed[0]?.['warden.detail'], `spool_dir ${spoolDir}`, 'naming the directory');
  const warning = s.logs.filter((l) => l.event === 'warden.traffic.shed');
  t.equal(warning.length, 1, 'logged once');
  t.equal(warning[0]?.level, 'warn', 'at warn');
  t.match(warning[0]?.['warden.detail'], spoolDir, 'with the directory');
  t.notOk(
    warning.some((l) => JSON.stringify(l).includes('    at ')),
    'without a stack',
  );
  t.notOk(
    s.logs.some((l) => l.msg === 'unexpected error on the request path' || l.level === 'error'),
    'no error-level log',
  );

  // The refused body's file is closed, so its space is free again.
  const fits = await upload(128 * 1024);
  t.equal(fits.status, 200, 'an upload that fits the disk passes afterwards');
});
