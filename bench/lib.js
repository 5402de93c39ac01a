// Shared by the bench scripts: child processes, CPU pinning, ports, CPU time and memory of a process.
import { execFileSync, fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { connect } from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';

export const has = (bin) => {
  try {
    execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

export function version(cmd, args) {
  // nginx prints its version on stderr, wrk exits 1 after printing it: take the first line of either.
  const first = (text) => (text ?? '').toString().split('\n')[0].trim();
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return first(r.stdout) || first(r.stderr) || null;
}

/**
 * How long a run of a load tool may take: twice its duration plus 10 s. h2load -D never ends when
 * one of its connections is set up after the duration is over (a peer slow to accept: cold, or
 * starved of CPU by another peer loaded at once): it stops the clients connected by then, and a late
 * one keeps sending for good (nghttp2 1.52; reproduced with a proxy that held back 3 of 32
 * connections for 3 s against `-D 2`). Every run of wrk or h2load is bounded by this: past it the
 * tool is killed and the run fails with LoadToolTimeout instead of hanging the bench.
 */
export function loadDeadlineMs(seconds) {
  return (2 * Number(seconds) + 10) * 1000;
}

export class LoadToolTimeout extends Error {
  constructor(tool, seconds) {
    super(
      `${tool} did not end within ${loadDeadlineMs(seconds) / 1000} s of a ${seconds} s run and was killed (see loadDeadlineMs in bench/lib.js)`,
    );
    this.name = 'LoadToolTimeout';
  }
}

/** Runs a load tool on the load cores to its end, bounded by loadDeadlineMs(seconds); returns its stdout. */
export function runLoadTool(bench, tool, args, seconds, env = process.env) {
  try {
    return execFileSync(...bench.onCpus(bench.LOAD_CPUS, tool, args), {
      encoding: 'utf8',
      env,
      timeout: loadDeadlineMs(seconds),
      killSignal: 'SIGKILL',
    });
  } catch (err) {
    if (err.code === 'ETIMEDOUT') throw new LoadToolTimeout(tool, seconds);
    throw err;
  }
}

/** CPU time (user + system, clock ticks) of a process and its descendants (nginx's worker). */
export function cpuTicks(pid) {
  let total = 0;
  for (const p of [pid, ...descendantsOf(pid)]) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      total += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process is gone
    }
  }
  return total;
}

/** Every process below `pid` (children of all its threads, recursively). */
function descendantsOf(pid) {
  const out = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean))
        out.push(Number(child), ...descendantsOf(child));
  } catch {
    // the process is gone
  }
  return out;
}
export const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** A process's CPU µs per request over a load run that began at `ticksBefore` (cpuTicks). */
export const cpuUsPerRequest = (pid, ticksBefore, rps, seconds) => ((cpuTicks(pid) - ticksBefore) * TICK_US) / (rps * seconds);
/** x ÷ y to three decimals: the ratio the pair benches report. */
export const ratio = (x, y) => Math.round((x / y) * 1000) / 1000;

/** A memory field of /proc/<pid>/status (VmRSS, VmHWM, RssAnon…) in MiB, or null once the process is gone. */
export function statusMiB(pid, field) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return Math.round(kb / 1024);
  } catch {
    return null;
  }
}

/** The process's peak RSS so far (VmHWM), MiB. */
export const peakRssMiB = (pid) => statusMiB(pid, 'VmHWM');

export const round3 = (x) => Math.round(x * 1000) / 1000;
/** The value at quantile `q` (0–1) of ascending `sorted` numbers, 0 when there are none. */
export const quantile = (sorted, q) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
/** p50, p99 and p99.9 of ascending `sorted` milliseconds, rounded to µs, as `<prefix>p50_ms` and so on. */
export const latencyQuantiles = (sorted, prefix = '') => ({
  [`${prefix}p50_ms`]: round3(quantile(sorted, 0.5)),
  [`${prefix}p99_ms`]: round3(quantile(sorted, 0.99)),
  [`${prefix}p999_ms`]: round3(quantile(sorted, 0.999)),
});

