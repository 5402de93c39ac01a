#!/usr/bin/env node
// The full pipeline against the bare Node proxy and nginx, side by side in one run (issue 8's
// performance targets; see bench/README.md and docs/performance.md):
// 1. throughput on HTTPS/1.1 keep-alive (wrk) and h2 (h2load), the same authorised ~130-byte JSON
//    POST to every peer, Warden and each peer interleaved A-B / B-A, median of the pair ratios;
//    then Warden and the bare proxy loaded at once on one core, over each (the checked figures);
// 2. latency at half of Warden's measured h1 throughput: the open-loop client of bench/soak.js at a
//    fixed rate, p50 / p99 / p99.9, through Warden, through the bare proxy and with no proxy at all
//    (the floor this host's client can measure), all at the same rate, after a warm-up long enough
//    for the start (new connections, tokens introspected once, the client's own JIT) to have
//    drained: steady state, which is what the target is about. Then the same rate from h2load, a
//    C client that leaves the shared load core far less busy (lib.js h2loadAtRate), also to a
//    one-hop HTTPS server (the host's floor for a TLS hop), with Warden's own time per request
//    from its access log;
// 3. Warden's peak RSS over the run.
// --unique: wrk's body gets a new customer and note on every request (h2load's stays the same), so
// that no cache of repeated strings (the waf's clean strings) helps the HTTPS/1.1 figures.
import { openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createBench,
  createFill,
  createPostLoad,
  concurrentPairs,
  ratio,
  has,
  median,
  mtlsMaterial,
  peakRssMiB,
  profileArgs,
  requireTools,
  startBenchIdp,
  idpTemplateVars,
  h2loadAtRate,
  accessLogLatency,
  SMALL_ORDER,
  uniqueStringsBody,
  forkOnLoadCores,
  writeResult,
  benchOptions,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/full.js [--pairs N] [--seconds S] [--connections N] [--streams N] [--latency-seconds S] [--latency-rounds N] [--ratio R] [--unique] [--out FILE] [--no-pin]',
  {
    pairs: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    streams: { type: 'string', default: '10' },
    'latency-seconds': { type: 'string', default: '10' },
    'latency-rounds': { type: 'string', default: '2' },
    ratio: { type: 'string', default: '1' },
    unique: { type: 'boolean', default: false },
  },
);
requireTools(root, ['wrk', 'h2load', 'openssl']);
const [PAIRS, S, C, M, LAT_S] = [opts.pairs, opts.seconds, opts.connections, opts.streams, opts['latency-seconds']].map(Number);
const work = join(root, 'bench/tmp', `full-${Date.now()}`);
const { cert, key, ca, clientCert, clientKey } = mtlsMaterial(work);
const bench = createBench({ pin: opts.pin });
const { start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);

const backendPort = 18097;
const sinkPort = 18321;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [String(backendPort)]);
const sink = await forkOnLoadCores(bench, root, 'bench/peers/otlp-sink.js', [String(sinkPort)]);
const { child: idpChild, idp, ask } = await startBenchIdp(bench, root);
const { tokens } = await ask({ type: 'issue', scope: 'orders:read orders:write', count: 20 }, 'tokens');

const bodyFile = join(work, 'order.json');
const wardenLog = join(work, 'warden.log');
writeFileSync(bodyFile, JSON.stringify(SMALL_ORDER));
const uniqueBodyFile = join(work, 'order-unique.json');
writeFileSync(uniqueBodyFile, JSON.stringify(uniqueStringsBody(SMALL_ORDER)));

