// The soak in its short mode (bench/soak.js): the full pipeline at a fixed rate, no error, every
// request answered, memory flat after warm-up, the chart drawn. `node bench/soak.js --long` is the
// 30-minute run; see bench/README.md.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoRoot } from '../support/sidecar.js';

const SECONDS = Number(process.env.WARDEN_SOAK_SECONDS ?? 20);
const RATE = 100;

t.test(`soak: ${SECONDS} s at ${RATE} req/s through the full pipeline`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-soak-'));
  const out = join(dir, 'soak.json');
  const args = ['bench/soak.js', '--duration', String(SECONDS), '--rate', String(RATE), '--tokens', '20', '--no-pin', '--out', out];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, args, { cwd: repoRoot, timeout: (SECONDS + 90) * 1000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (child.exitCode ?? 1) : 0, stdout, stderr }),
    );
  });
  t.comment(stdout.trim());
  t.equal(code, 0, `the soak passes${code === 0 ? '' : `: ${stdout.slice(-600)} ${stderr.slice(-600)}`}`);
  const result = JSON.parse(readFileSync(out, 'utf8'));
  t.equal(result.pass, true);
  t.equal(result.totals.ok, result.totals.sent, 'every request sent was answered 200');
  t.ok(result.totals.sent >= SECONDS * RATE * 0.95, `sent ${result.totals.sent} at the fixed rate`);
  t.ok(result.windows.length >= SECONDS / 5, 'one record per 5 s window');
  t.ok(result.totals.introspections <= 20, `the cache held: ${result.totals.introspections} introspections for 20 tokens`);
  t.ok(result.totals.otlp_requests?.traces?.requests > 0, 'traces reached the OTLP sink');
  t.ok(result.memory.length >= SECONDS, 'memory sampled every second');
  const inWarden = result.latency_ms.in_warden_after_first_window;
  t.ok(inWarden.requests > 0, `Warden's own time read from ${inWarden.requests} access lines`);
  t.ok(
    inWarden.without_backend_p50_ms > 0 && inWarden.without_backend_p50_ms <= inWarden.p50_ms,
    `less the backend's time (upstream_ms): p50 ${inWarden.without_backend_p50_ms} of ${inWarden.p50_ms} ms`,
  );
  t.ok(existsSync(out.replace(/\.json$/, '.svg')), 'the chart (SVG)');
  if (existsSync('/usr/bin/chromium')) t.ok(existsSync(out.replace(/\.json$/, '.png')), 'the chart (PNG)');
});
