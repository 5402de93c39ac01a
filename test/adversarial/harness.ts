/**
 * The adversarial suite's bookkeeping: every hostile case is one row (category, case, expected
 * outcome) run against a real Warden in front of the recording backend, and it holds only when
 * (1) the answer is the expected refusal, (2) the backend saw nothing of it and (3) the process is
 * healthy afterwards (a normal request is served, admin /healthz answers, a spawned process is
 * still running). The table of rows tried/held per category is printed at the end; any row that
 * did not hold fails the file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Test } from 'tap';
import type { TestBackend } from '../support/backend.js';
import { rawTls, statusOf } from '../support/clients.js';
import { repoRoot, type Teardown } from '../support/sidecar.js';

/** The Warden under attack, however it was started. */
export interface Target {
  port: number;
  ca: string;
  adminUrl: string;
  /** For a spawned process: resolves with its exit code if it exits. */
  exited?: Promise<number | null>;
  hasExited?: () => boolean;
  /** The path of the normal request that proves health (default PROBE). */
  probe?: string;
}

export interface CaseResult {
  category: string;
  name: string;
  expected: string;
  held: boolean;
  detail: string;
  ms: number;
}

export class CaseFailure extends Error {}

/** Throws a CaseFailure (not an exception of the code under test) when `ok` is false. */
export function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new CaseFailure(message);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A normal request over a fresh connection, and admin /healthz: both must answer 200. */
export const PROBE = '/healthy-probe';

export async function assertHealthy(target: Target, path = target.probe ?? PROBE): Promise<void> {
  if (target.hasExited?.()) throw new CaseFailure('the warden process exited');
  const raw = await rawTls(target.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, {
    ca: target.ca,
    timeoutMs: 5000,
  });
  check(statusOf(raw) === 200, `a normal request afterwards got ${statusOf(raw) || 'no answer'}`);
  const res = await fetch(`${target.adminUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  check(res.status === 200, `admin /healthz answered ${res.status}`);
  await res.body?.cancel();
}

export interface CaseOptions {
  /** Backend requests the case may cause (a hostile stream among valid ones); default 0. */
  backendAllowance?: number;
  /** Also check health after this case (default true). */
  health?: boolean;
}

/**
 * Runs hostile cases and keeps the score. `run` executes one case as a tap subtest so a failure
 * names it, and records whether it held for the table.
 */
export class Scoreboard {
  readonly results: CaseResult[] = [];

  constructor(
    private readonly backend: TestBackend,
    private readonly target: () => Target,
  ) {}

  async run(
    t: Test,
    category: string,
    name: string,
    expected: string,
    attack: () => Promise<void>,
    options: CaseOptions = {},
  ): Promise<void> {
    const before = this.backend.requests.length;
    const started = Date.now();
    let detail = '';
    try {
      await attack();
      // The health probes of this case are not part of the attack.
      const seen = this.backend.requests.slice(before).filter((r) => r.url !== (this.target().probe ?? PROBE));
      check(
        seen.length <= (options.backendAllowance ?? 0),
        `the backend saw ${seen.length} request(s): ${seen
          .slice(0, 3)
          .map((r) => `${r.method} ${r.url}`)
          .join(', ')}`,
      );
      if (options.health !== false) await assertHealthy(this.target());
    } catch (err) {
      detail = err instanceof CaseFailure ? err.message : `unexpected ${String((err as Error).stack ?? err)}`;
    }
    const result = { category, name, expected, held: detail === '', detail, ms: Date.now() - started };
    this.results.push(result);
    t.ok(result.held, `[${category}] ${name}: ${expected}${detail ? ` — ${detail}` : ''}`);
  }

  /** Prints the per-category table and the rows that did not hold; fails if any did not. */
  report(t: Test): void {
    const categories = [...new Set(this.results.map((r) => r.category))];
    const lines = ['category                   tried  held', '-------------------------  -----  ----'];
    for (const c of categories) {
      const rows = this.results.filter((r) => r.category === c);
      lines.push(`${c.padEnd(25)}  ${String(rows.length).padStart(5)}  ${String(rows.filter((r) => r.held).length).padStart(4)}`);
    }
    const failed = this.results.filter((r) => !r.held);
    lines.push(
      `${'total'.padEnd(25)}  ${String(this.results.length).padStart(5)}  ${String(this.results.length - failed.length).padStart(4)}`,
    );
    for (const f of failed) lines.push(`NOT HELD: [${f.category}] ${f.name}: ${f.detail}`);
    t.comment(`\n${lines.join('\n')}`);
    t.equal(failed.length, 0, 'every hostile case held');
  }
}

/** Raw TLS exchange that also reports how it ended and when. */
export interface RawExchange {
  text: string;
  status: number;
  /** The server closed (FIN or reset) before the client's timeout. */
  closed: boolean;
  ms: number;
}

export function exchange(
  port: number,
  ca: string,
  chunks: (string | Buffer)[],
  /** `halfClose`: end the client's side (TLS close_notify and FIN) once every chunk is written. */
  options: { gapMs?: number; timeoutMs?: number; alpn?: string; halfClose?: boolean } = {},
): Promise<RawExchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket: TLSSocket = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      ca,
      ALPNProtocols: [options.alpn ?? 'http/1.1'],
    });
    let text = '';
    let done = false;
    let closed = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, status: statusOf(text), closed, ms: Date.now() - started });
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 3000);
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('close', () => {
      closed = true;
      finish();
    });
    socket.on('error', () => undefined);
    socket.once('secureConnect', () => {
      void (async () => {
        for (const chunk of chunks) {
          if (socket.destroyed) return;
          socket.write(chunk);
          if (options.gapMs) await sleep(options.gapMs);
        }
        if (options.halfClose && !socket.destroyed) socket.end();
      })();
    });
  });
}

/** Runs `warden proxy` from the TypeScript sources (tsx), so the test never depends on a stale dist/. */
export async function spawnWardenFromSource(
  t: Teardown,
  configText: string,
): Promise<Target & { stderr: () => string; stdout: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-'));
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(configFile, configText);
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'proxy', '-c', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: repoRoot,
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`warden did not listen within 20 s: ${stderr}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const line of stdout.split('\n')) {
        if (!line.includes('warden proxy listening')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
        return;
      }
    });
    void exited.then((code) => reject(new Error(`warden exited with ${code}: ${stderr}`)));
  });
  // Keep draining stdout so the child never blocks on a full pipe; keep only a bounded tail.
  child.stdout.on('data', () => {
    if (stdout.length > 1_000_000) stdout = stdout.slice(-500_000);
  });
  const port = Number(String(ready.inbound).split(':').pop());
  const adminPort = Number(String(ready.admin).split(':').pop());
  return {
    port,
    ca: '',
    adminUrl: `http://127.0.0.1:${adminPort}`,
    exited,
    hasExited: () => child.exitCode !== null || child.signalCode !== null,
    stderr: () => stderr,
    stdout: () => stdout,
  };
}
