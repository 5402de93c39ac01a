/**
 * Where a real `warden` process sends OTLP (red team 29 F1–F4). An OTEL_EXPORTER_OTLP_ENDPOINT the
 * OTel library cannot parse made it fall back, silently, to http://localhost:4318 with the
 * collector's credential: now `config check` and `proxy` refuse it in one masked line, and nothing
 * reaches a stand-in listener on 4318. A telemetry.otlp.endpoint with a bad port, a password or a
 * query is refused at load (it passed, then printed its password, or got /v1/<signal> after the
 * query), by `config check` and by a reload alike. OTEL_EXPORTER_OTLP_LOGS_ENDPOINT alone exports
 * the security events (export stayed off), and the other signals go nowhere.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { testCertificate } from '../support/certs.js';

const PASSWORD = 'COLLECTOR-PW-F1';
const KEY = 'COLLECTOR-KEY-F1';
const SECRET = new RegExp(`${PASSWORD}|${KEY}|COLLECTOR-TOKEN`);

/**
 * The library's default endpoint, where a local user could listen: every request to it counted.
 * Undefined when the port is taken (another process on this host): that check is skipped then.
 */
async function standIn4318(): Promise<{ requests: string[]; close(): Promise<void> } | undefined> {
  const requests: string[] = [];
  const servers: Server[] = [];
  for (const host of ['127.0.0.1', '::1']) {
    const server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url} ${String(req.headers.authorization)}`);
      req.resume();
      req.on('end', () => res.end());
    });
    const listening = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(4318, host, () => resolve(true));
    });
    if (listening) servers.push(server);
    else if (host === '127.0.0.1') return undefined;
  }
  return { requests, close: async () => void (await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))) };
}

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-otlp-')), 'sidecar.yaml');
  writeFileSync(file, text);
  return file;
}

function configCheck(file: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), 'config', 'check', '-c', file], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * `warden proxy` that should not start: its exit code and output, or "running" when it listened
 * (then killed `exportMs` later, time for exports to leave) or ran for 20 s.
 */
async function proxyExit(file: string, env: Record<string, string>, exportMs: number) {
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), 'proxy', '-c', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listened = new Promise<void>((resolve) => child.stdout.on('data', () => stdout.includes('listening') && resolve()));
  const code = await Promise.race([
    exited,
    listened.then(() => sleep(exportMs)).then(() => 'running' as const),
    sleep(20_000, undefined, { ref: false }).then(() => 'running' as const),
  ]);
  if (code === 'running') {
    child.kill('SIGKILL');
    await exited;
  }
  return { code, stderr, stdout };
}

t.test('an OTEL_EXPORTER_OTLP_ENDPOINT the library cannot parse: refused in one masked line, nothing to localhost:4318', async (t) => {
  const standIn = await standIn4318();
  t.teardown(() => standIn?.close());
  if (!standIn) t.comment('port 4318 is taken on this host: the stand-in check is skipped');
  const file = configFile(
    await testConfigYaml('http://127.0.0.1:9', {
      telemetry: { otlp: { export_interval: '200ms' } },
      routes: [{ id: 'deny', path: '/deny/*', access: { action: 'deny' } }],
    }),
  );
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://otel:${PASSWORD}@otel-collector.prod:99999/?api_key=${KEY}`,
    OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer COLLECTOR-TOKEN-F1',
  };
  const check = configCheck(file, env);
  t.equal(check.code, 2, 'config check: invalid');
  t.equal(check.stdout, '', 'not "valid"');
  t.match(
    check.stderr,
    /^OTEL_EXPORTER_OTLP_ENDPOINT: "http:\/\/\*\*\*@otel-collector\.prod:99999\/" is not a URL[^\n]*\n$/,
    'one line, masked',
  );
  t.notMatch(check.stderr, SECRET);

  // The proxy: exits at once (it ran, exporting to 4318, until killed).
  const proxy = await proxyExit(file, { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel collector:4318' }, 1500);
  t.equal(proxy.code, 2, 'warden proxy refuses to start');
  t.match(proxy.stderr, /^OTEL_EXPORTER_OTLP_ENDPOINT: "http:\/\/otel collector:4318" is not a URL[^\n]*\n$/, 'one line');
  t.notMatch(proxy.stdout, /listening/, 'it never listened');
  t.notMatch(proxy.stderr + proxy.stdout, SECRET);
  if (standIn) t.same(standIn.requests, [], 'nothing reached the stand-in on localhost:4318');
});

