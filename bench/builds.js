#!/usr/bin/env node
// Two builds of Warden, the same configuration, loaded at once on the same core (concurrentPairs in
// lib.js): what a change costs or saves, free of the host's drift. Each build is a git revision
// (checked out into bench/tmp/builds/<sha> and compiled there, with this checkout's node_modules,
// or its own when its package-lock.json differs)
// or a folder that holds bin/ and dist/ (a build patched by hand, for instance). A configuration
// that names the IdP ({{issuer}}: warden-full-tls.yaml, the full pipeline) gets the bench's IdP, an
// opaque token on every request and bench/full.js's order body.
// The same build twice with two configurations (--candidate-config) measures what a part of the
// configuration costs, e.g. the full pipeline with and without OpenTelemetry export.
// --method h2 loads both over h2 (h2load, 32 connections × 10 streams) instead of HTTPS/1.1 (wrk).
// --unique makes the body's customer and note new on every request (HTTPS/1.1 only): the worst case
// for a per-string cache such as the waf's clean strings.
// Usage: node bench/builds.js BASE CANDIDATE [--config warden-otel.yaml] [--candidate-config FILE] [--method h1|h2] [--ratio 1] [--rounds 6] [--seconds 4] [--unique]
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, openSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  benchCaller,
  benchWorkdir,
  concurrentPairs,
  createBench,
  createFill,
  createPostLoad,
  forkOnLoadCores,
  median,
  peakRssMiB,
  requireTools,
  writeResult,
  round3,
  uniqueStringsBody,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const usage =
  'node bench/builds.js BASE CANDIDATE [--config FILE] [--candidate-config FILE] [--method h1|h2] [--ratio R] [--rounds N] [--seconds S] [--base-node-args ARGS] [--candidate-node-args ARGS] [--unique] [--out FILE] [--no-pin]';
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  allowNegative: true,
  options: {
    config: { type: 'string', default: 'warden-otel.yaml' },
    // The candidate's configuration when it differs from the base's (--config).
    'candidate-config': { type: 'string' },
    method: { type: 'string', default: 'h1' },
    ratio: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '4' },
    // Node/V8 flags for one side, e.g. --candidate-node-args="--max-semi-space-size=2" with the same build twice.
    'base-node-args': { type: 'string', default: '' },
    'candidate-node-args': { type: 'string', default: '' },
    out: { type: 'string' },
    pin: { type: 'boolean', default: true },
    // New customer and note strings on every request (HTTPS/1.1 only): no per-string cache helps.
    unique: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help || positionals.length !== 2 || !['h1', 'h2'].includes(opts.method) || (opts.unique && opts.method !== 'h1')) {
  console.error(`Usage: ${usage}`);
  process.exit(opts.help ? 0 : 2);
}
requireTools(root, [opts.method === 'h2' ? 'h2load' : 'wrk', 'openssl']);

/**
 * The build's node_modules: this checkout's (a symlink) when its package-lock.json is the same,
 * else its own, installed with `npm ci` (~1.5 min, once): a build from before a dependency was
 * dropped still needs it.
 */
function modulesFor(dir) {
  const modules = join(dir, 'node_modules');
  const sameLock = readFileSync(join(dir, 'package-lock.json'), 'utf8') === readFileSync(join(root, 'package-lock.json'), 'utf8');
  if (sameLock) {
    if (!existsSync(modules)) symlinkSync(join(root, 'node_modules'), modules);
    return;
  }
  if (existsSync(modules) && lstatSync(modules).isSymbolicLink()) unlinkSync(modules);
  if (!existsSync(modules)) execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
}

/** A folder with bin/ and dist/ for a build given as a folder or a git revision. */
function buildOf(spec) {
  if (existsSync(join(spec, 'dist/cli/main.js'))) return { spec, dir: resolve(spec) };
  const sha = execFileSync('git', ['rev-parse', '--short', `${spec}^{commit}`], { cwd: root, encoding: 'utf8' }).trim();
  const dir = join(root, 'bench/tmp/builds', sha);
  if (!existsSync(dir)) execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: root, stdio: 'ignore' });
  modulesFor(dir);
  if (!existsSync(join(dir, 'dist/cli/main.js'))) {
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: dir,
      stdio: 'inherit',
    });
  }
  return { spec, sha, dir };
}
const builds = positionals.map(buildOf);

