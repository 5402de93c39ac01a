#!/usr/bin/env node
// The OpenAPI policy's cost on a typical JSON POST (~1 KB body), measured side by side in one run:
// Warden with `access` only against Warden with access + JWT authn + scopes from the document +
// rate limit + body validation + a minted token, interleaved A-B / B-A on HTTPS/1.1 (wrk) and h2
// (h2load), with server CPU per request for HTTPS/1.1. See bench/README.md.
import { fork } from 'node:child_process';
import { openSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import {
  benchWorkdir,
  createBench,
  createFill,
  createPostLoad,
  interleavedPairs,
  median,
  peakRssMiB,
  requireTools,
  startBenchIdp,
  profileArgs,
  writeResult,
  benchOptions,
  round3,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions('node bench/policy.js [--pairs N] [--seconds S] [--connections N] [--streams N] [--out FILE] [--no-pin]', {
  pairs: { type: 'string', default: '8' },
  seconds: { type: 'string', default: '3' },
  connections: { type: 'string', default: '32' },
  streams: { type: 'string', default: '10' },
});
requireTools(root, ['wrk', 'h2load', 'openssl']);
const [PAIRS, S, C, M] = [opts.pairs, opts.seconds, opts.connections, opts.streams].map(Number);
const { work, cert, key } = benchWorkdir(root, `policy-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const { LOAD_CPUS, moveTo, start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);

// A ~1 KB order, valid against bench/peers/policy-openapi.yaml.
const order = {
  customer: 'ACME Corporation, purchasing department',
  note: 'Deliver to the loading dock at the rear of the building; call ahead. '.repeat(3),
  items: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${1000 + i}`, quantity: i + 1, price: 9.99 + i })),
};
const bodyFile = join(work, 'order.json');
writeFileSync(bodyFile, JSON.stringify(order));
const bodyBytes = Buffer.byteLength(JSON.stringify(order));

const { child: idpChild, idp, ask } = await startBenchIdp(bench, root);
// A JWT access token (RFC 9068) verified locally with the IdP's keys: the common case for APIs.
const [token] = (await ask({ type: 'issue', scope: 'orders:read orders:write', resource: idp.audience, count: 1 }, 'tokens')).tokens;

const backendPort = 18091;
const backend = fork(join(root, 'bench/peers/backend.js'), [String(backendPort)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
bench.children.add(backend);
moveTo(backend.pid, LOAD_CPUS);
await new Promise((r) => backend.once('message', r));

const vars = { backendPort, cert, key, issuer: idp.issuer, audience: idp.audience, openapi: join(root, 'bench/peers/policy-openapi.yaml') };
const peers = [
  { name: 'warden-access', port: 18462, file: 'warden-access.yaml', adminPort: 19962 },
  { name: 'warden-policy', port: 18463, file: 'warden-policy.yaml', adminPort: 19963 },
];
for (const p of peers) {
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
const url = (p) => `https://127.0.0.1:${p.port}/orders`;
const auth = `Authorization: Bearer ${token}`;

const { wrk, h2load } = createPostLoad({ bench, root, connections: C, seconds: S, streams: M, headers: [auth], bodyFile });

// Both peers must answer the bench request with 200 (the policy peer: valid token, scope, body).
const probe = new Agent({ connect: { rejectUnauthorized: false } });
for (const p of peers) {
  const res = await request(url(p), {
    dispatcher: probe,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(order),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${p.name} answered ${res.statusCode} to the bench request: ${text.slice(0, 300)}`);
}
// …and the policy must really be in force: an invalid body and a missing token are refused.
const policyPeer = peers[1];
for (const [what, headers, body, expected] of [
  ['an invalid body', { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, '{"customer":""}', 400],
  ['no token', { 'content-type': 'application/json' }, JSON.stringify(order), 401],
]) {
  const res = await request(url(policyPeer), { dispatcher: probe, method: 'POST', headers, body });
  await res.body.dump();
  if (res.statusCode !== expected) throw new Error(`warden-policy answered ${res.statusCode} to ${what}, expected ${expected}`);
}
await probe.close();
for (const p of peers) {
  const w = wrk(url(p));
  if (w.errors > 0) throw new Error(`${p.name} answered errors during warm-up (${w.errors})`);
}

const { h1, h2, h1cpu, raw, errors } = interleavedPairs({
  base: peers[0],
  candidate: peers[1],
  pairs: PAIRS,
  seconds: S,
  load: { wrk, h2load },
  url,
});
const rss = Object.fromEntries(peers.map((p) => [p.name, peakRssMiB(p.child.pid)]));
for (const p of peers) await stop(p.child);
await stop(backend);
await stop(idpChild);

const result = {
  date: new Date().toISOString(),
  settings: { pairs: PAIRS, seconds: S, connections: C, h2_streams: M, body_bytes: bodyBytes },
  h1_policy_vs_access: round3(median(h1)),
  h2_policy_vs_access: round3(median(h2)),
  h1_cpu_per_req_policy_vs_access: round3(median(h1cpu)),
  h1_pairs: h1,
  h2_pairs: h2,
  h1_cpu_pairs: h1cpu,
  raw,
  errors,
  peak_rss_mib: rss,
};
result.targets = [
  {
    target: 'validation + scopes + rate-limit ≥ 0.8 × access-only (h1, interleaved)',
    value: result.h1_policy_vs_access,
    pass: result.h1_policy_vs_access >= 0.8,
  },
];
console.log(
  `\nwarden-policy / warden-access on a ${bodyBytes}-byte JSON POST: h1 ${result.h1_policy_vs_access} (pairs ${h1.join(', ')})  h2 ${result.h2_policy_vs_access} (pairs ${h2.join(', ')})`,
);
console.log(
  `h1 CPU per request ${result.h1_cpu_per_req_policy_vs_access} (pairs ${h1cpu.join(', ')}); errors ${errors}; RSS MiB ${JSON.stringify(rss)}`,
);
console.log(`${result.targets[0].pass ? 'PASS' : 'FAIL'}  ${result.targets[0].target}: ${result.targets[0].value}`);
const outFile = writeResult(root, 'policy', result, opts.out);
console.log(`written: ${outFile}`);
process.exit(result.targets[0].pass && errors === 0 ? 0 : 1);
