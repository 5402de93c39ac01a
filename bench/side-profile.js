#!/usr/bin/env node
// Where Warden's time per request goes that the bare Node proxy's does not: both loaded at once on
// one core with equal CPU shares (concurrentPairs, as bench/full.js), both run with --cpu-prof, and
// each profile's main-thread busy time per request summed by where the code lives (Warden's dist/
// files, Node's internal modules, npm packages, native entries). Printed side by side, sorted by
// the difference; both .cpuprofile files are kept for a flame graph.
// The figures are the wall time of samples that were not idle: the two peers share one core, so a
// sample interval also spans time the process waited for it, and sampling adds overhead; they run
// at about twice the CPU per request, and the time a peer waits for the core is charged to
// whatever function it was in (V8 samples by wall clock). `--apart` loads each peer alone on the
// core in turn instead: its not-idle samples are then its CPU time, function by function (no
// ratio of throughput is taken).
// `--base-config FILE` puts a Warden with that configuration in the bare proxy's place (say, the
// same pipeline without telemetry): what the configuration's difference costs, place by place.
// Usage: node bench/side-profile.js [--config warden-full-tls.yaml] [--base-config FILE] [--method h1|h2] [--rounds 3] [--seconds 4] [--top 30] [--apart] [--out FILE] [--no-pin]
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REQUEST_DISPATCH, busyTree, flameGraphSvg, placeOf as placeOfFrame } from './flame-graph-svg.js';
import {
  benchNodeArgs,
  benchOptions,
  benchWorkdir,
  concurrentPairs,
  cpuProfileArgs,
  createBench,
  createFill,
  createPostLoad,
  forkOnLoadCores,
  readCpuProfile,
  requireTools,
  round3,
  startConfigPeers,
  writeResult,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/side-profile.js [--config FILE] [--base-config FILE] [--method h1|h2] [--rounds N] [--seconds S] [--top N] [--apart] [--out FILE] [--no-pin]',
  {
    config: { type: 'string', default: 'warden-full-tls.yaml' },
    'base-config': { type: 'string' },
    method: { type: 'string', default: 'h1' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    top: { type: 'string', default: '30' },
    apart: { type: 'boolean', default: false },
  },
);
requireTools(root, [opts.method === 'h2' ? 'h2load' : 'wrk', 'openssl']);
const [ROUNDS, S, TOP] = [opts.rounds, opts.seconds, opts.top].map(Number);
const { work, cert, key } = benchWorkdir(root, `side-profile-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
const backendPort = 18097;
const sinkPort = 18321;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [String(backendPort)]);
// The IdP and a token when the configuration names them, the OTLP sink when it exports.
const peers = await startConfigPeers(bench, root, readFileSync(join(root, 'bench/peers', opts.config), 'utf8'), sinkPort);
const bodyFile = join(work, 'body.json');
writeFileSync(bodyFile, JSON.stringify(peers.body));

// WARDEN_BENCH_NODE_ARGS applies to both peers here, as profileArgs applies it to Warden elsewhere.
const profileOf = (name) => [...benchNodeArgs(), ...cpuProfileArgs(work, name)];
const baseConfig = opts['base-config'];
// The base: the bare Node proxy, or a Warden with --base-config (named apart from the candidate's file).
const bare = { name: baseConfig ? 'warden-base' : 'bare-node', port: 18700, h2port: 18701 };
const vars = { backendPort, sinkPort, cert, key, ratio: 1, ...peers.vars };
const startWarden = (name, config) =>
  bench.start(process.execPath, [...profileOf(name), join(root, 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', openSync(join(work, `${name}.log`), 'w'), 'pipe'],
  });
if (baseConfig) {
  bare.h2port = bare.port;
  bare.child = startWarden(bare.name, fill(baseConfig, { ...vars, port: bare.port, adminPort: 19700 }, `base-${baseConfig}`));
} else {
  bare.child = bench.start(process.execPath, [
    ...profileOf('bare-node'),
    join(root, 'bench/peers/bare-node-proxy.js'),
    ...[bare.port, bare.h2port, `http://127.0.0.1:${backendPort}`, cert, key].map(String),
  ]);
}
const warden = { name: 'warden', port: 18702 };
warden.child = startWarden('warden', fill(opts.config, { ...vars, port: warden.port, adminPort: 19702 }));
for (const port of [bare.port, bare.h2port, warden.port]) await bench.waitPort(port);

const load = createPostLoad({ bench, root, connections: 32, seconds: S, streams: 10, headers: peers.headers, bodyFile });
const url = (p) => `https://127.0.0.1:${opts.method === 'h2' ? (p.h2port ?? p.port) : p.port}/orders`;
const pairs = opts.apart
  ? await loadedApart({ base: bare, candidate: warden, rounds: ROUNDS })
  : await concurrentPairs({ base: bare, candidate: warden, rounds: ROUNDS, seconds: S, load, url, method: opts.method });
await bench.stop(warden.child);
await bench.stop(bare.child);
await peers.stop();
await bench.stop(backend);