export const median = (xs) => {
  const s = xs.filter((x) => x !== null && !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const mid = (s.length - 1) / 2;
  // Rounded: the mean of the middle two is printed and stored, and 0.688 and 0.511 gave 0.5994999999999999.
  return Number(((s[Math.floor(mid)] + s[Math.ceil(mid)]) / 2).toFixed(4));
};

/**
 * Processes of one bench run. With two or more cores and taskset, the process under test gets the
 * last core to itself and the backend and load generators share the others: each proxy is measured
 * on the same single core, and none of them competes with the load generator for it (that
 * contention made unpinned runs drift by ±30 %).
 */
export function createBench({ pin = true } = {}) {
  const cores = os.cpus().length;
  const PIN = pin && cores >= 2 && has('taskset');
  const TEST_CPU = String(cores - 1);
  const LOAD_CPUS = cores > 2 ? `0-${cores - 2}` : '0';
  const onCpus = (cpus, cmd, args) => (PIN ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args]);
  const moveTo = (pid, cpus) => PIN && execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });

  const children = new Set();
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
  });
  process.on('SIGINT', () => process.exit(130));

  function start(command, commandArgs, opts = {}) {
    const [cmd, args] = onCpus(TEST_CPU, command, commandArgs);
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let stderr = '';
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      children.delete(child);
      if (code && code !== 0 && !child.killed) console.error(`${cmd} exited ${code}: ${stderr.slice(0, 500)}`);
    });
    children.add(child);
    return child;
  }

  function stop(child) {
    return new Promise((res) => {
      if (child.exitCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
      // Past a drain's usual second or two, and the CPU profile's writing.
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
  }

  /** Resolves once `port` accepts a connection, trying every `intervalMs` (bench/idle-rss.js times a start with 10). */
  function waitPort(port, timeoutMs = 10_000, intervalMs = 100) {
    const deadline = Date.now() + timeoutMs;
    return new Promise((res, rej) => {
      const attempt = () => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          res();
        });
        s.once('error', () => {
          s.destroy();
          if (Date.now() > deadline) rej(new Error(`port ${port} did not open`));
          else setTimeout(attempt, intervalMs);
        });
      };
      attempt();
    });
  }

  return { PIN, TEST_CPU, LOAD_CPUS, onCpus, moveTo, start, stop, waitPort, children };
}

/**
 * Node options for a Warden peer: WARDEN_BENCH_NODE_ARGS as given, and a CPU profile when WARDEN_BENCH_PROFILE names a folder
 * (open the .cpuprofile in Chrome DevTools or speedscope for a flame graph).
 */
export function profileArgs(name) {
  const dir = process.env.WARDEN_BENCH_PROFILE;
  return [...benchNodeArgs(), ...(dir ? cpuProfileArgs(dir, name) : [])];
}

