#!/usr/bin/env node
// Runs Warden and its peers side by side, in one run, with the same certificate, backend, payload
// and load generators, and prints throughput / latency / memory with ratios. See bench/README.md.
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  benchWorkdir,
  createBench,
  createFill,
  cpuTicks,
  has,
  median,
  peakRssMiB,
  requireTools,
  cpuUsPerRequest,
  version,
  profileArgs,
  wrkGet,
  h2loadGet,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  allowNegative: true, // --no-pin
  options: {
    duration: { type: 'string', default: '10' },
    latency: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    streams: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string' },
    out: { type: 'string' },
    note: { type: 'string' },
    pin: { type: 'boolean', default: true },
    'ab-pairs': { type: 'string', default: '8' },
    'ab-seconds': { type: 'string', default: '3' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log(`Usage: node bench/run.js [--duration S] [--latency S] [--connections N] [--streams N] [--rounds N] [--only a,b] [--out FILE] [--note TEXT] [--no-pin] [--ab-pairs N] [--ab-seconds S]
Peers: direct, bare-node, warden-empty, warden-access, nginx, haproxy (those whose binaries exist).`);
  process.exit(0);
}
const D = Number(opts.duration);
const LAT = Number(opts.latency);
const C = Number(opts.connections);
const M = Number(opts.streams);
const ROUNDS = Number(opts.rounds);

requireTools(root, ['wrk', 'h2load', 'openssl']);
const { work, cert, key } = benchWorkdir(root, String(Date.now()));
const pem = join(work, 'combined.pem');
writeFileSync(pem, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'));

const bench = createBench({ pin: opts.pin });
const { PIN, TEST_CPU, LOAD_CPUS, moveTo, start, stop, waitPort } = bench;

const fill = createFill(join(root, 'bench/peers'), work);

function wrk(url, connections, seconds) {
  const { rps, p50_ms, p99_ms, errors } = wrkGet(bench, root, url, { connections, seconds });
  return { rps, p50_ms, p99_ms, errors };
}

function h2load(url, seconds) {
  const { rps, errors, output } = h2loadGet(bench, url, { connections: C, streams: M, seconds });
  const [, , , mean] = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(output) ?? [];
  const toMs = (t) => (t?.endsWith('us') ? parseFloat(t) / 1000 : t?.endsWith('ms') ? parseFloat(t) : parseFloat(t) * 1000);
  return { rps, mean_ms: toMs(mean), errors };
}

const backendPort = 18080;
const peers = [
  { name: 'direct', h2: false, url: `http://127.0.0.1:${backendPort}/`, launch: null },
  {
    name: 'bare-node',
    h2: true,
    port: 18443,
    h2port: 18444,
    launch: (p) =>
      start(process.execPath, [
        join(root, 'bench/peers/bare-node-proxy.js'),
        p.port,
        p.h2port,
        `http://127.0.0.1:${backendPort}`,
        cert,
        key,
      ]),
  },
  ...['warden-empty', 'warden-access'].map((name, i) => ({
    name,
    h2: true,
    port: 18445 + i,
    launch: (p) =>
      start(process.execPath, [
        ...profileArgs(name),
        join(root, 'bin/warden.js'),
        'proxy',
        '-c',
        fill(`${name}.yaml`, { port: p.port, adminPort: 19901 + i, backendPort, cert, key }),
      ]),
  })),
  has('nginx') && {
    name: 'nginx',
    h2: true,
    port: 18450,
    launch: (p) => start('nginx', ['-c', fill('nginx.conf', { port: p.port, backendPort, cert, key, dir: work }), '-p', work]),
  },
  has('haproxy') && {
    name: 'haproxy',
    h2: true,
    port: 18451,
    launch: (p) => start('haproxy', ['-f', fill('haproxy.cfg', { port: p.port, backendPort, pem })]),
  },
]
  .filter(Boolean)
  .filter((p) => !opts.only || opts.only.split(',').includes(p.name));

const backend = fork(join(root, 'bench/peers/backend.js'), [String(backendPort)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
bench.children.add(backend);
moveTo(backend.pid, LOAD_CPUS);
// Wait for this backend's own 'ready': a stale process on the port must not be measured instead.
await new Promise((resolve, reject) => {
  let stderr = '';
  backend.stderr.on('data', (d) => (stderr += d));
  backend.once('message', resolve);
  backend.once('exit', (code) =>
    reject(new Error(`bench backend exited (${code}): ${stderr.split('\n').find((l) => l.includes('Error')) ?? stderr}`)),
  );
});

const runs = new Map(peers.map((p) => [p.name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const peer of peers) {
    const child = peer.launch?.(peer);
    // Measured directly, the backend is the process under test and gets that core.
    if (!child) moveTo(backend.pid, TEST_CPU);
    if (peer.port) await waitPort(peer.port);
    if (peer.h2port) await waitPort(peer.h2port);
    const h1url = peer.url ?? `https://127.0.0.1:${peer.port}/`;
    const h2url = `https://127.0.0.1:${peer.h2port ?? peer.port}/`;
    process.stderr.write(`round ${round}/${ROUNDS} ${peer.name}: warm-up`);
    wrk(h1url, C, 2);
    process.stderr.write(', h1');
    const measured = child?.pid ?? backend.pid;
    const cpuBefore = cpuTicks(measured);
    const h1 = wrk(h1url, C, D);
    // CPU per request is steadier than rps on a shared machine: it does not fall when a neighbour
    // takes the core, only when the proxy does more work.
    h1.cpu_us_per_req = Math.round(cpuUsPerRequest(measured, cpuBefore, h1.rps, D) * 10) / 10;
    process.stderr.write(', latency');
    const lat = wrk(h1url, 1, LAT);
    let h2 = null;
    if (peer.h2) {
      process.stderr.write(', h2');
      h2 = h2load(h2url, D);
    }
    const rss = child ? peakRssMiB(child.pid) : peakRssMiB(backend.pid);
    process.stderr.write(` — ${h1.rps} rps\n`);
    runs.get(peer.name).push({ h1, latency: lat, h2, rss_mib: rss });
    if (child) await stop(child);
    else moveTo(backend.pid, LOAD_CPUS);
  }
}

// Interleaved A/B: the neighbours on this host change its speed from one minute to the next, so
// each Warden peer is also measured alternately with the bare proxy — both running, short windows,
// A-B then B-A — and the median of the window-pair ratios is the figure the targets are checked on.
const AB_PAIRS = Number(opts['ab-pairs']);
const AB_S = Number(opts['ab-seconds']);
const interleaved = {};
const bare = peers.find((p) => p.name === 'bare-node');
const h1Url = (p) => `https://127.0.0.1:${p.port}/`;
const h2Url = (p) => `https://127.0.0.1:${p.h2port ?? p.port}/`;
for (const peer of bare && AB_PAIRS > 0 ? peers.filter((p) => p.name.startsWith('warden-')) : []) {
  const pair = [bare, peer];
  const kids = pair.map((p) => p.launch(p));
  for (const p of pair) {
    await waitPort(p.port);
    if (p.h2port) await waitPort(p.h2port);
    wrk(h1Url(p), C, 2);
  }
  const h1 = [];
  const h2 = [];
  for (let i = 0; i < AB_PAIRS; i++) {
    process.stderr.write(`\rinterleaved ${peer.name} vs bare-node: pair ${i + 1}/${AB_PAIRS}`);
    const order = i % 2 === 0 ? pair : [peer, bare];
    const r1 = {};
    const r2 = {};
    for (const p of order) r1[p.name] = wrk(h1Url(p), C, AB_S).rps;
    for (const p of order) r2[p.name] = h2load(h2Url(p), AB_S).rps;
    h1.push(Math.round((r1[peer.name] / r1['bare-node']) * 1000) / 1000);
    h2.push(Math.round((r2[peer.name] / r2['bare-node']) * 1000) / 1000);
  }
  process.stderr.write('\n');
  interleaved[peer.name] = { h1_rps_vs_bare: median(h1), h2_rps_vs_bare: median(h2), h1_pairs: h1, h2_pairs: h2 };
  for (const k of kids) await stop(k);
}
await stop(backend);
const summary = peers.map((p) => {
  const rs = runs.get(p.name);
  return {
    peer: p.name,
    h1_rps: median(rs.map((r) => r.h1.rps)),
    h1_cpu_us_per_req: median(rs.map((r) => r.h1.cpu_us_per_req)),
    h1_p50_ms: median(rs.map((r) => r.h1.p50_ms)),
    h1_p99_ms: median(rs.map((r) => r.h1.p99_ms)),
    single_conn_p50_ms: median(rs.map((r) => r.latency.p50_ms)),
    single_conn_p99_ms: median(rs.map((r) => r.latency.p99_ms)),
    h2_rps: p.h2 ? median(rs.map((r) => r.h2.rps)) : null,
    h2_mean_ms: p.h2 ? median(rs.map((r) => r.h2.mean_ms)) : null,
    errors: rs.reduce((n, r) => n + r.h1.errors + r.latency.errors + (r.h2?.errors ?? 0), 0),
    peak_rss_mib: median(rs.map((r) => r.rss_mib)),
  };
});
const by = Object.fromEntries(summary.map((s) => [s.peer, s]));
const direct = by.direct;
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
for (const s of summary) {
  s.added_p50_ms = direct && s.peer !== 'direct' ? Math.round((s.single_conn_p50_ms - direct.single_conn_p50_ms) * 1000) / 1000 : null;
  s.h1_vs_bare = ratio(s.h1_rps, by['bare-node']?.h1_rps);
  s.h1_vs_nginx = ratio(s.h1_rps, by.nginx?.h1_rps);
  s.h2_vs_bare = ratio(s.h2_rps, by['bare-node']?.h2_rps);
  s.h2_vs_nginx = ratio(s.h2_rps, by.nginx?.h2_rps);
}

const cell = (v, w) => String(v ?? '—').padStart(w);
const cols = [
  ['peer', 14, 'peer'],
  ['h1 rps', 8, 'h1_rps'],
  ['µs CPU/req', 10, 'h1_cpu_us_per_req'],
  ['h1 p50', 7, 'h1_p50_ms'],
  ['h1 p99', 7, 'h1_p99_ms'],
  ['+p50 1c', 8, 'added_p50_ms'],
  ['h2 rps', 8, 'h2_rps'],
  ['RSS MiB', 8, 'peak_rss_mib'],
  ['h1/bare', 8, 'h1_vs_bare'],
  ['h1/nginx', 9, 'h1_vs_nginx'],
  ['h2/bare', 8, 'h2_vs_bare'],
  ['h2/nginx', 9, 'h2_vs_nginx'],
  ['errors', 7, 'errors'],
];
console.log('\n' + cols.map(([h, w]) => h.padStart(w)).join(' '));
for (const s of summary) console.log(cols.map(([, w, k]) => cell(s[k], w)).join(' '));
console.log(
  `\nh1: wrk -t1 -c${C} -d${D}s (keep-alive); +p50 1c: single-connection p50 minus direct's (${LAT}s); h2: h2load -c${C} -m${M} -D${D}; latencies in ms; median of ${ROUNDS} round(s).`,
);

// This machine's speed drifts between runs (shared cores), so ratios are also taken round by round —
// each peer against the bare Node proxy measured in the same round — and their median quoted: a
// drift that slows one round slows both sides of its ratio.
const perRound = (name, pick) => {
  const a = runs.get(name);
  const b = runs.get('bare-node');
  if (!a || !b) return null;
  return median(a.map((r, i) => (pick(r) && pick(b[i]) ? pick(r) / pick(b[i]) : null)));
};
const addedPerRound = (name) => {
  const a = runs.get(name);
  const b = runs.get('bare-node');
  const d = runs.get('direct');
  if (!a || !b || !d) return null;
  return median(a.map((r, i) => (r.latency.p50_ms - d[i].latency.p50_ms) / (b[i].latency.p50_ms - d[i].latency.p50_ms)));
};
const round2 = (x) => (x === null ? null : Math.round(x * 100) / 100);
const paired = {};
for (const name of runs.keys()) {
  if (name === 'direct' || name === 'bare-node' || !runs.get('bare-node')) continue;
  paired[name] = {
    h1_rps_vs_bare: round2(perRound(name, (r) => r.h1.rps)),
    h1_cpu_per_req_vs_bare: round2(perRound(name, (r) => r.h1.cpu_us_per_req)),
    h2_rps_vs_bare: round2(perRound(name, (r) => r.h2?.rps)),
    added_p50_vs_bare: round2(addedPerRound(name)),
  };
}
console.log('\nPaired ratios (median over rounds of peer ÷ bare-node in the same round):');
for (const [name, r] of Object.entries(paired)) {
  console.log(
    `  ${name.padEnd(14)} h1 rps ${r.h1_rps_vs_bare ?? '—'}   h1 CPU/req ${r.h1_cpu_per_req_vs_bare ?? '—'}   h2 rps ${r.h2_rps_vs_bare ?? '—'}   added p50 ${r.added_p50_vs_bare ?? '—'}`,
  );
}

if (Object.keys(interleaved).length) {
  console.log(`\nInterleaved with bare-node (median of ${AB_PAIRS} window pairs, ${AB_S} s each, A-B / B-A):`);
  for (const [name, r] of Object.entries(interleaved)) {
    console.log(`  ${name.padEnd(14)} h1 rps ${round2(r.h1_rps_vs_bare)}   h2 rps ${round2(r.h2_rps_vs_bare)}`);
  }
}

const targets = [];
const wa = paired['warden-access'];
if (wa) {
  const ab = interleaved['warden-access'];
  const h1 = ab ? round2(ab.h1_rps_vs_bare) : wa.h1_rps_vs_bare;
  targets.push({ target: `warden-access h1 rps ≥ 0.9 × bare-node (${ab ? 'interleaved' : 'paired'})`, value: h1, pass: h1 >= 0.9 });
  if (wa.added_p50_vs_bare !== null) {
    targets.push({
      target: 'warden-access added p50 ≤ 1.2 × bare-node added p50 (paired)',
      value: wa.added_p50_vs_bare,
      pass: wa.added_p50_vs_bare <= 1.2,
    });
  }
  for (const t of targets) console.log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}`);
}

const machine = {
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memory_gib: Math.round(os.totalmem() / 2 ** 30),
  kernel: os.release(),
  node: process.version,
  nginx: has('nginx') ? version('nginx', ['-v']) : null,
  haproxy: has('haproxy') ? version('haproxy', ['-v']) : null,
  wrk: version('wrk', ['-v']),
  h2load: version('h2load', ['--version']),
  openssl: version('openssl', ['version']),
};
const result = {
  date: new Date().toISOString(),
  note: opts.note ?? null,
  machine,
  settings: {
    duration_s: D,
    latency_s: LAT,
    connections: C,
    h2_streams_per_connection: M,
    rounds: ROUNDS,
    payload: '29-byte JSON GET',
    certificate: 'ECDSA P-256 self-signed',
    cpu_pinning: PIN ? { process_under_test: TEST_CPU, backend_and_load: LOAD_CPUS } : null,
  },
  summary,
  paired_ratios_vs_bare_node: paired,
  interleaved_vs_bare_node: interleaved,
  targets,
  rounds: Object.fromEntries(runs),
};
const outFile = opts.out ?? join(root, 'bench/results', `${result.date.slice(0, 19).replace(/[:T]/g, '-')}.json`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
console.log(`\nwritten: ${outFile}`);
process.exit(targets.every((t) => t.pass) ? 0 : 1);