/** Each peer loaded alone, in turn, one unmeasured round first: the requests each answered, and their errors. */
async function loadedApart({ base, candidate, rounds }) {
  const run = opts.method === 'h2' ? (u) => load.h2load(u, { warmup: 0 }) : (u) => load.wrk(u);
  const answered = { base: 0, candidate: 0 };
  let errors = 0;
  for (let i = 0; i <= rounds; i++) {
    process.stderr.write(`\rapart ${candidate.name} and ${base.name}: round ${i + 1}/${rounds + 1}`);
    for (const [side, peer] of [
      ['base', base],
      ['candidate', candidate],
    ]) {
      const r = await run(url(peer));
      answered[side] += r.requests;
      if (i > 0) errors += r.errors;
    }
  }
  process.stderr.write('\n');
  return { answered, errors };
}

/** Where a frame's code lives: a dist/ file, a Node module, an npm package, or V8's own entry. */
function placeOf(frame) {
  const place = placeOfFrame(frame);
  return place.where || place.name;
}

/**
 * Main-thread busy µs per request by place, from the first request on (the start, JIT and config
 * compilation before it are not the requests'): each box's own time in the requests' flame graph.
 */
function busyPerRequest(profile, requests) {
  const by = new Map();
  const pending = [busyTree(profile, { from: REQUEST_DISPATCH })];
  while (pending.length > 0) {
    const box = pending.pop();
    if (box.self > 0) {
      const place = placeOf(box.frame);
      by.set(place, (by.get(place) ?? 0) + box.self / requests);
    }
    pending.push(...box.children);
  }
  return by;
}

const profiles = {
  bare: readCpuProfile(join(work, `${bare.name}.cpuprofile`)).profile,
  warden: readCpuProfile(join(work, 'warden.cpuprofile')).profile,
};
const bareUs = busyPerRequest(profiles.bare, pairs.answered.base);
const wardenUs = busyPerRequest(profiles.warden, pairs.answered.candidate);
const sum = (m) => [...m.values()].reduce((a, b) => a + b, 0);
const places = [...new Set([...bareUs.keys(), ...wardenUs.keys()])]
  .map((place) => ({ place, bare: round3(bareUs.get(place) ?? 0), warden: round3(wardenUs.get(place) ?? 0) }))
  .map((r) => ({ ...r, extra: round3(r.warden - r.bare) }))
  .sort((a, b) => b.extra - a.extra);

const result = {
  date: new Date().toISOString(),
  settings: {
    config: opts.config,
    base: baseConfig ?? 'bare-node',
    method: opts.method,
    rounds: ROUNDS,
    seconds: S,
    pinned: opts.pin,
    apart: opts.apart,
  },
  ...(opts.apart
    ? { errors: pairs.errors }
    : { loaded_at_once: { rps_ratio: pairs[opts.method], cpu_ratio: pairs[`${opts.method}cpu`], errors: pairs.errors } }),
  requests: { bare: pairs.answered.base, warden: pairs.answered.candidate },
  [opts.apart ? 'not_idle_us_per_request' : 'not_idle_wall_us_per_request']: { bare: round3(sum(bareUs)), warden: round3(sum(wardenUs)) },
  places,
  profiles: { bare: join(work, `${bare.name}.cpuprofile`), warden: join(work, 'warden.cpuprofile') },
};
if (opts.apart) {
  console.log(`${opts.config} over ${opts.method}, each loaded alone on its core; errors ${pairs.errors}`);
  console.log(
    `main thread, not idle, µs per request (its CPU time): bare ${result.not_idle_us_per_request.bare}, Warden ${result.not_idle_us_per_request.warden}`,
  );
} else {
  console.log(
    `${opts.config} over ${opts.method}, loaded at once: Warden ÷ bare rps ${pairs[opts.method].join(', ')}; CPU per request ${pairs[`${opts.method}cpu`].join(', ')}`,
  );
  console.log(
    `main thread, not idle, µs of wall time per request (about 2× CPU: the peers share one core): bare ${result.not_idle_wall_us_per_request.bare}, Warden ${result.not_idle_wall_us_per_request.warden}`,
  );
}
console.log('   extra    bare  warden  place');
for (const r of places.slice(0, TOP)) {
  console.log(`${r.extra.toFixed(1).padStart(8)}${r.bare.toFixed(1).padStart(8)}${r.warden.toFixed(1).padStart(8)}  ${r.place}`);
}
// Flame graphs of the requests' time, both drawn to one scale (µs per request): widths compare.
const fullScale = Math.max(sum(bareUs), sum(wardenUs));
for (const [side, name, requests] of [
  ['bare', bare.name, pairs.answered.base],
  ['warden', 'warden', pairs.answered.candidate],
]) {
  const profile = profiles[side];
  const title = `${name === 'warden' ? 'Warden' : name}, ${opts.config} over ${opts.method}${opts.apart ? ', loaded alone' : ', loaded at once'}`;
  writeFileSync(join(work, `${name}.svg`), flameGraphSvg(profile, { title, from: REQUEST_DISPATCH, requests, fullScale }));
  result.profiles[`${side}_flame_graph`] = join(work, `${name}.svg`);
}
console.log(
  `profiles: ${result.profiles.bare}, ${result.profiles.warden}; flame graphs (one scale): ${result.profiles.bare_flame_graph}, ${result.profiles.warden_flame_graph}`,
);
console.log(`written: ${writeResult(root, 'side-profile', result, opts.out)}`);