/** WARDEN_BENCH_NODE_ARGS: V8/Node flags for every Warden peer, e.g. "--max-semi-space-size=4". */
export function benchNodeArgs() {
  return (process.env.WARDEN_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
}

/** Node options that write a CPU profile of the process to DIR/NAME.cpuprofile when it exits. */
export function cpuProfileArgs(dir, name) {
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}.cpuprofile`];
}

/** A .cpuprofile file, with its nodes by id and each node's parent id. */
export function readCpuProfile(file) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  return { profile, ...indexCpuProfile(profile) };
}

/** A CPU profile's nodes by id, and each node's parent id. */
export function indexCpuProfile(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return { byId, parent };
}

/**
 * A bench's command line: its own options plus --out FILE, --no-pin and --help, which prints
 * `Usage: <usage>` and exits.
 */
export function benchOptions(usage, options) {
  const { values } = parseArgs({
    allowNegative: true, // --no-pin
    options: { ...options, out: { type: 'string' }, pin: { type: 'boolean', default: true }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    console.log(`Usage: ${usage}`);
    process.exit(0);
  }
  return values;
}

/**
 * Writes a bench's result as JSON: to `out` when given, else bench/results/NAME-<date>.json
 * (the date of `result.date`, colons as dashes). Returns the file's path.
 */
export function writeResult(root, name, result, out) {
  const file = out ?? join(root, 'bench/results', `${name}-${result.date.slice(0, 19).replace(/:/g, '-')}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

/**
 * Copies a peer's config template into the run's folder with its {{placeholders}} filled in, under
 * the template's name or `as` (two peers filled from one template need two names).
 */
export function createFill(templates, work) {
  return (file, vars, as = file) => {
    let text = readFileSync(join(templates, file), 'utf8');
    for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{{${k}}}`, String(v));
    const out = join(work, as);
    writeFileSync(out, text);
    return out;
  };
}

/** Exits with one line naming what is missing: load tools, or the build the bench runs. */
export function requireTools(root, bins) {
  for (const bin of bins) {
    if (!has(bin)) {
      console.error(`bench: ${bin} is not installed (apt-get install wrk nghttp2-client openssl)`);
      process.exit(2);
    }
  }
  if (!existsSync(join(root, 'dist/cli/main.js'))) {
    console.error('bench: dist/ is missing; run npm run build first');
    process.exit(2);
  }
}

/** A fresh folder under bench/tmp with a self-signed ECDSA P-256 certificate for localhost / 127.0.0.1. */
export function benchWorkdir(root, name) {
  const work = join(root, 'bench/tmp', name);
  mkdirSync(work, { recursive: true });
  const cert = join(work, 'tls.crt');
  const key = join(work, 'tls.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1'].concat([
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]),
    { stdio: 'ignore' },
  );
  return { work, cert, key };
}

/**
 * A CA and a server and a client certificate signed by it, all ECDSA P-256 with SPIFFE IDs
 * (spiffe://bench.test/ns/bench/sa/server and …/client), made by openssl in `work`.
 */
export function mtlsMaterial(work) {
  mkdirSync(work, { recursive: true });
  const f = (name) => join(work, name);
  const ossl = (args) => execFileSync('openssl', args, { stdio: 'ignore', cwd: work });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl(
    ['req', '-x509', ...newKey, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=bench-ca'].concat([
      '-addext',
      'basicConstraints=critical,CA:true',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]),
  );
  for (const name of ['server', 'client']) {
    ossl(['req', ...newKey, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', '/O=bench']);
    writeFileSync(
      f(`${name}.ext`),
      `basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://bench.test/ns/bench/sa/${name},DNS:localhost,IP:127.0.0.1\n`,
    );
    ossl(
      ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1'].concat([
        '-extfile',
        f(`${name}.ext`),
        '-out',
        f(`${name}.pem`),
      ]),
    );
  }
  return { cert: f('server.pem'), key: f('server.key'), ca: f('ca.pem'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

/**
 * A helper process on the load cores and its first message, which says it is ready. One that
 * cannot start (its port taken by a leftover process, say) exits: that fails the bench with its
 * error line instead of waiting forever.
 */
async function forkReady(bench, root, file, args = []) {
  const child = fork(join(root, file), args.map(String), { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  bench.children.add(child);
  bench.moveTo(child.pid, bench.LOAD_CPUS);
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => {
      const lines = stderr.split('\n').filter((l) => l.trim());
      const why = lines.find((l) => /Error|EADDRINUSE/.test(l)) ?? lines.at(-1) ?? '';
      reject(new Error(`${file} ${args.join(' ')} exited (${code}) before it was ready: ${why.trim()}`));
    });
  });
  return { child, ready };
}

/** A helper process (backend, OTLP sink, load client) on the load cores, once it says it is ready. */
export async function forkOnLoadCores(bench, root, file, args = []) {
  return (await forkReady(bench, root, file, args)).child;
}

/**
 * The demo OpenID provider in a process of its own on the load cores (bench/peers/idp.js): `ask`
 * sends a message and resolves with the reply of the given type.
 */
export async function startBenchIdp(bench, root) {
  const { child, ready: idp } = await forkReady(bench, root, 'bench/peers/idp.js');
  const ask = (msg, type) =>
    new Promise((resolve) => {
      const on = (m) => {
        if (m.type !== type) return;
        child.off('message', on);
        resolve(m);
      };
      child.on('message', on);
      child.send(msg);
    });
  return { child, idp, ask };
}

/** What the peers' templates read of the bench IdP ({{issuer}}, {{clientId}}, …) and the OpenAPI document they validate against. */
export function idpTemplateVars(root, idp) {
  return {
    issuer: idp.issuer,
    audience: idp.audience,
    clientId: idp.client.clientId,
    clientSecret: idp.client.clientSecret,
    openapi: join(root, 'bench/peers/policy-openapi.yaml'),
  };
}

/** The full pipeline's request body: a small order, valid against bench/peers/policy-openapi.yaml. */
export const SMALL_ORDER = Object.freeze({
  customer: "O'Brien & Sons",
  note: 'Deliver to the loading dock; call ahead.',
  items: [{ sku: 'SKU-1000', quantity: 2, price: 9.99 }],
});

/** The access pipeline's request body (bench/telemetry.js, bench/builds.js, bench/gc-survival.js). */
export const ACCESS_ORDER = Object.freeze({ customer: 'ACME', items: [{ sku: 'SKU-1', quantity: 2 }] });

/**
 * What a configuration's requests need from the bench. One that names the IdP ({{issuer}}: the full
 * pipeline) gets the bench's IdP, one opaque token (a busy caller's: each use after the first is a
 * cache hit), the IdP's template variables and the order body its OpenAPI document accepts; any
 * other, the access pipeline's body and nothing else. Stop `idpChild` when done.
 */
export async function benchCaller(bench, root, template) {
  if (!template.includes('{{issuer}}')) return { idpChild: undefined, vars: {}, headers: [], body: ACCESS_ORDER };
  const { child, idp, ask } = await startBenchIdp(bench, root);
  const { tokens } = await ask({ type: 'issue', scope: 'orders:read orders:write', count: 1 }, 'tokens');
  return { idpChild: child, vars: idpTemplateVars(root, idp), headers: [`Authorization: Bearer ${tokens[0]}`], body: SMALL_ORDER };
}

/**
 * benchCaller, and the OTLP sink on `sinkPort` for a configuration that exports ({{sinkPort}}): what
 * a configuration needs running beside it. `stop()` ends the sink and the IdP.
 */
export async function startConfigPeers(bench, root, template, sinkPort) {
  const caller = await benchCaller(bench, root, template);
  const sink = template.includes('{{sinkPort}}')
    ? await forkOnLoadCores(bench, root, 'bench/peers/otlp-sink.js', [String(sinkPort)])
    : undefined;
  const stop = async () => {
    for (const c of [sink, caller.idpChild]) if (c) await bench.stop(c);
  };
  return { ...caller, sink, stop };
}

/** wrk's GET load on one thread (its report by wrk-report.lua): rps, errors, latency percentiles. */
export function wrkGet(bench, root, url, { connections, seconds, headers = [] }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', ...headers.flatMap((h) => ['-H', h])];
  args.push('-s', join(root, 'bench/wrk-report.lua'), url);
  return wrkReport(runLoadTool(bench, 'wrk', args, seconds));
}

/**
 * h2load's GET load on one thread after a 1 s warm-up: requests, rps and non-2xx answers
 * (h2loadReport), and its whole report as `output` for whatever else a bench reads from it.
 */
export function h2loadGet(bench, url, { connections, streams, seconds, headers = [] }) {
  const args = ['-c', String(connections), '-m', String(streams), '-t', '1', '-D', String(seconds), '--warm-up-time=1'];
  args.push(...headers.flatMap((h) => ['-H', h]), url);
  const output = runLoadTool(bench, 'h2load', args, Number(seconds) + 1);
  return { ...h2loadReport(output), output };
}

/**
 * What wrk-report.lua and wrk-post.lua print: requests, rps, errors (socket errors and non-2xx
 * answers) and latency percentiles in ms.
 */
export function wrkReport(out) {
  const line = out.split('\n').find((l) => l.startsWith('{"requests"'));
  if (line === undefined) throw new Error(`wrk printed no report (its Lua script did not run to the end):\n${out.slice(0, 2000)}`);
  const r = JSON.parse(line);
  return {
    requests: r.requests,
    rps: Math.round(r.requests / (r.duration_us / 1e6)),
    errors: r.errors + r.non2xx,
    p50_ms: r.p50 / 1000,
    p99_ms: r.p99 / 1000,
  };
}

/** A body whose free-text strings (customer, note) carry '@N@': made new per request by wrk-post.lua. */
export function uniqueStringsBody(body) {
  const out = { ...body };
  for (const key of ['customer', 'note']) if (typeof out[key] === 'string') out[key] = `${out[key]} @N@`;
  return out;
}

/**
 * The POST load of the policy and threats benches: `wrk` (HTTPS/1.1, bench/wrk-post.lua) and
 * `h2load` (h2), both sending the JSON in `bodyFile` with the given extra headers, on the load cores.
 * With `uniqueBodyFile` (a uniqueStringsBody), wrk sends that one instead, new on every request
 * (h2load cannot vary a body).
 */
export function createPostLoad({ bench, root, connections, seconds, streams, headers = [], bodyFile, uniqueBodyFile }) {
  const { onCpus, LOAD_CPUS } = bench;
  const headerArgs = headers.flatMap((h) => ['-H', h]);
  const wrkEnv = { ...process.env, WRK_BODY_FILE: uniqueBodyFile ?? bodyFile, WRK_UNIQUE: uniqueBodyFile ? '1' : '0' };
  const wrkArgs = (u) => {
    return ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', ...headerArgs, '-s', join(root, 'bench/wrk-post.lua'), u];
  };
  return {
    wrk(u) {
      return wrkReport(runLoadTool(bench, 'wrk', wrkArgs(u), seconds, wrkEnv));
    },
    /** The same load, not waiting: for two peers loaded at once (concurrentPairs). */
    wrkAsync(u) {
      return runAsync('wrk', wrkArgs(u), wrkReport, wrkEnv);
    },
    /** `warmup`: seconds h2load sends before it starts counting (0: it counts from the start). */
    h2load(u, { warmup = 1 } = {}) {
      return h2loadReport(runLoadTool(bench, 'h2load', h2loadArgs(u, warmup), seconds + warmup));
    },
    /** h2load not waiting, counting from the start: for two peers loaded at once (concurrentPairs). */
    h2loadAsync(u) {
      return runAsync('h2load', h2loadArgs(u, 0), h2loadReport, process.env);
    },
  };

  /** Runs a load tool on the load cores without waiting (bounded as runLoadTool); resolves with `report` of its output. */
  function runAsync(tool, toolArgs, report, env) {
    return new Promise((resolve, reject) => {
      const [cmd, args] = onCpus(LOAD_CPUS, tool, toolArgs);
      const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
      const deadline = setTimeout(() => child.kill('SIGKILL'), loadDeadlineMs(seconds));
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        clearTimeout(deadline);
        if (signal === 'SIGKILL') reject(new LoadToolTimeout(tool, seconds));
        else if (code === 0) resolve(report(out));
        else reject(new Error(`${tool} exited ${code ?? signal}`));
      });
    });
  }

  function h2loadArgs(u, warmup) {
    const args = ['-c', String(connections), '-m', String(streams), '-t', '1', '-D', String(seconds)];
    if (warmup > 0) args.push(`--warm-up-time=${warmup}`);
    args.push(...headerArgs, '-H', 'content-type: application/json', '-d', bodyFile, u);
    return args;
  }
}

