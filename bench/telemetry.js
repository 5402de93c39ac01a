#!/usr/bin/env node
// What OpenTelemetry export costs (see bench/README.md): the access pipeline without telemetry
// against the same with traces + events + metrics exported to a live OTLP sink, at 100 % and 10 %
// sampling, interleaved A-B / B-A on HTTPS/1.1 (wrk) and h2 (h2load), and loaded at once on the
// same core (HTTPS/1.1; drift-free, see concurrentPairs); then the same with the sink gone (the
// collector down), with the sidecar's RSS before and after.
import { openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ACCESS_ORDER,
  benchWorkdir,
  createBench,
  createFill,
  createPostLoad,
  interleavedPairs,
  concurrentPairs,
  median,
  peakRssMiB,
  requireTools,
  profileArgs,
  forkOnLoadCores,
  writeResult,
  benchOptions,
  round3,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions('node bench/telemetry.js [--pairs N] [--seconds S] [--connections N] [--streams N] [--out FILE] [--no-pin]', {
  pairs: { type: 'string', default: '6' },
  seconds: { type: 'string', default: '3' },
  connections: { type: 'string', default: '32' },
  streams: { type: 'string', default: '10' },
});
requireTools(root, ['wrk', 'h2load', 'openssl']);
const [PAIRS, S, C, M] = [opts.pairs, opts.seconds, opts.connections, opts.streams].map(Number);
const { work, cert, key } = benchWorkdir(root, `telemetry-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const { start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);
const bodyFile = join(work, 'body.json');
writeFileSync(bodyFile, JSON.stringify(ACCESS_ORDER));

const backendPort = 18093;
const sinkPort = 18318;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [backendPort]);
const sink = await forkOnLoadCores(bench, root, 'bench/peers/otlp-sink.js', [sinkPort]);

const vars = { backendPort, cert, key, sinkPort };
const peers = [
  { name: 'warden-access', port: 18482, file: 'warden-access.yaml', adminPort: 19982 },
  { name: 'warden-otel-100', port: 18483, file: 'warden-otel.yaml', adminPort: 19983, ratio: 1 },
  { name: 'warden-otel-10', port: 18484, file: 'warden-otel.yaml', adminPort: 19984, ratio: 0.1 },
];
for (const p of peers) {
  const log = openSync(join(work, `${p.name}.log`), 'w');
  const config = fill(p.file, { ...vars, port: p.port, adminPort: p.adminPort, ratio: p.ratio ?? 1 });
  p.child = start(process.execPath, [...profileArgs(p.name), join(root, 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', log, 'pipe'],
  });
  // fill() reuses the template's file name: the process has read it once it listens.
  await waitPort(p.port);
}
const url = (p) => `https://127.0.0.1:${p.port}/orders`;
const load = createPostLoad({ bench, root, connections: C, seconds: S, streams: M, headers: [], bodyFile });
for (const p of peers) {
  const w = load.wrk(url(p));
  if (w.errors > 0) throw new Error(`${p.name} answered errors during warm-up (${w.errors})`);
}
const seenBefore = await new Promise((r) => {
  sink.once('message', (m) => r(m.seen));
  sink.send('seen?');
});
if (!seenBefore.traces?.requests) throw new Error(`the OTLP sink received no traces: ${JSON.stringify(seenBefore)}`);

const at100 = interleavedPairs({ base: peers[0], candidate: peers[1], pairs: PAIRS, seconds: S, load, url, warmup: true });
const at10 = interleavedPairs({ base: peers[0], candidate: peers[2], pairs: PAIRS, seconds: S, load, url, warmup: true });
const ROUNDS = Math.max(4, PAIRS);
const together100 = await concurrentPairs({ base: peers[0], candidate: peers[1], rounds: ROUNDS, seconds: S, load, url });
const together10 = await concurrentPairs({ base: peers[0], candidate: peers[2], rounds: ROUNDS, seconds: S, load, url });
const rssBeforeDown = peakRssMiB(peers[1].child.pid);
await stop(sink);
const down = interleavedPairs({
  base: peers[0],
  candidate: peers[1],
  pairs: Math.max(2, Math.floor(PAIRS / 2)),
  seconds: S,
  load,
  url,
  warmup: true,
});
const togetherDown = await concurrentPairs({ base: peers[0], candidate: peers[1], rounds: ROUNDS, seconds: S, load, url });
const rss = Object.fromEntries(peers.map((p) => [p.name, peakRssMiB(p.child.pid)]));
for (const p of peers) await stop(p.child);
await stop(backend);

const summary = (r) => ({
  h1: round3(median(r.h1)),
  h2: round3(median(r.h2)),
  h1_cpu: round3(median(r.h1cpu)),
  h1_pairs: r.h1,
  h2_pairs: r.h2,
  errors: r.errors,
});
const together = (r) => ({
  h1: round3(median(r.h1)),
  h1_cpu: round3(median(r.h1cpu)),
  h1_rounds: r.h1,
  errors: r.errors,
  fair_share: r.fairShare,
});
const result = {
  date: new Date().toISOString(),
  settings: { pairs: PAIRS, rounds: ROUNDS, seconds: S, connections: C, h2_streams: M },
  sampled_100: summary(at100),
  sampled_10: summary(at10),
  collector_down_100: summary(down),
  // Both peers loaded at once on the same core (concurrentPairs): immune to the host's drift.
  concurrent: { sampled_100: together(together100), sampled_10: together(together10), collector_down_100: together(togetherDown) },
  sink_received_before_measuring: seenBefore,
  peak_rss_mib: { ...rss, 'warden-otel-100 before the collector went down': rssBeforeDown },
  raw: { at100: at100.raw, at10: at10.raw, down: down.raw, at_once: { at100: together100, at10: together10, down: togetherDown } },
};
const c = result.concurrent;
result.targets = [
  {
    target: 'telemetry on (100 % sampled, live receiver) ≥ 0.9 × off (h1; peers loaded at once, and interleaved)',
    value: `${c.sampled_100.h1} at once; ${result.sampled_100.h1} interleaved`,
    pass: c.sampled_100.h1 >= 0.9,
  },
  {
    target: 'collector down costs nothing extra (≥ the live-receiver ratio − 0.05) and RSS stays bounded (+≤ 20 MiB)',
    value: `${c.collector_down_100.h1} vs ${c.sampled_100.h1} at once (${result.collector_down_100.h1} vs ${result.sampled_100.h1} interleaved); RSS ${rssBeforeDown} → ${rss['warden-otel-100']} MiB`,
    pass: c.collector_down_100.h1 >= c.sampled_100.h1 - 0.05 && rss['warden-otel-100'] - rssBeforeDown <= 20,
  },
];
for (const [label, r] of [
  ['100 % sampled', result.sampled_100],
  ['10 % sampled', result.sampled_10],
  ['collector down', result.collector_down_100],
]) {
  console.log(
    `telemetry on (${label}) / off: h1 ${r.h1} (pairs ${r.h1_pairs.join(', ')})  h2 ${r.h2}  h1 CPU/req ${r.h1_cpu}; errors ${r.errors}`,
  );
}
for (const [label, r] of [
  ['100 % sampled', c.sampled_100],
  ['10 % sampled', c.sampled_10],
  ['collector down', c.collector_down_100],
]) {
  console.log(
    `telemetry on (${label}) / off, loaded at once: h1 ${r.h1} (rounds ${r.h1_rounds.join(', ')})  h1 CPU/req ${r.h1_cpu}; errors ${r.errors}`,
  );
}
console.log(`RSS MiB ${JSON.stringify(result.peak_rss_mib)}`);
for (const t of result.targets) console.log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}`);
const outFile = writeResult(root, 'telemetry', result, opts.out);
console.log(`written: ${outFile}`);
process.exit(result.targets.every((t) => t.pass) ? 0 : 1);