const { work, cert, key } = benchWorkdir(root, `builds-${Date.now()}`);
const bench = createBench({ pin: opts.pin });
const fill = createFill(join(root, 'bench/peers'), work);
const bodyFile = join(work, 'body.json');
const backendPort = 18095;
const sinkPort = 18319;
const backend = await forkOnLoadCores(bench, root, 'bench/peers/backend.js', [backendPort]);
const sink = await forkOnLoadCores(bench, root, 'bench/peers/otlp-sink.js', [sinkPort]);
const caller = await benchCaller(bench, root, readFileSync(join(root, 'bench/peers', opts.config), 'utf8'));
const { headers } = caller;
writeFileSync(bodyFile, JSON.stringify(caller.body));
const uniqueBodyFile = join(work, 'body-unique.json');
writeFileSync(uniqueBodyFile, JSON.stringify(uniqueStringsBody(caller.body)));

const configs = [opts.config, opts['candidate-config'] ?? opts.config];
const peers = builds.map((b, i) => ({
  ...b,
  name: i === 0 ? 'base' : 'candidate',
  port: 18490 + i,
  adminPort: 19990 + i,
  configFile: configs[i],
}));
for (const p of peers) {
  const config = fill(
    p.configFile,
    {
      backendPort,
      sinkPort,
      cert,
      key,
      port: p.port,
      adminPort: p.adminPort,
      ratio: opts.ratio,
      ...caller.vars,
    },
    `${p.name}-${p.configFile}`,
  );
  const nodeArgs = opts[`${p.name}-node-args`].split(' ').filter(Boolean);
  p.child = bench.start(process.execPath, [...nodeArgs, join(p.dir, 'bin/warden.js'), 'proxy', '-c', config], {
    stdio: ['ignore', openSync(join(work, `${p.name}.log`), 'w'), 'pipe'],
  });
  await bench.waitPort(p.port);
}
const S = Number(opts.seconds);
const load = createPostLoad({
  bench,
  root,
  connections: 32,
  seconds: S,
  streams: 10,
  headers,
  bodyFile,
  uniqueBodyFile: opts.unique ? uniqueBodyFile : undefined,
});
const url = (p) => `https://127.0.0.1:${p.port}/orders`;
const M = opts.method;
const r = await concurrentPairs({ base: peers[0], candidate: peers[1], rounds: Number(opts.rounds), seconds: S, load, url, method: M });
const peakRss = Object.fromEntries(peers.map((p) => [p.name, peakRssMiB(p.child.pid)]));
for (const p of peers) await bench.stop(p.child);
await bench.stop(sink);
await bench.stop(backend);
if (caller.idpChild) await bench.stop(caller.idpChild);

const result = {
  date: new Date().toISOString(),
  settings: {
    config: opts.config,
    candidate_config: configs[1],
    method: M,
    unique_strings: opts.unique,
    ratio: Number(opts.ratio),
    rounds: Number(opts.rounds),
    seconds: S,
    base_node_args: opts['base-node-args'],
    candidate_node_args: opts['candidate-node-args'],
  },
  base: { build: builds[0].spec, sha: builds[0].sha },
  candidate: { build: builds[1].spec, sha: builds[1].sha },
  candidate_over_base: {
    [M]: round3(median(r[M])),
    [`${M}_cpu`]: round3(median(r[`${M}cpu`])),
    [`${M}_rounds`]: r[M],
    errors: r.errors,
    fair_share: r.fairShare,
  },
  peak_rss_mib: peakRss,
};
console.log(
  `${builds[1].spec} ÷ ${builds[0].spec}, loaded at once over ${M} (${configs[0] === configs[1] ? configs[0] : configs.join(' → ')}): ` +
    `rps ${result.candidate_over_base[M]} (rounds ${r[M].join(', ')}), CPU per request ${result.candidate_over_base[`${M}_cpu`]}; errors ${r.errors}; ` +
    `peak RSS MiB base ${peakRss.base}, candidate ${peakRss.candidate}`,
);
console.log(`written: ${writeResult(root, 'builds', result, opts.out)}`);