/** Requests done, req/s and non-2xx answers from h2load's report. */
function h2loadReport(out) {
  return {
    requests: Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(out)?.[1] ?? NaN),
    rps: Math.round(Number(/finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(out)?.[1] ?? NaN)),
    // h2load's own count of requests that failed: answered other than 2xx, or not answered at all
    // (its "errored", a stream or connection that broke), as wrk's socket errors plus non-2xx.
    errors: Number(/requests: .*?(\d+) failed/.exec(out)?.[1] ?? NaN),
  };
}

/**
 * A fixed request rate from h2load (HTTP/1.1, the POST in `bodyFile`), a C client whose own CPU
 * cost leaves the load core far less busy than a Node client doing TLS at the same rate
 * (docs/history/performance.md, "What sets the tail under load"). Each of the `connections` sends
 * rate ÷ connections requests per second, one every `interval` ms; their starts are spread over
 * about one interval (`-r` connections a millisecond), or every connection would send on the same
 * tick and each tick be a burst of `connections` requests. Latency counts from when a request left
 * (h2load's per-request log): an HTTP/1.1 connection holds one request at a time, so an answer
 * slower than the interval delays the next; those are counted in `late`. The first `warmup`
 * seconds (new connections, first requests) are left out. Returns the quantiles in ms, the
 * measured window in epoch ms, and the count of non-2xx answers.
 */
