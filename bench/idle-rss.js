#!/usr/bin/env node
// Idle RSS of `warden proxy`, by default with an empty configuration (TLS, access log, metrics; no
// stage, no telemetry export): VmRSS shortly after start and again once V8's memory reducer has run
// on the idle process, the peak while it started (VmHWM), and how much of the early RSS is mapped
// files (RssFile: the binary and libraries, which the kernel can drop), and the start-up time: from
// the spawn to the inbound port accepting connections (bench.waitPort polling every 10 ms). The
// figures docs/performance.md cites for the idle footprint and docs/deploy.md for a container's
// memory request.
// --config runs another of bench/peers' configurations (one that names the IdP gets the bench's
// IdP; the OTLP sink runs for those that export); --dir runs another build (a folder with bin/ and
// dist/, e.g. a bench/builds.js worktree).
// Usage: node bench/idle-rss.js [--config warden-empty.yaml] [--dir DIR] [--early 3] [--settled 25] [--runs 3] [--out FILE]
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  benchOptions,
  benchWorkdir,
  createBench,
  createFill,
  median,
  peakRssMiB,
  startConfigPeers,
  statusMiB,
  writeResult,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/idle-rss.js [--config FILE] [--dir DIR] [--early S] [--settled S] [--runs N] [--out FILE] [--no-pin]',
  {
    config: { type: 'string', default: 'warden-empty.yaml' },
    dir: { type: 'string', default: root },
    early: { type: 'string', default: '3' },
    settled: { type: 'string', default: '25' },
    runs: { type: 'string', default: '3' },
  },
);
const { work, cert, key } = benchWorkdir(root, `idle-rss-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
const template = readFileSync(join(root, 'bench/peers', opts.config), 'utf8');
const sinkPort = 18622;
const caller = await startConfigPeers(bench, root, template, sinkPort);

const early = [];
const settled = [];
const startPeak = [];
// The part of RSS that is mapped files (the node binary, libraries, native addons): pages the
// kernel can drop and read back, unlike the heap.
const fileBacked = [];
const listeningMs = [];
for (let i = 0; i < Number(opts.runs); i++) {
  // No backend: an idle sidecar never calls it.
  const vars = { port: 18620, adminPort: 19620, backendPort: 18621, sinkPort, ratio: 1, cert, key, ...caller.vars };
  const config = fill(opts.config, vars);
  const spawnedAt = performance.now();
  const child = bench.start(process.execPath, [join(resolve(opts.dir), 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await bench.waitPort(18620, 10_000, 10);
  listeningMs.push(Math.round(performance.now() - spawnedAt));
  await sleep(Number(opts.early) * 1000);
  early.push(statusMiB(child.pid, 'VmRSS'));
  startPeak.push(peakRssMiB(child.pid));
  fileBacked.push(statusMiB(child.pid, 'RssFile'));
  await sleep((Number(opts.settled) - Number(opts.early)) * 1000);
  settled.push(statusMiB(child.pid, 'VmRSS'));
  await bench.stop(child);
}
await caller.stop();
const result = {
  date: new Date().toISOString(),
  settings: { config: opts.config, build: opts.dir, early_s: Number(opts.early), settled_s: Number(opts.settled), runs: Number(opts.runs) },
  rss_mib: {
    early: median(early),
    settled: median(settled),
    start_peak: median(startPeak),
    file_backed_early: median(fileBacked),
    early_runs: early,
    settled_runs: settled,
    start_peak_runs: startPeak,
    file_backed_early_runs: fileBacked,
  },
  listening_ms: { median: median(listeningMs), runs: listeningMs },
};
console.log(
  `idle RSS (${opts.config}): ${result.rss_mib.early} MiB after ${opts.early} s (${early.join(', ')}), ${result.rss_mib.settled} MiB after ${opts.settled} s (${settled.join(', ')}); ` +
    `peak while starting ${result.rss_mib.start_peak} MiB (${startPeak.join(', ')}); of the early RSS, mapped files ${result.rss_mib.file_backed_early} MiB; ` +
    `listening ${result.listening_ms.median} ms after the spawn (${listeningMs.join(', ')})`,
);
console.log(`written: ${writeResult(root, 'idle-rss', result, opts.out)}`);
