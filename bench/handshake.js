#!/usr/bin/env node
// New-connection rate with mutual TLS: full handshakes (ECDSA P-256 certificates with SPIFFE IDs,
// client certificate required and verified) plus one request per connection, through Warden, nginx
// and the bare Node proxy, side by side in one run. See bench/README.md.
import { execFile, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createBench,
  createFill,
  cpuTicks,
  has,
  median,
  mtlsMaterial,
  TICK_US,
  version,
  profileArgs,
  writeResult,
  benchOptions,
} from './lib.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const opts = benchOptions('node bench/handshake.js [--duration S] [--rounds N] [--clients N] [--out FILE] [--no-pin]', {
  duration: { type: 'string', default: '5' },
  rounds: { type: 'string', default: '3' },
  clients: { type: 'string', default: '4' },
});
const D = Number(opts.duration);
const ROUNDS = Number(opts.rounds);
const CLIENTS = Number(opts.clients);
if (!has('openssl') || !existsSync(join(root, 'dist/cli/main.js'))) {
  console.error('bench: needs openssl and a build (npm run build)');
  process.exit(2);
}
const bench = createBench({ pin: opts.pin });
const { onCpus, start, stop, waitPort, LOAD_CPUS } = bench;

// One CA, a server and a client certificate, all ECDSA P-256 with SPIFFE IDs, made by openssl.
const work = join(root, 'bench/tmp', `mtls-${Date.now()}`);
const { cert, key, ca, clientCert, clientKey } = mtlsMaterial(work);

const fill = createFill(join(root, 'bench/peers'), work);

const backendPort = 18080;
const peers = [
  {
    name: 'bare-node',
    port: 18460,
    launch: (p) =>
      start(process.execPath, [
        join(root, 'bench/peers/bare-node-proxy.js'),
        p.port,
        p.port + 1,
        `http://127.0.0.1:${backendPort}`,
        cert,
        key,
        ca,
      ]),
  },
  {
    name: 'warden',
    port: 18462,
    launch: (p) =>
      start(process.execPath, [
        ...profileArgs('warden'),
        join(root, 'bin/warden.js'),
        'proxy',
        '-c',
        fill('warden-mtls.yaml', { port: p.port, adminPort: 19960, backendPort, cert, key, ca }),
      ]),
  },
  has('nginx') && {
    name: 'nginx',
    port: 18463,
    launch: (p) => start('nginx', ['-c', fill('nginx-mtls.conf', { port: p.port, backendPort, cert, key, ca, dir: work }), '-p', work]),
  },
].filter(Boolean);

/** CLIENTS parallel `openssl s_time -new`: every connection a full handshake with the client certificate, then GET /. */
async function handshakes(port, seconds) {
  const started = process.hrtime.bigint();
  const runs = Array.from({ length: CLIENTS }, () => {
    const [cmd, args] = onCpus(LOAD_CPUS, 'openssl', [
      's_time',
      '-connect',
      `127.0.0.1:${port}`,
      '-new',
      '-time',
      String(seconds),
      '-cert',
      clientCert,
      '-key',
      clientKey,
      '-www',
      '/',
    ]);
    return new Promise((res) => execFile(cmd, args, { encoding: 'utf8' }, (err, stdout) => res(err ? '' : stdout)));
  });
  let connections = 0;
  for (const out of await Promise.all(runs)) connections += Number(/(\d+) connections in [\d.]+ real seconds/.exec(out)?.[1] ?? 0);
  // s_time reports whole seconds and runs past -time to finish its last connection: time it here.
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { connections, wallSeconds, rate: Math.round(connections / wallSeconds) };
}