export function h2loadAtRate(bench, { url, rate, seconds, warmup, connections, headers = [], bodyFile, logFile }) {
  const perConnection = Math.max(1, Math.round(rate / connections));
  const interval = 1000 / perConnection;
  const startsPerMs = Math.ceil(connections / Math.max(1, Math.floor(interval)));
  const args = [
    '--h1',
    '-c',
    String(connections),
    '-t',
    '1',
    '--rps',
    String(perConnection),
    '-r',
    String(startsPerMs),
    '--rate-period',
    '1ms',
  ];
  args.push('-n', String(perConnection * connections * (seconds + warmup)), '--log-file', logFile);
  args.push(...headers.flatMap((h) => ['-H', h]), '-H', 'content-type: application/json', '-d', bodyFile, url);
  runLoadTool(bench, 'h2load', args, seconds + warmup);
  // Columns: start (µs since the epoch), status, µs until the end of the answer.
  const rows = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t').map(Number));
  // Loops, not Math.min(...rows): a spread of this many arguments can overflow the stack.
  let first = Infinity;
  for (const r of rows) first = Math.min(first, r[0]);
  const from = first + warmup * 1e6;
  const measured = rows.filter((r) => r[0] >= from);
  let lastEnd = from;
  for (const r of measured) lastEnd = Math.max(lastEnd, r[0] + r[2]);
  const latencies = Float64Array.from(measured, (r) => r[2] / 1000).sort();
  return {
    rate: perConnection * connections,
    requests: measured.length,
    ...latencyQuantiles(latencies),
    late: latencies.filter((ms) => ms > interval).length,
    errors: measured.filter((r) => r[1] < 200 || r[1] > 299).length,
    window_ms: [from / 1000, lastEnd / 1000],
  };
}

