#!/usr/bin/env node
// Latency of two configurations of one build at one fixed rate: each a Warden of its own, pinned to
// the test core, loaded in turn (never at once) by h2load's open loop over HTTPS/1.1 (the same
// client as bench/full.js's latency step), rounds alternating in order (A B, B A, …). Per round
// p50 / p99 / p99.9 of the whole exchange; the medians over rounds, and the same from the third
// round on (the first rounds after a start differ: the live heap is still growing). Written for
// limits.heap_growth (docs/performance.md, "Memory and V8 flags"); any two bench/peers
// configurations that take the same variables work; --base-node-args / --candidate-node-args give
// one side Node/V8 flags (the same configuration twice then compares the flags).
// Usage: node bench/latency-configs.js [--config warden-full-tls.yaml] [--candidate-config warden-full-tls-heap-auto.yaml]
//                                      [--base-node-args ARGS] [--candidate-node-args ARGS]
//                                      [--rate 3000] [--rounds 6] [--seconds 10] [--connections 16] [--out FILE] [--no-pin]
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchOptions,
  benchWorkdir,
  createBench,
  createFill,
  forkOnLoadCores,
  h2loadAtRate,
  median,
  requireTools,
  startConfigPeers,
  writeResult,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/latency-configs.js [--config FILE] [--candidate-config FILE] [--base-node-args ARGS] [--candidate-node-args ARGS] [--rate R] [--rounds N] [--seconds S] [--connections N] [--out FILE] [--no-pin]',
  {
    config: { type: 'string', default: 'warden-full-tls.yaml' },
    'candidate-config': { type: 'string', default: 'warden-full-tls-heap-auto.yaml' },
    'base-node-args': { type: 'string', default: '' },
    'candidate-node-args': { type: 'string', default: '' },
    rate: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
  },
);
requireTools(root, ['h2load', 'openssl']);
const [RATE, ROUNDS, S, C] = [opts.rate, opts.rounds, opts.seconds, opts.connections].map(Number);
const WARMUP = 2;
const { work, cert, key } = benchWorkdir(root, `latency-configs-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
const [backendPort, sinkPort] = [18811, 18812];
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [String(backendPort)]);
const peers = await startConfigPeers(bench, root, readFileSync(join(root, 'bench/peers', opts.config), 'utf8'), sinkPort);
const bodyFile = join(work, 'body.json');
writeFileSync(bodyFile, JSON.stringify(peers.body));
const vars = { backendPort, sinkPort, cert, key, ratio: 1, ...peers.vars };

const sides = [
  { name: 'base', config: opts.config, port: 18813, rounds: [] },
  { name: 'candidate', config: opts['candidate-config'], port: 18815, rounds: [] },
];
for (const side of sides) {
  const config = fill(side.config, { ...vars, port: side.port, adminPort: side.port + 1 }, `${side.name}-${side.config}`);
  const nodeArgs = opts[`${side.name}-node-args`].split(' ').filter(Boolean);
  side.child = bench.start(process.execPath, [...nodeArgs, join(root, 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', openSync(join(work, `${side.name}.log`), 'w'), 'pipe'],
  });
}
for (const side of sides) await bench.waitPort(side.port);

let errors = 0;
for (let i = 0; i < ROUNDS; i++) {
  for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
    process.stderr.write(`\rround ${i + 1}/${ROUNDS}, ${side.name}     `);
    const r = h2loadAtRate(bench, {
      url: `https://127.0.0.1:${side.port}/orders`,
      rate: RATE,
      seconds: S,
      warmup: WARMUP,
      connections: C,
      headers: peers.headers,
      bodyFile,
      logFile: join(work, `${side.name}-${i}.tsv`),
    });
    errors += r.errors;
    side.rounds.push({ p50_ms: r.p50_ms, p99_ms: r.p99_ms, p999_ms: r.p999_ms, late: r.late, errors: r.errors });
  }
}
process.stderr.write('\n');
for (const side of sides) await bench.stop(side.child);
await peers.stop();
await bench.stop(backend);

const summary = (rounds) => ({
  p50_ms: median(rounds.map((r) => r.p50_ms)),
  p99_ms: median(rounds.map((r) => r.p99_ms)),
  p999_ms: median(rounds.map((r) => r.p999_ms)),
});
const result = {
  date: new Date().toISOString(),
  settings: {
    config: opts.config,
    candidate_config: opts['candidate-config'],
    base_node_args: opts['base-node-args'],
    candidate_node_args: opts['candidate-node-args'],
    rate: RATE,
    rounds: ROUNDS,
    seconds: S,
    warmup_s: WARMUP,
    connections: C,
    pinned: opts.pin,
  },
  errors,
  ...Object.fromEntries(
    sides.map((side) => [
      side.name,
      { config: side.config, all_rounds: summary(side.rounds), from_third_round: summary(side.rounds.slice(2)), rounds: side.rounds },
    ]),
  ),
};
for (const side of sides) {
  const r = result[side.name];
  console.log(
    `${side.config}${opts[`${side.name}-node-args`] ? ` ${opts[`${side.name}-node-args`]}` : ''} at ${RATE} req/s: p99 median ${r.all_rounds.p99_ms} ms (rounds ${side.rounds.map((x) => x.p99_ms).join(', ')}), ` +
      `from the third round ${r.from_third_round.p99_ms} ms; p50 ${r.all_rounds.p50_ms} ms; p99.9 ${r.all_rounds.p999_ms} ms`,
  );
}
console.log(`errors ${errors}`);
console.log(`written: ${writeResult(root, 'latency-configs', result, opts.out)}`);