const backend = fork(join(root, 'bench/peers/backend.js'), [String(backendPort)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
bench.children.add(backend);
await new Promise((res, rej) => {
  backend.once('message', res);
  backend.once('exit', (code) => rej(new Error(`bench backend exited (${code}); is port ${backendPort} free?`)));
});
bench.moveTo(backend.pid, LOAD_CPUS);

// Correctness first: without a client certificate every peer must refuse.
const rounds = new Map(peers.map((p) => [p.name, []]));
for (let round = 1; round <= ROUNDS; round++) {
  for (const peer of peers) {
    const child = peer.launch(peer);
    await waitPort(peer.port);
    const refused = await new Promise((res) =>
      execFile('curl', ['-sk', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${peer.port}/`], (err, out) =>
        res(err !== null || out !== '200'),
      ),
    );
    if (!refused) throw new Error(`${peer.name} answered without a client certificate`);
    await handshakes(peer.port, 1); // warm-up
    const before = cpuTicks(child.pid);
    const { connections, wallSeconds, rate } = await handshakes(peer.port, D);
    const cpuUs = (cpuTicks(child.pid) - before) * TICK_US;
    const cpuPerConn = Math.round(cpuUs / Math.max(1, connections));
    // Below ~90 % the load generator, not the server, set the pace: compare µs CPU per connection then.
    const busy = Math.round((cpuUs / 1e6 / wallSeconds) * 100);
    rounds.get(peer.name).push({ connections_per_s: rate, cpu_us_per_connection: cpuPerConn, server_busy_pct: busy });
    process.stderr.write(
      `round ${round}/${ROUNDS} ${peer.name}: ${rate} mTLS connections/s, ${cpuPerConn} µs CPU each, server ${busy} % busy\n`,
    );
    await stop(child);
  }
}
await bench.stop(backend);

const paired = (name, base) => {
  const a = rounds.get(name);
  const b = rounds.get(base);
  return a && b ? Math.round(median(a.map((r, i) => r.connections_per_s / b[i].connections_per_s)) * 100) / 100 : null;
};
const pairedCpu = (name, base) => {
  const a = rounds.get(name);
  const b = rounds.get(base);
  return a && b ? Math.round(median(a.map((r, i) => r.cpu_us_per_connection / b[i].cpu_us_per_connection)) * 100) / 100 : null;
};
const summary = peers.map((p) => ({
  peer: p.name,
  connections_per_s: median(rounds.get(p.name).map((r) => r.connections_per_s)),
  cpu_us_per_connection: median(rounds.get(p.name).map((r) => r.cpu_us_per_connection)),
  server_busy_pct: median(rounds.get(p.name).map((r) => r.server_busy_pct)),
  cpu_per_connection_vs_nginx: pairedCpu(p.name, 'nginx'),
  vs_nginx: paired(p.name, 'nginx'),
  vs_bare_node: paired(p.name, 'bare-node'),
}));
console.log('\n          peer  conn/s  busy %  µs CPU/conn  conn/s ×nginx  CPU/conn ×nginx  conn/s ×bare-node');
for (const s of summary) {
  const cells = [
    s.connections_per_s,
    s.server_busy_pct,
    s.cpu_us_per_connection,
    s.vs_nginx,
    s.cpu_per_connection_vs_nginx,
    s.vs_bare_node,
  ];
  console.log(s.peer.padStart(14) + cells.map((c, i) => String(c ?? '—').padStart([8, 8, 13, 15, 17, 19][i])).join(''));
}
console.log(
  `\n${CLIENTS} × openssl s_time -new -www / (full TLS 1.3 handshake with client certificate + one request per connection), ${D} s, median of ${ROUNDS} rounds; ratios paired per round.`,
);

const result = {
  date: new Date().toISOString(),
  kind: 'mtls-handshakes',
  machine: {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    kernel: os.release(),
    node: process.version,
    nginx: has('nginx') ? version('nginx', ['-v']) : null,
    openssl: version('openssl', ['version']),
  },
  settings: {
    duration_s: D,
    rounds: ROUNDS,
    clients: CLIENTS,
    certificates: 'ECDSA P-256, SPIFFE URI SAN, one CA',
    cpu_pinning: bench.PIN ? { process_under_test: bench.TEST_CPU, backend_and_load: LOAD_CPUS } : null,
  },
  summary,
  rounds: Object.fromEntries(rounds),
};
const outFile = writeResult(root, 'mtls', result, opts.out);
console.log(`written: ${outFile}`);
