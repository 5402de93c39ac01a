#!/usr/bin/env node
// Token translation's cost, measured side by side in one run: Warden with `access` only against
// Warden with access + introspection + scopes + minting, the same opaque token on every request
// (warm caches), interleaved A-B / B-A on HTTPS/1.1 (wrk) and h2 (h2load). Then the cold path: a
// request with a never-seen token (introspection + mint) against the IdP's own introspection
// latency, both measured sequentially from this process. See bench/README.md.
import { fork } from 'node:child_process';
import { openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import {
  benchWorkdir,
  cpuTicks,
  createBench,
  createFill,
  median,
  peakRssMiB,
  requireTools,
  startBenchIdp,
  cpuUsPerRequest,
  profileArgs,
  writeResult,
  benchOptions,
  wrkGet,
  h2loadGet,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions(
  'node bench/tokens.js [--pairs N] [--seconds S] [--connections N] [--streams N] [--cold N] [--out FILE] [--no-pin]',
  {
    pairs: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    streams: { type: 'string', default: '10' },
    cold: { type: 'string', default: '200' },
  },
);
requireTools(root, ['wrk', 'h2load', 'openssl']);
const PAIRS = Number(opts.pairs);
const S = Number(opts.seconds);
const C = Number(opts.connections);
const M = Number(opts.streams);
const COLD = Number(opts.cold);

const { work, cert, key } = benchWorkdir(root, `tokens-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const { LOAD_CPUS, moveTo, start, stop, waitPort } = bench;
const fill = createFill(join(root, 'bench/peers'), work);

// The IdP runs in a process of its own on the load cores: wrk and h2load run synchronously here.
const { child: idpChild, idp, ask } = await startBenchIdp(bench, root);
const scope = 'orders:read';
const [accessToken] = (await ask({ type: 'issue', scope, count: 1 }, 'tokens')).tokens;
const introspectionCount = async () => (await ask({ type: 'count' }, 'count')).count;
const audience = idp.audience;

const backendPort = 18090;
const backend = fork(join(root, 'bench/peers/backend.js'), [String(backendPort)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
bench.children.add(backend);
moveTo(backend.pid, LOAD_CPUS);
await new Promise((r) => backend.once('message', r));

const vars = {
  backendPort,
  cert,
  key,
  issuer: idp.issuer,
  audience,
  scope,
  clientId: idp.client.clientId,
  clientSecret: idp.client.clientSecret,
};
const peers = [
  { name: 'warden-access', port: 18460, file: 'warden-access.yaml', adminPort: 19960 },
  { name: 'warden-tokens', port: 18461, file: 'warden-tokens.yaml', adminPort: 19961 },
];
for (const p of peers) {
  // Each peer's log goes to the run folder, to see what happened when a figure looks wrong.
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
const url = (p) => `https://127.0.0.1:${p.port}/`;
const auth = `Authorization: Bearer ${accessToken}`;

function wrk(u) {
  const { rps, errors } = wrkGet(bench, root, u, { connections: C, seconds: S, headers: [auth] });
  return { rps, errors };
}
function h2load(u) {
  const { rps, errors } = h2loadGet(bench, u, { connections: C, streams: M, seconds: S, headers: [auth] });
  return { rps, errors };
}

// Warm-up: one request fills the introspection and minted-token caches; then wrk checks for errors.
const probe = new Agent({ connect: { rejectUnauthorized: false } });
for (const p of peers) {
  const res = await request(url(p), { dispatcher: probe, headers: { authorization: `Bearer ${accessToken}` } });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`${p.name} answered ${res.statusCode} to the bench token`);
}
await probe.close();
for (const p of peers) {
  const w = wrk(url(p));
  if (w.errors > 0) throw new Error(`${p.name} answered errors during warm-up (${w.errors}); is the token accepted?`);
}
const countBefore = await introspectionCount();
const h1 = [];
const h2 = [];
const h1cpu = [];
const raw = [];
let errors = 0;
for (let i = 0; i < PAIRS; i++) {
  process.stderr.write(`\rinterleaved warden-tokens vs warden-access: pair ${i + 1}/${PAIRS}`);
  const order = i % 2 === 0 ? peers : [...peers].reverse();
  const r1 = {};
  const r2 = {};
  for (const p of order) {
    // CPU time per request as well: less sensitive than rps to this host's speed drift.
    const before = cpuTicks(p.child.pid);
    r1[p.name] = wrk(url(p));
    r1[p.name].cpu_us_per_req = Math.round(cpuUsPerRequest(p.child.pid, before, r1[p.name].rps, S));
  }
  for (const p of order) r2[p.name] = h2load(url(p));
  for (const r of [...Object.values(r1), ...Object.values(r2)]) errors += r.errors;
  h1.push(Math.round((r1['warden-tokens'].rps / r1['warden-access'].rps) * 1000) / 1000);
  h2.push(Math.round((r2['warden-tokens'].rps / r2['warden-access'].rps) * 1000) / 1000);
  h1cpu.push(Math.round((r1['warden-tokens'].cpu_us_per_req / r1['warden-access'].cpu_us_per_req) * 1000) / 1000);
  raw.push({
    h1: Object.fromEntries(Object.entries(r1).map(([k, v]) => [k, v.rps])),
    h1_cpu_us_per_req: Object.fromEntries(Object.entries(r1).map(([k, v]) => [k, v.cpu_us_per_req])),
    h2: Object.fromEntries(Object.entries(r2).map(([k, v]) => [k, v.rps])),
  });
}
process.stderr.write('\n');
const warmCalls = (await introspectionCount()) - countBefore;
console.log(
  `\nwarm: warden-tokens / warden-access  h1 ${Math.round(median(h1) * 1000) / 1000} (pairs ${h1.join(', ')})  h2 ${Math.round(median(h2) * 1000) / 1000} (pairs ${h2.join(', ')})\n      h1 CPU per request ${Math.round(median(h1cpu) * 1000) / 1000} (pairs ${h1cpu.join(', ')})`,
);

// Cold path: fresh tokens, one sequential request each, through the sidecar; and the IdP's own
// introspection of other fresh tokens with the same client authentication.
const { tokens } = await ask({ type: 'issue', scope, count: COLD * 2 }, 'tokens');
const agent = new Agent({ connect: { rejectUnauthorized: false }, connections: 1 });
const sidecarMs = [];
for (const token of tokens.slice(0, COLD)) {
  const t0 = performance.now();
  const res = await request(url(peers[1]), { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
  await res.body.dump();
  if (res.statusCode !== 200) errors++;
  sidecarMs.push(performance.now() - t0);
}
const idpAgent = new Agent({ connections: 1 });
const basic = `Basic ${Buffer.from(`${vars.clientId}:${vars.clientSecret}`).toString('base64')}`;
const idpMs = [];
for (const token of tokens.slice(COLD)) {
  const t0 = performance.now();
  const res = await request(idp.introspectionEndpoint, {
    dispatcher: idpAgent,
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
  });
  await res.body.dump();
  idpMs.push(performance.now() - t0);
}
const warmMs = [];
for (let i = 0; i < COLD; i++) {
  const t0 = performance.now();
  const res = await request(url(peers[1]), { dispatcher: agent, headers: { authorization: `Bearer ${tokens[0]}` } });
  await res.body.dump();
  warmMs.push(performance.now() - t0);
}
const pct = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 1000) / 1000;
};
const rss = Object.fromEntries(peers.map((p) => [p.name, peakRssMiB(p.child.pid)]));
for (const p of peers) await stop(p.child);
await stop(backend);
await agent.close();
await idpAgent.close();
await stop(idpChild);

const result = {
  date: new Date().toISOString(),
  settings: { pairs: PAIRS, seconds: S, connections: C, h2_streams: M, cold_requests: COLD },
  warm: {
    h1_tokens_vs_access: Math.round(median(h1) * 1000) / 1000,
    h2_tokens_vs_access: Math.round(median(h2) * 1000) / 1000,
    h1_cpu_per_req_tokens_vs_access: Math.round(median(h1cpu) * 1000) / 1000,
    h1_pairs: h1,
    h1_cpu_pairs: h1cpu,
    h2_pairs: h2,
    raw,
    introspection_calls_during_warm_phase: warmCalls,
    errors,
  },
  cold: {
    sidecar_cache_miss_ms: { p50: pct(sidecarMs, 0.5), p99: pct(sidecarMs, 0.99) },
    sidecar_cache_hit_ms: { p50: pct(warmMs, 0.5), p99: pct(warmMs, 0.99) },
    idp_introspection_ms: { p50: pct(idpMs, 0.5), p99: pct(idpMs, 0.99) },
    miss_minus_hit_vs_idp_p50: Math.round(((pct(sidecarMs, 0.5) - pct(warmMs, 0.5)) / pct(idpMs, 0.5)) * 100) / 100,
  },
  peak_rss_mib: rss,
};
const target = {
  target: 'warm introspect + mint ≥ 0.85 × access-only (h1, interleaved)',
  value: result.warm.h1_tokens_vs_access,
  pass: result.warm.h1_tokens_vs_access >= 0.85,
};
result.targets = [target, { target: 'h2 (reported)', value: result.warm.h2_tokens_vs_access, pass: true }];
console.log(`      introspection calls while warm: ${warmCalls}; errors: ${errors}; RSS MiB ${JSON.stringify(rss)}`);
console.log(
  `cold: cache miss p50 ${result.cold.sidecar_cache_miss_ms.p50} ms / p99 ${result.cold.sidecar_cache_miss_ms.p99} ms through the sidecar; hit p50 ${result.cold.sidecar_cache_hit_ms.p50} ms`,
);
console.log(
  `      the IdP's own introspection p50 ${result.cold.idp_introspection_ms.p50} ms / p99 ${result.cold.idp_introspection_ms.p99} ms; (miss − hit) / IdP p50 = ${result.cold.miss_minus_hit_vs_idp_p50}`,
);
console.log(`${target.pass ? 'PASS' : 'FAIL'}  ${target.target}: ${target.value}`);
const outFile = writeResult(root, 'tokens', result, opts.out);
console.log(`written: ${outFile}`);
process.exit(target.pass && errors === 0 ? 0 : 1);
