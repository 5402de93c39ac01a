#!/usr/bin/env node
// What a request leaves to V8's garbage collector: one Warden under wrk (a small JSON POST, or
// GET), run with --trace-gc-nvp, read after a warm-up. Per request: bytes allocated, bytes promoted
// to old space (what survived two scavenges), and the main thread's time in scavenges and in
// mark-compacts. A high promoted share means objects of finished requests outlive them, which CPU
// profiles do not show (docs/history/performance.md, "Small request bodies forwarded whole").
// --dir runs another build (a folder with bin/ and dist/, e.g. a bench/builds.js worktree);
// --peer bare runs the bare Node proxy (bench/peers/bare-node-proxy.js) instead of Warden.
// --method h2 sends the POST over h2 instead (h2load, 32 connections × 10 streams: 320 requests in
// flight, each living 64–100 ms at 3 200–5 000 req/s where wrk's 32 live a few: what survives
// scavenges there is what the requests in flight hold).
// --sites also samples the measured load's allocations (bench/peers/alloc-sampler.js, V8's sampling
// heap profiler keeping what the collector freed) and prints the bytes per request by allocating
// function and by the nearest Warden function on the stack (bench/alloc-sites.js); the sampling
// costs CPU, so that run's rps is not comparable.
// Usage: node bench/gc-survival.js [--config warden-access.yaml] [--method post|get|h2] [--dir DIR]
//                                  [--peer warden|bare] [--seconds 6] [--runs 2] [--sites] [--out FILE] [--no-pin]
import { existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { allocationSites } from './alloc-sites.js';
import {
  benchOptions,
  benchWorkdir,
  createBench,
  createFill,
  createPostLoad,
  forkOnLoadCores,
  median,
  profileArgs,
  requireTools,
  startConfigPeers,
  writeResult,
  wrkGet,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/gc-survival.js [--config FILE] [--method post|get|h2] [--dir DIR] [--peer warden|bare] [--seconds S] [--runs N] [--sites] [--out FILE] [--no-pin]',
  {
    config: { type: 'string', default: 'warden-access.yaml' },
    method: { type: 'string', default: 'post' },
    dir: { type: 'string', default: root },
    peer: { type: 'string', default: 'warden' },
    seconds: { type: 'string', default: '6' },
    runs: { type: 'string', default: '2' },
    sites: { type: 'boolean', default: false },
  },
);
for (const [name, allowed] of [
  ['method', ['post', 'get', 'h2']],
  ['peer', ['warden', 'bare']],
]) {
  if (!allowed.includes(opts[name])) {
    console.error(`bench/gc-survival.js: --${name} must be ${allowed.join(' or ')}, not ${opts[name]}`);
    process.exit(2);
  }
}
const bare = opts.peer === 'bare';
const FILLED = ['port', 'adminPort', 'backendPort', 'sinkPort', 'cert', 'key', 'ratio'];
const template = readFileSync(join(root, 'bench/peers', opts.config), 'utf8');
requireTools(root, ['wrk', 'openssl']);
const S = Number(opts.seconds);
const { work, cert, key } = benchWorkdir(root, `gc-survival-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
// Configurations that introspect tokens (warden-full-tls.yaml) get the bench's IdP and one token.
const [port, adminPort, backendPort, sinkPort] = [18640, 19640, 18641, 18642];
// For configurations that export telemetry (warden-otel.yaml), the OTLP sink too.
const caller = await startConfigPeers(bench, root, bare ? '' : template, sinkPort);
const missing = [...template.matchAll(/{{(\w+)}}/g)].map((m) => m[1]).find((name) => !FILLED.includes(name) && !(name in caller.vars));
if (missing && !bare) {
  console.error(`bench/gc-survival.js: ${opts.config} needs {{${missing}}}, which this bench does not start; use bench/builds.js for it`);
  process.exit(2);
}
const bodyFile = join(work, 'body.json');
writeFileSync(bodyFile, JSON.stringify(caller.body));
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [backendPort]);
const { headers } = caller;
// The bare proxy serves h2 on a port of its own (node:http2), HTTP/1.1 on `port` (node:https).
const url = `https://127.0.0.1:${bare && opts.method === 'h2' ? port + 2 : port}/orders`;
const post = createPostLoad({ bench, root, connections: 32, seconds: S, streams: 10, bodyFile, headers });
const get = () => wrkGet(bench, root, url, { connections: 32, seconds: S, headers });
// h2load without its own warm-up: the --trace-gc-nvp records read are those of the whole run.
const load = () => (opts.method === 'post' ? post.wrk(url) : opts.method === 'h2' ? post.h2load(url, { warmup: 0 }) : get());

/** The --trace-gc-nvp records written after `offset` bytes of the log. */
function collections(log, offset) {
  return readFileSync(log)
    .subarray(offset)
    .toString('latin1')
    .split('\n')
    .filter((l) => l.includes(' gc='))
    .map((l) => Object.fromEntries(l.split(' ').flatMap((f) => (f.includes('=') ? [f.split('=')] : []))));
}

const runs = [];
/** Per run with --sites: where the measured load allocated. */
const sites = [];
for (let i = 0; i < Number(opts.runs); i++) {
  const peerArgs = bare
    ? [join(root, 'bench/peers/bare-node-proxy.js'), port, port + 2, `http://127.0.0.1:${backendPort}`, cert, key]
    : [
        join(resolve(opts.dir), 'bin/warden.js'),
        'proxy',
        '-c',
        fill(opts.config, { port, adminPort, backendPort, sinkPort, cert, key, ratio: 1, ...caller.vars }),
      ];
  const log = join(work, `${opts.peer}-${i}.log`);
  const sitesFile = join(work, `${opts.peer}-${i}.heapprofile`);
  const sampler = opts.sites ? [`--import=${pathToFileURL(join(root, 'bench/peers/alloc-sampler.js')).href}`] : [];
  const child = bench.start(
    process.execPath,
    ['--trace-gc-nvp', ...sampler, ...profileArgs(`${opts.peer}-${i}`), ...peerArgs.map(String)],
    {
      stdio: ['ignore', openSync(log, 'w'), 'pipe'],
      env: { ...process.env, WARDEN_ALLOC_PROFILE: sitesFile },
    },
  );
  await bench.waitPort(port);
  load(); // warm-up: connections, JIT, the young generation grown to its working size
  const offset = statSync(log).size;
  if (opts.sites) child.kill('SIGUSR2');
  const r = load();
  const gcs = collections(log, offset);
  if (opts.sites) {
    child.kill('SIGUSR2');
    const written = Date.now() + 20_000;
    while (!existsSync(sitesFile) && Date.now() < written) await new Promise((res) => setTimeout(res, 100));
    if (existsSync(sitesFile)) sites.push(allocationSites(JSON.parse(readFileSync(sitesFile, 'utf8')), r.requests));
  }
  await bench.stop(child);
  const scavenges = gcs.filter((g) => g.gc === 's');
  const sum = (xs, field) => xs.reduce((a, g) => a + Number(g[field] ?? 0), 0);
  const allocated = sum(scavenges, 'allocated');
  const promoted = sum(scavenges, 'promoted');
  const perRequest = (total) => round(total / r.requests);
  runs.push({
    rps: r.rps,
    errors: r.errors,
    scavenges: scavenges.length,
    allocated_kb_per_request: perRequest(allocated / 1024),
    promoted_kb_per_request: perRequest(promoted / 1024),
    promoted_share: round(promoted / allocated, 3),
    scavenge_us_per_request: perRequest(sum(scavenges, 'pause') * 1000),
    // What one scavenge stops the event loop for: what a request that arrives during it waits.
    scavenge_pause_ms_median: median(scavenges.map((g) => Number(g.pause))),
    mark_compact_us_per_request: perRequest(
      sum(
        gcs.filter((g) => g.gc !== 's'),
        'pause',
      ) * 1000,
    ),
  });
}
await bench.stop(backend);
await caller.stop();

function round(x, digits = 2) {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}
const fields = Object.keys(runs[0]);
const result = {
  date: new Date().toISOString(),
  settings: {
    peer: opts.peer,
    config: bare ? undefined : opts.config,
    method: opts.method,
    build: bare ? undefined : opts.dir,
    seconds: S,
    runs: runs.length,
    sites: opts.sites,
    node_args: process.env.WARDEN_BENCH_NODE_ARGS ?? '',
  },
  median: Object.fromEntries(fields.map((f) => [f, round(median(runs.map((r) => r[f])), 3)])),
  runs,
  ...(opts.sites ? { allocation_sites: sites } : {}),
};
const m = result.median;
console.log(
  `${bare ? 'bare Node proxy' : opts.config} ${opts.method.toUpperCase()}: ${m.rps} req/s; per request ${m.allocated_kb_per_request} KB allocated, ` +
    `${m.promoted_kb_per_request} KB promoted (${Math.round(m.promoted_share * 100)} %), scavenges ${m.scavenge_us_per_request} µs ` +
    `(${m.scavenge_pause_ms_median} ms each), ` +
    `mark-compact ${m.mark_compact_us_per_request} µs; errors ${m.errors} (medians of ${runs.length})`,
);
// The last run's sites (the runs agree to a few percent; all are in the result file).
const last = sites.at(-1);
if (opts.sites && !last) console.log('no allocation profile was written (bench/peers/alloc-sampler.js)');
for (const [title, rows] of last
  ? [
      ['allocating function', last.byFunction],
      ['nearest Warden frame', last.byWardenFrame],
    ]
  : []) {
  console.log(`bytes per request, by ${title}:`);
  for (const r of rows) console.log(`${String(r.bytes_per_request).padStart(8)}  ${r.site}`);
}
console.log(`written: ${writeResult(root, 'gc-survival', result, opts.out)}`);
