#!/usr/bin/env node
// Soak: the full pipeline (mTLS + SPIFFE ID check, introspection with its cache, minted token, body
// validation, scopes, rate limit, waf, OpenTelemetry export) at a fixed request rate for a set
// duration. Reports errors, p50/p99/p99.9 latency per window and the sidecar's RSS and heap over
// time (JSON + a PNG chart), and fails on any error or on memory that keeps growing. See
// bench/README.md. Short by default (CI runs it through test/soak); --long for 30 minutes.
import { openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeChart } from './soak-chart.js';
import { soakVerdict } from './soak-verdict.js';
import {
  accessLogLatency,
  createBench,
  createFill,
  median,
  mtlsMaterial,
  profileArgs,
  requireTools,
  startBenchIdp,
  idpTemplateVars,
  forkOnLoadCores,
  writeResult,
  benchOptions,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/soak.js [--duration S | --long] [--rate RPS] [--window S] [--h2] [--tokens N] [--connections N] [--ratio R]\n' +
    '                         [--max-heap-growth-mib N] [--max-rss-growth-mib N] [--out FILE.json] [--no-pin]',
  {
    duration: { type: 'string', default: '60' },
    long: { type: 'boolean', default: false },
    rate: { type: 'string', default: '300' },
    window: { type: 'string', default: '5' },
    h2: { type: 'boolean', default: false },
    tokens: { type: 'string', default: '50' },
    connections: { type: 'string', default: '16' },
    ratio: { type: 'string', default: '1' },
    'max-heap-growth-mib': { type: 'string', default: '16' },
    'max-rss-growth-mib': { type: 'string', default: '32' },
  },
);
requireTools(root, ['openssl']);
const SECONDS = opts.long ? 1800 : Number(opts.duration);
const RATE = Number(opts.rate);
const WINDOW = Number(opts.window);
if (!(SECONDS >= 10) || !(RATE > 0) || !(WINDOW >= 1)) {
  console.error('bench/soak.js: --duration must be ≥ 10 s, --rate > 0 and --window ≥ 1 s');
  process.exit(2);
}
const work = join(root, 'bench/tmp', `soak-${Date.now()}`);
const { cert, key, ca, clientCert, clientKey } = mtlsMaterial(work);
const bench = createBench({ pin: opts.pin });
const { start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);

const backendPort = 18095;
const sinkPort = 18319;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [String(backendPort)]);
const sink = await forkOnLoadCores(bench, root, 'bench/peers/otlp-sink.js', [String(sinkPort)]);
const { child: idpChild, idp, ask } = await startBenchIdp(bench, root);
const scope = 'orders:read orders:write';
const { tokens } = await ask({ type: 'issue', scope, count: Number(opts.tokens) }, 'tokens');

const port = 18490;
const adminPort = 19990;
const config = fill('warden-full.yaml', {
  port,
  adminPort,
  backendPort,
  sinkPort,
  cert,
  key,
  ca,
  ...idpTemplateVars(root, idp),
  ratio: Number(opts.ratio),
});
const warden = start(process.execPath, [...profileArgs('warden-full'), join(root, 'bin/warden.js'), 'proxy', '-c', config], {
  stdio: ['ignore', openSync(join(work, 'warden.log'), 'w'), 'pipe'],
});
await waitPort(port);