/**
 * Warden's own time per request (`duration_ms` of its access lines, from the request's arrival to
 * its answer's end) for the requests that finished within `window_ms` (epoch ms), from the log
 * file its stdout went to; and, as `without_backend_*`, that time less the backend's
 * (`upstream_ms`, dispatch to response headers): what the sidecar itself adds.
 */
export function accessLogLatency(logFile, [from, to]) {
  const durations = [];
  const withoutBackend = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{"level":"info"')) continue;
    const l = JSON.parse(line);
    if (l.msg !== 'request' || l.time < from || l.time > to) continue;
    durations.push(l.duration_ms);
    if (l.upstream_ms !== undefined) withoutBackend.push(l.duration_ms - l.upstream_ms);
  }
  const sorted = Float64Array.from(durations).sort();
  const sortedWithout = Float64Array.from(withoutBackend).sort();
  return { requests: sorted.length, ...latencyQuantiles(sorted), ...latencyQuantiles(sortedWithout, 'without_backend_') };
}

/**
 * `base` and `candidate` measured in alternating order (A-B, then B-A), `pairs` times: wrk with
 * the server's CPU per request, then h2load. Ratios are candidate ÷ base per pair, so a drift of the
 * host's speed that spans minutes cancels out within a pair.
 */
export function interleavedPairs({ base, candidate, pairs, seconds, load, url, warmup = false }) {
  const h1 = [];
  const h2 = [];
  const h1cpu = [];
  const raw = [];
  let errors = 0;
  // warmup: one unmeasured run of each first. A peer left idle while other phases ran (a minute
  // or more) measured 20-60 % slower in its first run, which is not what a pair should compare.
  if (warmup) for (const p of [base, candidate]) load.wrk(url(p));
  for (let i = 0; i < pairs; i++) {
    process.stderr.write(`\rinterleaved ${candidate.name} vs ${base.name}: pair ${i + 1}/${pairs}`);
    const order = i % 2 === 0 ? [base, candidate] : [candidate, base];
    const r1 = {};
    const r2 = {};
    for (const p of order) {
      const before = cpuTicks(p.child.pid);
      r1[p.name] = load.wrk(url(p));
      r1[p.name].cpu_us_per_req = Math.round(cpuUsPerRequest(p.child.pid, before, r1[p.name].rps, seconds));
    }
    for (const p of order) r2[p.name] = load.h2load(url(p));
    for (const r of [...Object.values(r1), ...Object.values(r2)]) errors += r.errors;
    h1.push(ratio(r1[candidate.name].rps, r1[base.name].rps));
    h2.push(ratio(r2[candidate.name].rps, r2[base.name].rps));
    h1cpu.push(ratio(r1[candidate.name].cpu_us_per_req, r1[base.name].cpu_us_per_req));
    raw.push({ h1: r1, h2: Object.fromEntries(Object.entries(r2).map(([k, v]) => [k, v.rps])) });
  }
  process.stderr.write('\n');
  return { h1, h2, h1cpu, raw, errors };
}

