/**
 * Starting Warden for a test: in-process (fast; events captured from the bus) or as a real
 * `warden proxy` process (signals, exit codes, memory). Both listen on free loopback ports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { stringify } from 'yaml';
import { parseSidecarConfig } from '../../src/config/load.js';
import type { SidecarConfig } from '../../src/config/types.js';
import { startSidecar, type Sidecar } from '../../src/proxy/sidecar.js';
import { createEventBus, type EventAttributes, type EventName } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { testCertificate } from './certs.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface CapturedEvent extends EventAttributes {
  name: EventName;
}

export type Teardown = { teardown(fn: () => unknown): void };

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deepMerge(base: Json, extra: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(extra)) out[k] = isObject(v) && isObject(out[k]) ? deepMerge(out[k], v) : v;
  return out;
}

/** A sidecar.yaml text: loopback listeners on free ports, the test certificate, `extra` merged in. */
export async function testConfigYaml(backendUrl: string, extra: Json = {}): Promise<string> {
  // With mesh the listener serves the workload certificate: a certificate file beside it is refused.
  const tls = extra.mesh === undefined ? await testCertificate().then((cert) => ({ cert: cert.certFile, key: cert.keyFile })) : {};
  const base: Json = {
    service: { name: 'test' },
    listeners: {
      inbound: { host: '127.0.0.1', port: 0, tls },
      admin: { host: '127.0.0.1', port: 0 },
    },
    upstream: { url: backendUrl },
    lifecycle: { drain_timeout: '5s' },
  };
  return stringify(deepMerge(base, extra));
}

export interface TestSidecar {
  sidecar: Sidecar;
  url: string;
  port: number;
  adminUrl: string;
  ca: string;
  events: CapturedEvent[];
  logs: Json[];
}

/**
 * `edit` changes the configuration after it loaded: what load refuses, to test that the part that
 * uses it refuses it too (defence in depth).
 */
/** GET /readyz on an admin listener: its status and body. */
export async function readyzOf(adminUrl: string): Promise<{ status: number; body: string }> {
  const res = await request(`${adminUrl}/readyz`);
  return { status: res.statusCode, body: await res.body.text() };
}

export async function startTestSidecar(
  t: Teardown,
  backendUrl: string,
  extra: Json = {},
  edit?: (config: SidecarConfig) => void,
): Promise<TestSidecar> {
  const cert = await testCertificate();
  const dir = mkdtempSync(join(tmpdir(), 'warden-sidecar-'));
  const file = join(dir, 'sidecar.yaml');
  const text = await testConfigYaml(backendUrl, extra);
  writeFileSync(file, text);
  const loaded = parseSidecarConfig(file, text);
  edit?.(loaded.config);
  const logs: Json[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Json);
      done();
    },
  });
  const events: CapturedEvent[] = [];
  const bus = createEventBus([(name, _severity, attributes) => events.push({ name, ...attributes })]);
  const sidecar = await startSidecar(loaded, {
    logger: createLogger({ level: 'info', destination }),
    events: bus,
    processMetrics: false,
  });
  t.teardown(() => sidecar.drain());
  return {
    sidecar,
    url: `https://localhost:${sidecar.inbound.port}`,
    port: sidecar.inbound.port,
    adminUrl: `http://127.0.0.1:${sidecar.admin.port}`,
    ca: cert.certPem,
    events,
    logs,
  };
}

export interface WardenProcess {
  child: ChildProcess;
  url: string;
  port: number;
  adminUrl: string;
  configFile: string;
  lines: Json[];
  stderr: () => string;
  waitFor(predicate: (line: Json) => boolean, timeoutMs?: number): Promise<Json>;
  exited: Promise<number | null>;
}

/**
 * Runs `node bin/warden.js proxy -c FILE` (the built dist/), with `env` added to the environment, and
 * waits until it listens; `whileStarting` runs as soon as the process is spawned.
 */
export async function spawnWarden(
  t: Teardown,
  configText: string,
  env: Record<string, string> = {},
  whileStarting?: (child: ChildProcess) => Promise<void>,
): Promise<WardenProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-proc-'));
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(configFile, configText);
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), 'proxy', '-c', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: Json[] = [];
  const waiters = new Set<{ predicate: (l: Json) => boolean; resolve: (l: Json) => void }>();
  let buffered = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (!text) continue;
      const line = JSON.parse(text) as Json;
      lines.push(line);
      for (const w of waiters) {
        if (w.predicate(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const waitFor = (predicate: (l: Json) => boolean, timeoutMs = 10_000) =>
    new Promise<Json>((resolve, reject) => {
      const found = lines.find(predicate);
      if (found) return resolve(found);
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      setTimeout(() => {
        if (waiters.delete(waiter)) reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs).unref();
    });
  await whileStarting?.(child);
  const ready = await Promise.race([
    waitFor((l) => l.msg === 'warden proxy listening', 15_000),
    exited.then((code) => {
      throw new Error(`warden exited with ${code}: ${stderr}`);
    }),
  ]);
  const port = Number(String(ready.inbound).split(':').pop());
  const adminPort = Number(String(ready.admin).split(':').pop());
  return {
    child,
    url: `https://localhost:${port}`,
    port,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    configFile,
    lines,
    stderr: () => stderr,
    waitFor,
    exited,
  };
}
