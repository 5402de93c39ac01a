#!/usr/bin/env node
// The latency floor of this host: requests one at a time over one kept-alive connection, nothing
// else running: straight to the backend (plain HTTP), to an HTTPS server that answers itself on the
// proxy's core (one hop there and back), through the bare Node proxy and through Warden (HTTPS/1.1,
// two hops). No queue and no load, so what is left in the tail is the host's scheduling and each
// process's own pauses: what a p99 target can be held to here (docs/performance.md). The proxy
// runs on the test core, the backend and this client on the others, as in bench/full.js.
// WARDEN_BENCH_NODE_ARGS and WARDEN_BENCH_PROFILE apply to Warden, as in the other benches.
// Every request is the same small JSON POST (with --config warden-full-tls.yaml: the full pipeline,
// its token included).
// Usage: node bench/pingpong.js [--requests 3000] [--rounds 2] [--config warden-access.yaml]
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import {
  benchOptions,
  benchWorkdir,
  createBench,
  createFill,
  forkOnLoadCores,
  profileArgs,
  quantile,
  startConfigPeers,
  writeResult,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions('node bench/pingpong.js [--requests N] [--rounds N] [--config FILE] [--out FILE] [--no-pin]', {
  requests: { type: 'string', default: '3000' },
  rounds: { type: 'string', default: '2' },
  config: { type: 'string', default: 'warden-access.yaml' },
});
const REQUESTS = Number(opts.requests);
const WARMUP = 200;
const { work, cert, key } = benchWorkdir(root, `pingpong-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
// The client (this process) on the load cores with the backend, off the proxy's core.
bench.moveTo(process.pid, bench.LOAD_CPUS);
const fill = createFill(join(root, 'bench/peers'), work);
const backendPort = 18497;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [String(backendPort)]);
// A configuration that names the IdP (warden-full-tls.yaml) gets the bench's IdP and a token, and
// one that exports telemetry the OTLP sink; every peer gets the same POST, token included.
const template = readFileSync(join(root, 'bench/peers', opts.config), 'utf8');
const sinkPort = 18498;
const caller = await startConfigPeers(bench, root, template, sinkPort);
const headers = Object.fromEntries([...caller.headers, 'content-type: application/json'].map((h) => h.split(/:\s*/, 2)));
const body = JSON.stringify(caller.body);

const peers = {
  // Client → backend, plain HTTP: both on the load cores.
  direct: { url: `http://127.0.0.1:${backendPort}/orders` },
  // One hop to the test core and back: a server that answers itself (HTTPS).
  'https-hello': {
    url: 'https://127.0.0.1:18493/orders',
    start: () => bench.start(process.execPath, [join(root, 'bench/peers/https-hello.js'), 18493, cert, key]),
  },
  'bare-node': {
    url: 'https://127.0.0.1:18490/orders',
    start: () =>
      bench.start(process.execPath, [
        join(root, 'bench/peers/bare-node-proxy.js'),
        18490,
        18491,
        `http://127.0.0.1:${backendPort}`,
        cert,
        key,
      ]),
  },
  warden: {
    url: 'https://127.0.0.1:18492/orders',
    start: () =>
      bench.start(process.execPath, [
        ...profileArgs('warden'),
        join(root, 'bin/warden.js'),
        'proxy',
        '-c',
        fill(opts.config, { port: 18492, adminPort: 19492, backendPort, sinkPort, ratio: 1, cert, key, ...caller.vars }),
      ]),
  },
};

const ms3 = (x) => Number(x.toFixed(3));

async function measure(url) {
  const agent = new Agent({ connections: 1, connect: { ca: readFileSync(cert), servername: 'localhost' } });
  const ms = [];
  for (let i = 0; i < WARMUP + REQUESTS; i++) {
    const start = performance.now();
    const res = await request(url, { dispatcher: agent, method: 'POST', headers, body });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
    if (i >= WARMUP) ms.push(performance.now() - start);
  }
  await agent.close();
  ms.sort((a, b) => a - b);
  const at = (q) => ms3(quantile(ms, q));
  return { p50_ms: at(0.5), p99_ms: at(0.99), p999_ms: at(0.999), max_ms: at(1) };
}

const runs = Object.fromEntries(Object.keys(peers).map((name) => [name, []]));
for (let round = 0; round < Number(opts.rounds); round++) {
  for (const [name, peer] of Object.entries(peers)) {
    const child = peer.start?.();
    if (child) await bench.waitPort(Number(new URL(peer.url).port));
    const r = await measure(peer.url);
    runs[name].push(r);
    console.log(`${name}: p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, p99.9 ${r.p999_ms} ms, max ${r.max_ms} ms`);
    if (child) await bench.stop(child);
  }
}
await bench.stop(backend);
await caller.stop();
const result = {
  date: new Date().toISOString(),
  settings: { requests: REQUESTS, rounds: Number(opts.rounds), config: opts.config, pinned: bench.PIN },
  runs,
};
console.log(`written: ${writeResult(root, 'pingpong', result, opts.out)}`);