t.test('telemetry.otlp.endpoint with a bad port and a password, or a query: config check refuses it, masked', async (t) => {
  const withEndpoint = async (endpoint: string) =>
    configFile(await testConfigYaml('http://127.0.0.1:9', { telemetry: { otlp: { endpoint } } }));
  const f2 = configCheck(await withEndpoint(`http://otel:${PASSWORD}@otel-collector:99999/?api_key=${KEY}`));
  t.equal(f2.code, 2, 'F2: invalid');
  t.match(f2.stderr, /sidecar\.yaml:\d+ telemetry\.otlp\.endpoint: [^\n]*not a URL[^\n]*\n$/, 'F2: one line at the field');
  t.notMatch(f2.stderr, SECRET, 'F2: password and key masked');
  const f3 = configCheck(await withEndpoint('http://collector:4318/otlp?api_key=K3'));
  t.equal(f3.code, 2, 'F3: invalid');
  t.match(f3.stderr, /sidecar\.yaml:\d+ telemetry\.otlp\.endpoint: [^\n]*query[^\n]*\n$/, 'F3: a query is refused');
  t.notMatch(f3.stderr, /K3/);
});

t.test('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT alone exports the security events; a reload onto a bad endpoint is refused, masked', async (t) => {
  const standIn = await standIn4318();
  t.teardown(() => standIn?.close());
  const receiver = await startOtlpReceiver();
  t.teardown(() => receiver.close());
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const config = (extra: Record<string, unknown>) =>
    testConfigYaml(backend.url, {
      telemetry: { otlp: { export_interval: '200ms', ...extra } },
      routes: [{ id: 'deny', path: '/deny/*', access: { action: 'deny' } }],
    });
  const logsUrl = `${receiver.url}/v1/logs`;
  const warden = await spawnWarden(t, await config({}), { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: logsUrl });
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());

  const started = await warden.waitFor((l) => l.msg === 'OTLP export', 2000).catch(() => undefined);
  t.same(
    started?.otlp,
    { traces: 'off (no endpoint for it)', logs: logsUrl, metrics: 'off (no endpoint for it)' },
    'a start line says where each signal goes',
  );
  t.equal((await fetchText(`${warden.url}/deny/x`, agent)).status, 403);
  const denied = await receiver.until(() => receiver.logs.find((l) => l.eventName === 'warden.access.denied'), 5000).catch(() => undefined);
  t.ok(denied, 'the event arrived at the logs endpoint');
  await sleep(600); // three metric intervals
  t.same({ traces: receiver.exports.traces, metrics: receiver.exports.metrics }, { traces: 0, metrics: 0 }, 'traces and metrics are off');
  if (standIn) t.same(standIn.requests, [], 'and not sent to localhost:4318');

  // F2: a reload onto an endpoint with a password and a bad port is refused, and logs neither.
  writeFileSync(warden.configFile, await config({ endpoint: `http://otel:${PASSWORD}@127.0.0.1:99999/?api_key=${KEY}` }));
  warden.child.kill('SIGHUP');
  const outcome = await warden.waitFor((l) => l.event === 'warden.config.reloaded' || l.event === 'warden.config.reload_failed');
  t.equal(outcome.event, 'warden.config.reload_failed', 'the reload is refused');
  t.match(String(outcome['warden.detail']), /telemetry\.otlp\.endpoint: /);
  t.notMatch(JSON.stringify(warden.lines) + warden.stderr(), SECRET, 'no line holds the password or the key');
  const before = receiver.logs.length;
  t.equal((await fetchText(`${warden.url}/deny/y`, agent)).status, 403);
  await receiver.until(() => (receiver.logs.length > before ? true : undefined), 5000);
  t.pass('export goes on with the settings in force');
});
