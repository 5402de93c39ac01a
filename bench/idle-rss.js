#!/usr/bin/env node
// Idle RSS of `warden proxy` with an empty configuration (TLS, access log, metrics; no stage, no
// telemetry export): VmRSS shortly after start and again once V8's memory reducer has run on the
// idle process. The figure docs/performance.md cites for the idle footprint.
// --dir runs another build (a folder with bin/ and dist/, e.g. a bench/builds.js worktree).
// Usage: node bench/idle-rss.js [--dir DIR] [--early 3] [--settled 25] [--runs 3] [--out FILE]
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { benchOptions, benchWorkdir, createBench, createFill, median, writeResult } from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions('node bench/idle-rss.js [--dir DIR] [--early S] [--settled S] [--runs N] [--out FILE] [--no-pin]', {
  dir: { type: 'string', default: root },
  early: { type: 'string', default: '3' },
  settled: { type: 'string', default: '25' },
  runs: { type: 'string', default: '3' },
});
const { work, cert, key } = benchWorkdir(root, `idle-rss-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
const vmRssMiB = (pid) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024);

const early = [];
const settled = [];
for (let i = 0; i < Number(opts.runs); i++) {
  // No backend: an idle sidecar never calls it.
  const config = fill('warden-empty.yaml', { port: 18620, adminPort: 19620, backendPort: 18621, cert, key });
  const child = bench.start(process.execPath, [join(resolve(opts.dir), 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await bench.waitPort(18620);
  await sleep(Number(opts.early) * 1000);
  early.push(vmRssMiB(child.pid));
  await sleep((Number(opts.settled) - Number(opts.early)) * 1000);
  settled.push(vmRssMiB(child.pid));
  await bench.stop(child);
}
const result = {
  date: new Date().toISOString(),
  settings: { build: opts.dir, early_s: Number(opts.early), settled_s: Number(opts.settled), runs: Number(opts.runs) },
  rss_mib: { early: median(early), settled: median(settled), early_runs: early, settled_runs: settled },
};
console.log(
  `idle RSS: ${result.rss_mib.early} MiB after ${opts.early} s (${early.join(', ')}), ${result.rss_mib.settled} MiB after ${opts.settled} s (${settled.join(', ')})`,
);
console.log(`written: ${writeResult(root, 'idle-rss', result, opts.out)}`);
