#!/usr/bin/env node
// What the threat stages cost, measured side by side in one run (see bench/README.md):
// 1. the waf on a ~1 KB JSON POST: the pipeline of bench/policy.js (JWT, scopes, rate limit, body
//    validation, minted token) with and without the waf (paranoia 1), interleaved A-B / B-A on
//    HTTPS/1.1 (wrk) and h2 (h2load), with server CPU per request;
// 2. malware scanning of a 1 MB upload: p50 latency through Warden with and without the scan,
//    against clamd's own scan time for the same bytes (zINSTREAM on an open session).
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { clamdSession, EICAR, startBenchClamd } from './clamd.js';
import {
  benchWorkdir,
  createBench,
  createFill,
  createPostLoad,
  interleavedPairs,
  median,
  peakRssMiB,
  profileArgs,
  requireTools,
  startBenchIdp,
  writeResult,
  benchOptions,
  round3,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/threats.js [--pairs N] [--seconds S] [--connections N] [--streams N] [--uploads N] [--out FILE] [--no-pin]',
  {
    pairs: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    streams: { type: 'string', default: '10' },
    uploads: { type: 'string', default: '60' },
  },
);
requireTools(root, ['wrk', 'h2load', 'openssl', 'clamd']);
const [PAIRS, S, C, M, UPLOADS] = [opts.pairs, opts.seconds, opts.connections, opts.streams, opts.uploads].map(Number);
const { work, cert, key } = benchWorkdir(root, `threats-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const { LOAD_CPUS, moveTo, start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);

// The ~1 KB order of bench/policy.js, with free text the waf reads.
const order = {
  customer: "O'Brien & Sons, purchasing department",
  note: 'Deliver to the loading dock at the rear of the building; call ahead. '.repeat(3),
  items: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1, price: 9.99 + i })),
};
const bodyFile = join(work, 'order.json');
writeFileSync(bodyFile, JSON.stringify(order));
const bodyBytes = Buffer.byteLength(JSON.stringify(order));

const { child: idpChild, idp, ask } = await startBenchIdp(bench, root);
const [token] = (await ask({ type: 'issue', scope: 'orders:read orders:write', resource: idp.audience, count: 1 }, 'tokens')).tokens;
const auth = `Authorization: Bearer ${token}`;

const clamdPort = 18310;
const clamd = await startBenchClamd(bench, work, clamdPort);
const backendPort = 18092;
const backend = fork(join(root, 'bench/peers/backend.js'), [String(backendPort)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
bench.children.add(backend);
moveTo(backend.pid, LOAD_CPUS);
await new Promise((r) => backend.once('message', r));

const vars = {
  backendPort,
  cert,
  key,
  clamdPort,
  issuer: idp.issuer,
  audience: idp.audience,
  openapi: join(root, 'bench/peers/policy-openapi.yaml'),
};
const peers = [
  { name: 'warden-policy', port: 18472, file: 'warden-policy.yaml', adminPort: 19972 },
  { name: 'warden-waf', port: 18473, file: 'warden-policy-waf.yaml', adminPort: 19973 },
];
const scanPeer = { name: 'warden-scan', port: 18474, file: 'warden-threats.yaml', adminPort: 19974 };
for (const p of [...peers, scanPeer]) {
  const log = openSync(join(work, `${p.name}.log`), 'w');
  p.child = start(
    process.execPath,
    [...profileArgs(p.name), join(root, 'bin/warden.js'), 'proxy', '-c', fill(p.file, { ...vars, port: p.port, adminPort: p.adminPort })],
    {
      stdio: ['ignore', log, 'pipe'],
    },
  );
  await waitPort(p.port);
}
const url = (p, path = '/orders') => `https://127.0.0.1:${p.port}${path}`;

const { wrk, h2load } = createPostLoad({ bench, root, connections: C, seconds: S, streams: M, headers: [auth], bodyFile });

// The bench request passes both; the waf and the scanner must really be in force.
const probe = new Agent({ connect: { rejectUnauthorized: false } });
const post = async (u, body, type = 'application/json') => {
  const headers = { 'content-type': type, authorization: `Bearer ${token}` };
  const res = await request(u, { dispatcher: probe, method: 'POST', headers, body });
  await res.body.dump();
  return res.statusCode;
};
for (const p of peers) {
  const status = await post(url(p), JSON.stringify(order));
  if (status !== 200) throw new Error(`${p.name} answered ${status} to the bench request`);
}
const wafPeer = peers[1];
if ((await post(url(wafPeer), JSON.stringify({ ...order, note: "' OR 1=1 --" }))) !== 403)
  throw new Error('warden-waf let an injection through');
if ((await post(url(peers[0]), JSON.stringify({ ...order, customer: '' }))) !== 400)
  throw new Error('warden-policy does not validate bodies');
if ((await post(url(scanPeer, '/upload'), EICAR, 'application/octet-stream')) !== 422) throw new Error('warden-scan let EICAR through');
for (const p of peers) {
  const w = wrk(url(p));
  if (w.errors > 0) throw new Error(`${p.name} answered errors during warm-up (${w.errors})`);
}

// 1. waf throughput, interleaved.
const { h1, h2, h1cpu, raw, errors } = interleavedPairs({
  base: peers[0],
  candidate: peers[1],
  pairs: PAIRS,
  seconds: S,
  load: { wrk, h2load },
  url,
});

// 2. 1 MB uploads, one at a time, interleaved: scanned route, same route unscanned, clamd alone.
const upload = randomBytes(1024 * 1024);
const uploads = { scanned: [], plain: [], clamd: [] };
const session = clamdSession(clamdPort);
const timed = async (u) => {
  const started = performance.now();
  const res = await request(u, {
    dispatcher: probe,
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: upload,
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`${u} answered ${res.statusCode}`);
  return performance.now() - started;
};
for (let i = 0; i < 5; i++) await Promise.all([timed(url(scanPeer, '/upload')), timed(url(scanPeer, '/plain-upload'))]); // warm-up
for (let i = 0; i < UPLOADS; i++) {
  process.stderr.write(`\r1 MB uploads: ${i + 1}/${UPLOADS}`);
  uploads.scanned.push(await timed(url(scanPeer, '/upload')));
  uploads.plain.push(await timed(url(scanPeer, '/plain-upload')));
  let own;
  // clamd now and then closes a fresh connection under load (EPIPE): one retry.
  for (let attempt = 0; attempt < 3 && !own; attempt++) own = await session.scan(upload).catch(() => undefined);
  if (!own) throw new Error('clamd refused three connections in a row');
  if (own.line !== 'stream: OK') throw new Error(`clamd answered ${own.line}`);
  uploads.clamd.push(own.ms);
}
process.stderr.write('\n');
session.close();
await probe.close();

const rss = Object.fromEntries([...peers, scanPeer].map((p) => [p.name, peakRssMiB(p.child.pid)]));
for (const p of [...peers, scanPeer]) await stop(p.child);
await stop(idpChild);
await stop(backend);
await stop(clamd);

const p50 = (xs) => round3(median(xs));
const scan = { scanned_p50_ms: p50(uploads.scanned), unscanned_p50_ms: p50(uploads.plain), clamd_alone_p50_ms: p50(uploads.clamd) };
scan.added_p50_ms = round3(scan.scanned_p50_ms - scan.unscanned_p50_ms);
const result = {
  date: new Date().toISOString(),
  settings: {
    pairs: PAIRS,
    seconds: S,
    connections: C,
    h2_streams: M,
    body_bytes: bodyBytes,
    uploads: UPLOADS,
    upload_bytes: upload.length,
  },
  h1_waf_vs_policy: round3(median(h1)),
  h2_waf_vs_policy: round3(median(h2)),
  h1_cpu_per_req_waf_vs_policy: round3(median(h1cpu)),
  h1_pairs: h1,
  h2_pairs: h2,
  h1_cpu_pairs: h1cpu,
  scan,
  raw,
  errors,
  peak_rss_mib: rss,
};
result.targets = [
  {
    target: 'waf on a 1 KB JSON body ≥ 0.8 × without (h1, interleaved)',
    value: result.h1_waf_vs_policy,
    pass: result.h1_waf_vs_policy >= 0.8,
  },
  {
    target: "1 MB upload: scan adds ≤ clamd's own scan time + 2 ms at p50",
    value: `${scan.added_p50_ms} ms added vs ${scan.clamd_alone_p50_ms} + 2 ms`,
    pass: scan.added_p50_ms <= scan.clamd_alone_p50_ms + 2,
  },
];
console.log(
  `\nwarden-waf / warden-policy on a ${bodyBytes}-byte JSON POST: h1 ${result.h1_waf_vs_policy} (pairs ${h1.join(', ')})  h2 ${result.h2_waf_vs_policy} (pairs ${h2.join(', ')})`,
);
console.log(
  `h1 CPU per request ${result.h1_cpu_per_req_waf_vs_policy} (pairs ${h1cpu.join(', ')}); errors ${errors}; RSS MiB ${JSON.stringify(rss)}`,
);
console.log(
  `1 MB upload p50: scanned ${scan.scanned_p50_ms} ms, unscanned ${scan.unscanned_p50_ms} ms (added ${scan.added_p50_ms} ms); clamd alone ${scan.clamd_alone_p50_ms} ms`,
);
for (const t of result.targets) console.log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}`);
const outFile = writeResult(root, 'threats', result, opts.out);
console.log(`written: ${outFile}`);
process.exit(result.targets.every((t) => t.pass) && errors === 0 ? 0 : 1);