// Memory: RSS from /proc, heap used from the sidecar's own /metrics (prom-client process metrics).
const memory = [];
const startedAt = performance.now();
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${warden.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const heapMiB = async () => {
  try {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([\d.e+]+)/m.exec(text);
    return m ? Number(m[1]) / 2 ** 20 : undefined;
  } catch {
    return undefined;
  }
};
const round1 = (x) => (x === undefined ? undefined : Math.round(x * 10) / 10);
const sampleMemory = async () => {
  const heap = await heapMiB();
  memory.push({ t: round1((performance.now() - startedAt) / 1000), rss_mib: round1(rssMiB()), heap_mib: round1(heap) });
};
await sampleMemory();
const sampler = setInterval(() => void sampleMemory(), 1000);

const client = await forkOnLoadCores(bench, root, 'bench/peers/soak-client.js', []);
const windows = [];
let done;
const finished = new Promise((r) => (done = r));
client.on('message', (m) => {
  if (m.type === 'window') {
    windows.push(m);
    const total = m.errors + m.overload;
    process.stderr.write(
      `\r${String(Math.round(m.t)).padStart(5)} s  ${Math.round(m.completed / m.seconds)} req/s  p50 ${m.p50_ms} ms  p99 ${m.p99_ms} ms  p99.9 ${m.p999_ms} ms  errors ${total}   `,
    );
  } else if (m.type === 'done') done(m);
});
const loadStartedAt = Date.now();
client.send({
  url: `https://127.0.0.1:${port}/orders`,
  ca,
  cert: clientCert,
  key: clientKey,
  tokens,
  rate: RATE,
  seconds: SECONDS,
  window: WINDOW,
  h2: opts.h2,
  connections: Number(opts.connections),
  maxInFlight: 2000,
});
const summary = await finished;
clearInterval(sampler);
await sampleMemory();
process.stderr.write('\n');
const sinkSeen = await new Promise((r) => {
  sink.once('message', (m) => r(m.seen));
  sink.send('report');
});
const introspections = (await ask({ type: 'count' }, 'count')).count;
for (const c of [warden, client, idpChild, backend, sink]) await stop(c);

const { pass, failures, totals, statuses, heapGrowth, rssGrowth } = soakVerdict({
  windows,
  memory,
  summary,
  seconds: SECONDS,
  maxHeapGrowthMiB: Number(opts['max-heap-growth-mib']),
  maxRssGrowthMiB: Number(opts['max-rss-growth-mib']),
});
const all = (key) => windows.map((w) => w[key]);
// Warden's own time after the first window (connections, handshakes, introspections), and that
// time less the backend's: what the sidecar adds, apart from the load core's scheduling.
const inWarden = accessLogLatency(join(work, 'warden.log'), [loadStartedAt + WINDOW * 1000, Infinity]);
const result = {
  date: new Date().toISOString(),
  settings: { seconds: SECONDS, rate: RATE, window_s: WINDOW, h2: opts.h2, tokens: tokens.length, sampling_ratio: Number(opts.ratio) },
  pass,
  failures,
  totals: { sent: summary.sent, ...totals, statuses, introspections, otlp_requests: sinkSeen },
  latency_ms: {
    p50_median_of_windows: Math.round(median(all('p50_ms')) * 1000) / 1000,
    p99_worst_window: Math.max(...all('p99_ms')),
    p999_worst_window: Math.max(...all('p999_ms')),
    max: Math.max(...all('max_ms')),
    in_warden_after_first_window: inWarden,
  },
  memory_mib: {
    rss_peak: Math.max(...memory.map((m) => m.rss_mib)),
    heap_peak: Math.max(...memory.filter((m) => m.heap_mib !== undefined).map((m) => m.heap_mib)),
    heap_growth_after_warmup: heapGrowth,
    rss_growth_after_warmup: rssGrowth,
  },
  windows,
  memory,
};
const outFile = writeResult(root, 'soak', result, opts.out);
const base = outFile.replace(/\.json$/, '');
const png = writeChart(result, `${base}.svg`, `${base}.png`);

console.log(
  `soak: ${SECONDS} s at ${RATE} req/s (${opts.h2 ? 'h2' : 'HTTPS/1.1'}), ${totals.completed} answered, ${totals.errors + totals.overload} errors; ` +
    `p50 ${result.latency_ms.p50_median_of_windows} ms, worst p99 ${result.latency_ms.p99_worst_window} ms, worst p99.9 ${result.latency_ms.p999_worst_window} ms; ` +
    `in Warden after the first window p50 ${inWarden.p50_ms} / p99 ${inWarden.p99_ms} ms, less the backend's time p50 ${inWarden.without_backend_p50_ms} / p99 ${inWarden.without_backend_p99_ms} / p99.9 ${inWarden.without_backend_p999_ms} ms; ` +
    `RSS peak ${result.memory_mib.rss_peak} MiB (growth ${rssGrowth}), heap peak ${result.memory_mib.heap_peak} MiB (growth ${heapGrowth}); ` +
    `${introspections} introspections for ${tokens.length} tokens`,
);
console.log(`written: ${outFile}${png ? `, ${base}.png` : ' (no chromium: SVG only)'}, ${base}.svg`);
console.log(result.pass ? 'PASS  soak' : `FAIL  soak: ${failures.join('; ')}`);
process.exit(result.pass ? 0 : 1);