/**
 * The processes (and their descendants) in CPU cgroups of their own with equal shares, so that two
 * peers loaded at once on one core get half of it each. Without this the scheduler shares the core
 * between threads, and a peer with more busy threads (GC helpers, the thread pool) gets more.
 * Returns a function that undoes it, or null where no writable cgroup v1 `cpu` hierarchy exists.
 */
export function equalCpuShares(pids) {
  const root = '/sys/fs/cgroup/cpu';
  if (!existsSync(join(root, 'cgroup.procs'))) return null;
  const dirs = [];
  const undo = () => {
    for (const dir of dirs) {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(join(root, 'cgroup.procs'), pid);
        } catch {
          // gone already
        }
      }
      try {
        rmdirSync(dir);
      } catch {
        // a process that could not move keeps it; removed with the host
      }
    }
  };
  try {
    pids.forEach((pid, i) => {
      const dir = join(root, `warden-bench-${process.pid}-${i}`);
      mkdirSync(dir);
      dirs.push(dir);
      writeFileSync(join(dir, 'cpu.shares'), '1024');
      for (const p of [pid, ...descendantsOf(pid)]) writeFileSync(join(dir, 'cgroup.procs'), String(p));
    });
    return undo;
  } catch {
    undo();
    return null;
  }
}

/** Promise.all that waits for both runs to end before it rejects: no load tool is left running. */
async function bothEnded(runs) {
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => r.value);
}

/**
 * `base` and `candidate` loaded at the same time (`method` h1: wrk, HTTPS/1.1; h2: h2load), `rounds` times, both pinned to
 * the test core, each in a CPU cgroup of equal shares where the host has them (equalCpuShares): each
 * gets half of it, so its rps is inversely proportional to its CPU per request, and a change of the
 * host's speed, even within a run, hits both alike. Ratios are candidate ÷ base per round: rps, and
 * CPU per request from the processes' own CPU time, under the method's name (`h1`, `h1cpu` or `h2`,
 * `h2cpu`). `fairShare` says whether the cgroups were used; `answered`, how many requests each
 * peer answered in all rounds, the unmeasured first one included.
 */
export async function concurrentPairs({ base, candidate, rounds, seconds, load, url, method = 'h1' }) {
  const rps = [];
  const cpu = [];
  let errors = 0;
  const run = method === 'h2' ? (u) => load.h2loadAsync(u) : (u) => load.wrkAsync(u);
  // Requests each answered in all rounds, the unmeasured one included (what a profile of the run covers).
  const answered = [0, 0];
  const undo = equalCpuShares([base.child.pid, candidate.child.pid]);
  if (!undo) process.stderr.write('note: no writable CPU cgroups; peers loaded at once share the core by thread\n');
  try {
    // One unmeasured round first: a peer idle through an earlier phase starts slow (see interleavedPairs).
    // Two cold peers on one core may accept so slowly that h2load outlives its deadline
    // (loadDeadlineMs): killed, that round has warmed them all the same.
    const warm = await Promise.allSettled([run(url(base)), run(url(candidate))]);
    warm.forEach((w, i) => {
      if (w.status === 'fulfilled') return void (answered[i] += w.value.requests);
      if (!(w.reason instanceof LoadToolTimeout)) throw w.reason;
      process.stderr.write(`note: the unmeasured round: ${w.reason.message}\n`);
    });
    for (let i = 0; i < rounds; i++) {
      process.stderr.write(`\rconcurrent ${candidate.name} and ${base.name}: round ${i + 1}/${rounds}`);
      const before = [cpuTicks(base.child.pid), cpuTicks(candidate.child.pid)];
      const [a, b] = await bothEnded([run(url(base)), run(url(candidate))]);
      answered[0] += a.requests;
      answered[1] += b.requests;
      const cpuA = cpuUsPerRequest(base.child.pid, before[0], a.rps, seconds);
      const cpuB = cpuUsPerRequest(candidate.child.pid, before[1], b.rps, seconds);
      rps.push(ratio(b.rps, a.rps));
      cpu.push(ratio(cpuB, cpuA));
      errors += a.errors + b.errors;
    }
  } finally {
    undo?.();
  }
  process.stderr.write('\n');
  return {
    [method]: rps,
    [`${method}cpu`]: cpu,
    errors,
    fairShare: undo !== null,
    answered: { base: answered[0], candidate: answered[1] },
  };
}
