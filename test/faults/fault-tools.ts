/**
 * Tooling for the fault suite (test/faults): a fault gate in front of a dependency (forwarding,
 * refusing, hanging or delaying, switched at run time on one loopback port), a bounded load loop
 * that records every request's latency and outcome per phase, an RSS sampler for the Warden process
 * and the phase script (kill → back → hang → back → slow → back) every dependency goes through.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Agent, request } from 'undici';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export type GateMode = 'up' | 'down' | 'hang' | 'slow';

/**
 * One loopback port a sidecar is configured with, standing for a dependency:
 * - `up`: a TCP proxy to the real dependency;
 * - `down`: nothing listens (connection refused), as when the process is killed;
 * - `hang`: a listener that accepts and never answers (nor reads);
 * - `slow`: the proxy, each chunk delayed by `delayMs` in both directions.
 * Switching mode drops every connection the previous mode held (as a dying process would).
 * `target.port` is read for each connection, so it may be set after the gate has started: for a
 * dependency that must know the gate's address before it starts (an IdP whose issuer is the gate).
 */
export interface FaultGate {
  readonly port: number;
  readonly mode: GateMode;
  set(mode: GateMode): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultGate(
  t: { teardown(fn: () => unknown): void },
  target: { host?: string; port: number },
  options: { delayMs?: number } = {},
): Promise<FaultGate> {
  const delayMs = options.delayMs ?? 100;
  const host = target.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let mode: GateMode = 'down';
  let port = 0;

  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const pipe = (from: Socket, to: Socket, delay: number) => {
    from.on('data', (chunk: Buffer) => {
      if (delay === 0) return void to.write(chunk);
      // Equal delays fire in order (Node timers of one duration are FIFO).
      setTimeout(() => !to.destroyed && to.write(chunk), delay);
    });
    from.once('end', () => setTimeout(() => !to.destroyed && to.end(), delay));
    from.once('close', () => setTimeout(() => to.destroy(), delay));
  };
  const onConnection = (client: Socket) => {
    track(client);
    if (mode === 'hang') return client.pause();
    const delay = mode === 'slow' ? delayMs : 0;
    const upstream = connect(target.port, host);
    track(upstream);
    pipe(client, upstream, delay);
    pipe(upstream, client, delay);
  };
  const unbind = async () => {
    for (const s of sockets) s.destroy();
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  const bind = async () => {
    const s = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const gate: FaultGate = {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    async set(next) {
      await unbind();
      mode = next;
      if (next !== 'down') await bind();
    },
    close: unbind,
  };
  await gate.set('up');
  t.teardown(() => gate.close());
  return gate;
}

export interface LoadRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** A label for assertions (e.g. `warm-token`, `junk-token`, `upload`). */
  kind?: string;
}

export interface LoadSample {
  phase: string;
  kind: string;
  proto: 'h1' | 'h2';
  startedAt: number;
  endedAt: number;
  ms: number;
  /** 0 when the request failed without an HTTP answer. */
  status: number;
  code?: string;
  error?: string;
}

export interface LoadOptions {
  url: string;
  /** TLS options for both agents (ca, cert, key). */
  tls: { ca: string; cert?: string; key?: string };
  /** Workers per protocol (HTTP/1.1 and h2). */
  workers?: number;
  /** Bounds: the loop stops at whichever comes first. */
  maxRequests: number;
  maxMs: number;
  /** Minimum time between two requests of one worker (keeps the rate, and the CPU, bounded). */
  pacingMs?: number;
  /** A request not answered in this time is aborted and recorded as `client-timeout`. */
  clientTimeoutMs?: number;
  next(i: number): LoadRequest;
}

export interface LoadLoop {
  /** The phase recorded with each request, by its start time. */
  phase: string;
  readonly samples: LoadSample[];
  readonly done: Promise<LoadSample[]>;
  stop(): Promise<LoadSample[]>;
}

function problemCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** A few HTTP/1.1 and h2 workers sending `next(i)` in a loop, bounded by count and time. */
export function startLoad(t: { teardown(fn: () => unknown): void }, options: LoadOptions): LoadLoop {
  const workers = options.workers ?? 2;
  const pacing = options.pacingMs ?? 20;
  const clientTimeout = options.clientTimeoutMs ?? 15_000;
  const connect = { ...options.tls, servername: 'localhost' };
  const agents = {
    h1: new Agent({ connections: workers, connect }),
    h2: new Agent({ allowH2: true, connections: 1, pipelining: 100, connect }),
  };
  const samples: LoadSample[] = [];
  const deadline = Date.now() + options.maxMs;
  let issued = 0;
  let stopped = false;
  let closing: Promise<void> = Promise.resolve();
  const loop: LoadLoop = {
    phase: 'start',
    samples,
    done: Promise.resolve([]),
    async stop() {
      if (!stopped) {
        stopped = true;
        closing = loop.done.then(() => Promise.all([agents.h1.close(), agents.h2.close()])).then(() => undefined);
      }
      await closing;
      return samples;
    },
  };
  const one = async (proto: 'h1' | 'h2') => {
    const i = issued++;
    const req = options.next(i);
    const phase = loop.phase;
    const startedAt = performance.now();
    const sample: LoadSample = { phase, kind: req.kind ?? 'default', proto, startedAt, endedAt: 0, ms: 0, status: 0 };
    try {
      const res = await request(`${options.url}${req.path}`, {
        dispatcher: agents[proto],
        method: (req.method ?? 'GET') as 'GET',
        headers: req.headers,
        body: req.body,
        // undici sends a non-idempotent request (a POST) on an h2 session only when nothing else
        // runs on it (client-h2.js `busy`), so concurrent uploads would queue in the client and
        // measure each other's time. The load never retries, so it says they may share the session.
        idempotent: true,
        signal: AbortSignal.timeout(clientTimeout),
      });
      const text = await res.body.text();
      sample.status = res.statusCode;
      if (res.statusCode >= 400) sample.code = problemCode(text);
    } catch (err) {
      sample.error = (err as Error).name === 'TimeoutError' ? 'client-timeout' : (err as Error).message;
    }
    sample.endedAt = performance.now();
    sample.ms = sample.endedAt - startedAt;
    samples.push(sample);
  };
  const worker = async (proto: 'h1' | 'h2') => {
    while (!stopped && issued < options.maxRequests && Date.now() < deadline) {
      const started = Date.now();
      await one(proto);
      const left = pacing - (Date.now() - started);
      if (left > 0) await sleep(left);
    }
  };
  const all: Promise<void>[] = [];
  for (let w = 0; w < workers; w++) all.push(worker('h1'), worker('h2'));
  (loop as { done: Promise<LoadSample[]> }).done = Promise.all(all).then(() => samples);
  t.teardown(() => loop.stop());
  return loop;
}

export interface PhaseStats {
  phase: string;
  count: number;
  maxMs: number;
  p50Ms: number;
  /** `status code` (or `error message`) → count. */
  outcomes: Record<string, number>;
}

export function outcome(s: LoadSample): string {
  if (s.status === 0) return `error ${s.error ?? '?'}`;
  return s.code ? `${s.status} ${s.code}` : String(s.status);
}

export function phaseStats(samples: LoadSample[], phase: string): PhaseStats {
  const mine = samples.filter((s) => s.phase === phase);
  const sorted = mine.map((s) => s.ms).sort((a, b) => a - b);
  const outcomes: Record<string, number> = {};
  for (const s of mine) outcomes[outcome(s)] = (outcomes[outcome(s)] ?? 0) + 1;
  return {
    phase,
    count: mine.length,
    maxMs: Math.round(sorted.at(-1) ?? 0),
    p50Ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
    outcomes,
  };
}

export const maxLatency = (samples: LoadSample[]) => Math.round(Math.max(0, ...samples.map((s) => s.ms)));

/**
 * Time from `backAt` until the last request (started after it) that did not succeed had ended:
 * 0 when every request after `backAt` succeeded. `ok` says what success is for a sample.
 */
export function recoveryMs(samples: LoadSample[], backAt: number, ok: (s: LoadSample) => boolean = (s) => s.status === 200): number {
  const after = samples.filter((s) => s.startedAt >= backAt && !ok(s));
  return Math.round(Math.max(0, ...after.map((s) => s.endedAt - backAt)));
}

/** Resident set size of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export const MiB = 1024 * 1024;

/** GET /healthz on the admin listener: true when it answers 200. */
export async function healthy(adminUrl: string): Promise<boolean> {
  try {
    const res = await request(`${adminUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
    await res.body.text();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

/** Polls `probe` until it returns true; the time it took (ms), or -1 after `timeoutMs`. */
export async function timeUntil(probe: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await probe()) return Math.round(performance.now() - started);
    await sleep(everyMs);
  }
  return -1;
}

export interface FaultStep {
  /** The phase name the load loop records while this step runs. */
  phase: 'kill' | 'hang' | 'slow';
  /** Extra work once the fault is in place (probes); runs while the phase lasts. */
  during?: () => Promise<void>;
}

export interface CycleOptions {
  /** One load loop, or several (one per sidecar): each records the phase. */
  load: LoadLoop | LoadLoop[];
  gate: FaultGate;
  /** How long each fault lasts, and each `back` phase after it. */
  faultMs: number;
  backMs: number;
  /** For real processes: stop before the gate goes down, start again before it comes back. */
  kill?: () => Promise<void>;
  revive?: () => Promise<void>;
  during?: Partial<Record<'kill' | 'hang' | 'slow' | 'back', () => Promise<void>>>;
}

/** When each phase started (performance.now()), to compute recovery from. */
export type PhaseMarks = Record<string, number>;

/** baseline → kill → back-kill → hang → back-hang → slow → back-slow, with the load running throughout. */
export async function runFaultCycle(options: CycleOptions): Promise<PhaseMarks> {
  const { gate } = options;
  const loads = Array.isArray(options.load) ? options.load : [options.load];
  const marks: PhaseMarks = {};
  const phase = async (name: string, ms: number, work?: () => Promise<void>) => {
    for (const load of loads) load.phase = name;
    marks[name] = performance.now();
    const until = performance.now() + ms;
    await work?.();
    const left = until - performance.now();
    if (left > 0) await sleep(left);
    marks[`${name}:end`] = performance.now();
  };
  const back = async (after: string) => {
    if (after === 'kill') await options.revive?.();
    await gate.set('up');
    await phase(`back-${after}`, options.backMs, options.during?.back);
  };
  await phase('baseline', options.backMs);
  await options.kill?.();
  await gate.set('down');
  await phase('kill', options.faultMs, options.during?.kill);
  await back('kill');
  await gate.set('hang');
  await phase('hang', options.faultMs, options.during?.hang);
  await back('hang');
  await gate.set('slow');
  await phase('slow', options.faultMs, options.during?.slow);
  await back('slow');
  for (const load of loads) load.phase = 'end';
  return marks;
}

/**
 * The requests of `phase` that also ended within it: the switch to the next phase drops the
 * connections of the previous mode (as a dying process would), which fails requests still in flight.
 */
export function settled(samples: LoadSample[], phase: string, marks: PhaseMarks): LoadSample[] {
  const end = marks[`${phase}:end`] ?? Infinity;
  return samples.filter((s) => s.phase === phase && s.endedAt <= end);
}

/** Recovery of a `back-*` phase, over the requests that settled within it. */
export function phaseRecoveryMs(samples: LoadSample[], phase: string, marks: PhaseMarks, ok?: (s: LoadSample) => boolean): number {
  return recoveryMs(settled(samples, phase, marks), marks[phase] ?? 0, ok);
}

function slowest(samples: LoadSample[]): string {
  const s = samples.reduce<LoadSample | undefined>((a, b) => (a && a.ms >= b.ms ? a : b), undefined);
  return s ? `${s.kind} ${s.proto} ${outcome(s)} ${Math.round(s.ms)} ms` : '';
}

/** One row of docs/reliability.md, printed by every fault test (t.comment) so the figures can be copied. */
export function summarise(
  dependency: string,
  samples: LoadSample[],
  marks: PhaseMarks,
  extra: Record<string, unknown> = {},
  ok?: (s: LoadSample) => boolean,
) {
  const phases = ['baseline', 'kill', 'back-kill', 'hang', 'back-hang', 'slow', 'back-slow'];
  return {
    dependency,
    requests: samples.length,
    maxMs: maxLatency(samples),
    phases: phases.map((p) => ({
      ...phaseStats(settled(samples, p, marks), p),
      cutAtSwitch: samples.filter((s) => s.phase === p).length - settled(samples, p, marks).length,
      slowest: slowest(samples.filter((s) => s.phase === p)),
      ...(p.startsWith('back-') ? { recoveryMs: phaseRecoveryMs(samples, p, marks, ok) } : {}),
    })),
    ...extra,
  };
}

/** The few assertions of tap's `t` the helpers below use. */
export interface Asserts {
  ok(value: unknown, message: string): unknown;
}

/** Every request that settled within `phase` had one of the `allowed` outcomes (and there was at least one). */
export function expectOutcomes(
  t: Asserts,
  samples: LoadSample[],
  marks: PhaseMarks,
  phase: string,
  allowed: string[],
  kind?: string,
): void {
  const mine = settled(samples, phase, marks).filter((s) => kind === undefined || s.kind === kind);
  const stats = phaseStats(mine, phase);
  const seen = Object.keys(stats.outcomes);
  t.ok(
    seen.length > 0 && seen.every((o) => allowed.includes(o)),
    `${phase}${kind ? ` (${kind})` : ''}: ${JSON.stringify(stats.outcomes)} ⊆ [${allowed.join(', ')}]`,
  );
}

/** After each `back-*` phase: successes again within `boundMs`, and the phase ends on successes. */
export function expectRecovery(
  t: Asserts,
  samples: LoadSample[],
  marks: PhaseMarks,
  boundMs: number,
  ok: (s: LoadSample) => boolean = (s) => s.status === 200,
  phases: string[] = ['back-kill', 'back-hang', 'back-slow'],
): void {
  for (const p of phases) {
    const rec = phaseRecoveryMs(samples, p, marks, ok);
    const after = settled(samples, p, marks).filter((s) => s.startedAt > (marks[p] ?? 0) + rec);
    t.ok(rec <= boundMs && after.length > 0 && after.every(ok), `${p}: recovered in ${rec} ms (≤ ${boundMs}), then ${after.length} ok`);
  }
}

/** No crash, /healthz answers, every request answered within `timeoutMs + marginMs`, RSS growth under `rssBound`. */
export async function expectSurvived(
  t: Asserts,
  warden: { adminUrl: string; child: { exitCode: number | null } },
  samples: LoadSample[],
  limits: { timeoutMs: number; marginMs: number; rssBefore: number; rssAfter: number; rssBound: number },
): Promise<void> {
  t.ok(warden.child.exitCode === null, 'no crash: the process is still running');
  t.ok(await healthy(warden.adminUrl), '/healthz answers 200');
  const max = maxLatency(samples);
  t.ok(max <= limits.timeoutMs + limits.marginMs, `no request outlived ${limits.timeoutMs} ms + ${limits.marginMs} ms (max ${max} ms)`);
  const unanswered = samples.filter((s) => s.status === 0);
  t.ok(unanswered.length === 0, `every request got an HTTP answer (${unanswered.slice(0, 3).map(outcome).join('; ')})`);
  const growth = limits.rssAfter - limits.rssBefore;
  t.ok(
    growth < limits.rssBound,
    `RSS ${(limits.rssBefore / MiB).toFixed(0)} → ${(limits.rssAfter / MiB).toFixed(0)} MiB (growth < ${limits.rssBound / MiB} MiB)`,
  );
}