const peers = [
  {
    name: 'bare-node',
    port: 18700,
    h2port: 18701,
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
  {
    name: 'warden-full',
    port: 18702,
    launch: (p) =>
      start(
        process.execPath,
        [
          ...profileArgs('warden-full'),
          join(root, 'bin/warden.js'),
          'proxy',
          '-c',
          fill('warden-full-tls.yaml', {
            port: p.port,
            adminPort: 19702,
            backendPort,
            sinkPort,
            cert,
            key,
            ...idpTemplateVars(root, idp),
            ratio: Number(opts.ratio),
          }),
        ],
        { stdio: ['ignore', openSync(wardenLog, 'w'), 'pipe'] },
      ),
  },
  has('nginx') && {
    name: 'nginx',
    port: 18703,
    launch: (p) => start('nginx', ['-c', fill('nginx.conf', { port: p.port, backendPort, cert, key, dir: work }), '-p', work]),
  },
].filter(Boolean);
// Latency only: one HTTPS hop answered by the server itself, no upstream (bench/pingpong.js).
const helloPort = 18710;
const hello = start(process.execPath, [join(root, 'bench/peers/https-hello.js'), String(helloPort), cert, key]);
await waitPort(helloPort);
for (const p of peers) {
  p.child = p.launch(p);
  await waitPort(p.port);
  if (p.h2port) await waitPort(p.h2port);
}
const h1Url = (p) => `https://127.0.0.1:${p.port}/orders`;
const h2Url = (p) => `https://127.0.0.1:${p.h2port ?? p.port}/orders`;
// One token for wrk and h2load (each use after the first is a cache hit, as for a busy caller).
const load = createPostLoad({
  bench,
  root,
  connections: C,
  seconds: S,
  streams: M,
  headers: [`Authorization: Bearer ${tokens[0]}`],
  bodyFile,
  uniqueBodyFile: opts.unique ? uniqueBodyFile : undefined,
});
const { wrk, h2load } = load;
for (const p of peers) {
  const w = wrk(h1Url(p));
  if (w.errors > 0) throw new Error(`${p.name} answered errors during warm-up (${w.errors})`);
}

// 1. Interleaved pairs: Warden against each other peer.
const warden = peers.find((p) => p.name === 'warden-full');
const pairs = {};
const wardenH1 = [];
let errors = 0;
for (const other of peers.filter((p) => p !== warden)) {
  const h1 = [];
  const h2 = [];
  for (let i = 0; i < PAIRS; i++) {
    process.stderr.write(`\rwarden-full vs ${other.name}: pair ${i + 1}/${PAIRS}   `);
    const order = i % 2 === 0 ? [other, warden] : [warden, other];
    const r1 = {};
    const r2 = {};
    for (const p of order) r1[p.name] = wrk(h1Url(p));
    for (const p of order) r2[p.name] = h2load(h2Url(p));
    for (const r of [...Object.values(r1), ...Object.values(r2)]) errors += r.errors;
    h1.push(ratio(r1[warden.name].rps, r1[other.name].rps));
    h2.push(ratio(r2[warden.name].rps, r2[other.name].rps));
    wardenH1.push(r1[warden.name].rps);
  }
  pairs[other.name] = { h1_ratio: median(h1), h2_ratio: median(h2), h1_pairs: h1, h2_pairs: h2 };
}
process.stderr.write('\n');

// 1b. Warden and the bare proxy loaded at once on the same core, HTTPS/1.1 then h2: a change of
// the host's speed, which swings interleaved pairs by ±30 % here, hits both alike (bench/lib.js).
const bare = peers.find((p) => p.name === 'bare-node');
const ROUNDS = Math.max(4, PAIRS);
const atOnce = await concurrentPairs({ base: bare, candidate: warden, rounds: ROUNDS, seconds: S, load, url: h1Url });
const atOnceH2 = await concurrentPairs({ base: bare, candidate: warden, rounds: ROUNDS, seconds: S, load, url: h2Url, method: 'h2' });
const vsBareAtOnce = {
  h1_ratio: median(atOnce.h1),
  h1_rounds: atOnce.h1,
  h1_cpu: median(atOnce.h1cpu),
  h2_ratio: median(atOnceH2.h2),
  h2_rounds: atOnceH2.h2,
  h2_cpu: median(atOnceH2.h2cpu),
  fair_share: atOnce.fairShare,
};
errors += atOnce.errors + atOnceH2.errors;

// 2. Latency at half of Warden's h1 throughput, open loop, through Warden, the bare proxy and no proxy.
const halfRate = Math.round(median(wardenH1) / 2);
// At ~1 500 req/s a cold start (50 tokens to introspect, 32 TLS handshakes, a client still being
// compiled) queues up for 2-5 s on this 2-core host; a 2 s warm-up measured that queue, not Warden.
const WARMUP_S = 6;
const latencyAt = async (url) => {
  const client = await forkOnLoadCores(bench, root, 'bench/peers/soak-client.js', []);
  const windows = [];
  const done = new Promise((r) =>
    client.on('message', (m) => {
      if (m.type === 'window') windows.push(m);
      else if (m.type === 'done') r(m);
    }),
  );
  client.send({
    url,
    ca,
    cert: clientCert,
    key: clientKey,
    tokens,
    rate: halfRate,
    seconds: LAT_S + WARMUP_S,
    warmup: WARMUP_S,
    window: LAT_S + 1,
    h2: false,
    connections: C,
    maxInFlight: 2000,
  });
  await done;
  await stop(client);
  const w = windows.find((x) => !x.warmup && x.completed > 0) ?? {};
  return {
    rate: halfRate,
    p50_ms: w.p50_ms,
    p99_ms: w.p99_ms,
    p999_ms: w.p999_ms,
    // From when each request left rather than when it was due, and the sender's own lag (soak-client.js).
    sent_p50_ms: w.sent_p50_ms,
    sent_p99_ms: w.sent_p99_ms,
    sent_p999_ms: w.sent_p999_ms,
    lag_p99_ms: w.lag_p99_ms,
    errors: (w.errors ?? 0) + (w.overload ?? 0),
    // What the errors were (status codes, client error codes, `overload`): a run of 2026-12-02 had 355 unexplained.
    statuses: { ...w.statuses, ...(w.overload ? { overload: w.overload } : {}) },
  };
};
process.stderr.write(`latency at ${halfRate} req/s (half of Warden's h1 throughput)…\n`);
const latency = {};
for (const p of peers.filter((x) => x.name !== 'nginx')) latency[p.name] = await latencyAt(h1Url(p));
// The floor: the same client straight to the backend (plain HTTP, no proxy), at the same rate. The
// client shares its core with the backend, the IdP and the sink; what it measures here no proxy
// in front of the backend can go below.
latency['no-proxy'] = await latencyAt(`http://127.0.0.1:${backendPort}/orders`);
// Counted with the rest: these were left out of the total, so a run with 355 of them said "no errors: 0".
for (const l of Object.values(latency)) errors += l.errors;

// 2b. The same rate from h2load, rounds in alternating order; per target the round with the median
// p99, the worse of the middle two when the count is even.
const cTargets = {
  'no-proxy': `http://127.0.0.1:${backendPort}/orders`,
  'https-hello': `https://127.0.0.1:${helloPort}/orders`,
  'bare-node': h1Url(bare),
  'warden-full': h1Url(warden),
};
const cRounds = Object.fromEntries(Object.keys(cTargets).map((k) => [k, []]));
const LAT_ROUNDS = Number(opts['latency-rounds']);
for (let i = 0; i < LAT_ROUNDS; i++) {
  const names = Object.keys(cTargets);
  for (const name of i % 2 === 0 ? names : names.reverse()) {
    process.stderr.write(`\rh2load at ${halfRate} req/s: round ${i + 1}/${LAT_ROUNDS}, ${name}            `);
    const { window_ms, ...r } = h2loadAtRate(bench, {
      url: cTargets[name],
      rate: halfRate,
      seconds: LAT_S,
      warmup: WARMUP_S,
      connections: C,
      headers: [`Authorization: Bearer ${tokens[0]}`],
      bodyFile,
      logFile: join(work, `h2load-${name}-${i}.tsv`),
    });
    if (name === 'warden-full') r.in_warden = accessLogLatency(wardenLog, window_ms);
    cRounds[name].push(r);
  }
}
process.stderr.write('\n');
const byP99 = (rounds) => [...rounds].sort((a, b) => a.p99_ms - b.p99_ms)[Math.floor(rounds.length / 2)];
const latencyC = Object.fromEntries(Object.entries(cRounds).map(([k, rounds]) => [k, { median_round: byP99(rounds), rounds }]));
for (const r of Object.values(cRounds).flat()) errors += r.errors;

const rss = peakRssMiB(warden.child.pid);
for (const c of [...peers.map((p) => p.child), hello, idpChild, backend, sink]) await stop(c);

const result = {
  date: new Date().toISOString(),
  settings: {
    pairs: PAIRS,
    seconds: S,
    connections: C,
    h2_streams: M,
    latency_seconds: LAT_S,
    latency_rounds: LAT_ROUNDS,
    sampling_ratio: Number(opts.ratio),
    warden_node_args: process.env.WARDEN_BENCH_NODE_ARGS ?? '',
    body_bytes: JSON.stringify(SMALL_ORDER).length,
    unique_strings_h1: opts.unique,
  },
  vs: pairs,
  vs_bare_node_loaded_at_once: vsBareAtOnce,
  warden_h1_rps_median: median(wardenH1),
  latency_at_half_throughput: latency,
  // The same rate from h2load (C client), per target the round with the median p99 (the worse of two), and all rounds.
  latency_at_half_throughput_h2load: latencyC,
  warden_peak_rss_mib: rss,
  errors,
};
const outFile = writeResult(root, 'full', result, opts.out);

const check = (ok, text) => console.log(`${ok ? 'PASS' : 'FAIL'}  ${text}`);
for (const [name, r] of Object.entries(pairs))
  console.log(
    `warden-full ÷ ${name}: h1 ${r.h1_ratio} (pairs ${r.h1_pairs.join(', ')})  h2 ${r.h2_ratio} (pairs ${r.h2_pairs.join(', ')})`,
  );
for (const [name, l] of Object.entries(latency))
  console.log(
    `${name} at ${l.rate} req/s: p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, p99.9 ${l.p999_ms} ms from due; ` +
      `p50 ${l.sent_p50_ms} ms, p99 ${l.sent_p99_ms} ms, p99.9 ${l.sent_p999_ms} ms from sent (sender lag p99 ${l.lag_p99_ms} ms); errors ${l.errors}${l.errors > 0 ? ` ${JSON.stringify(l.statuses)}` : ''}`,
  );
for (const [name, { median_round: l }] of Object.entries(latencyC))
  console.log(
    `${name} at ${l.rate} req/s from h2load: p50 ${l.p50_ms} ms, p99 ${l.p99_ms} ms, p99.9 ${l.p999_ms} ms` +
      (l.in_warden
        ? `; in Warden p50 ${l.in_warden.p50_ms} ms, p99 ${l.in_warden.p99_ms} ms, p99.9 ${l.in_warden.p999_ms} ms` +
          `, less the backend's time p50 ${l.in_warden.without_backend_p50_ms} ms, p99 ${l.in_warden.without_backend_p99_ms} ms`
        : '') +
      `; later than the interval ${l.late}; errors ${l.errors}`,
  );
console.log(
  `warden-full ÷ bare-node, loaded at once: h1 ${vsBareAtOnce.h1_ratio} (rounds ${vsBareAtOnce.h1_rounds.join(', ')})  CPU/req ${vsBareAtOnce.h1_cpu}; ` +
    `h2 ${vsBareAtOnce.h2_ratio} (rounds ${vsBareAtOnce.h2_rounds.join(', ')})  CPU/req ${vsBareAtOnce.h2_cpu}`,
);
check(
  vsBareAtOnce.h1_ratio >= 0.75,
  `full pipeline ≥ 0.75 × bare Node proxy, HTTPS/1.1: ${vsBareAtOnce.h1_ratio} loaded at once; ${pairs['bare-node'].h1_ratio} interleaved`,
);
check(
  vsBareAtOnce.h2_ratio >= 0.75,
  `full pipeline ≥ 0.75 × bare Node proxy, h2: ${vsBareAtOnce.h2_ratio} loaded at once; ${pairs['bare-node'].h2_ratio} interleaved`,
);
// The h2load figure: the Node client's own TLS work on the shared load core sets its tail (docs/performance.md).
const wardenP99 = latencyC['warden-full'].median_round.p99_ms;
check(
  wardenP99 <= 2,
  `p99 at half of max throughput ≤ 2 ms: ${wardenP99} ms (h2load; ${latency['warden-full'].p99_ms} ms from the Node client)`,
);
check(rss <= 100, `RSS ≤ 100 MB under load: ${rss} MiB`);
check(errors === 0, `no errors: ${errors}`);
console.log(`written: ${outFile}`);
