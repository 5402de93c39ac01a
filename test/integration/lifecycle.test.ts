/**
 * Lifecycle of a real `warden proxy` process: SIGTERM drains without losing in-flight requests,
 * SIGHUP reloads (a broken file keeps the old configuration serving), the admin endpoints answer.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as http2Connect } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { createSelfSignedCertificate } from '../../src/dev/self-signed-certificate.js';
import { CLOSING_STALL_MS } from '../../src/proxy/h2-session-tracker.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, startTestSidecar, testConfigYaml } from '../support/sidecar.js';

t.test('SIGTERM: in-flight requests finish, new connections are refused, exit 0', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { lifecycle: { drain_timeout: '10s' } }));
  const cert = await testCertificate();
  // One connection per HTTP/1.1 request, one multiplexed h2 connection for the others.
  const agents = [testAgent(cert.certPem, { connections: 10 }), testAgent(cert.certPem, { h2: true, connections: 1 })];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));

  // Twenty slow requests (1.5 s at the backend), half over HTTP/1.1 and half over h2, all of them
  // received by the backend (so truly in flight) before the signal.
  const inFlight = Array.from({ length: 20 }, (_, i) => fetchText(`${warden.url}/slow?ms=1500`, agents[i % 2]!));
  while (backend.requests.length < 20) await new Promise((r) => setTimeout(r, 20));
  const signalled = Date.now();
  warden.child.kill('SIGTERM');
  await warden.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('draining'));

  const late = await new Promise<string>((resolve) => {
    const socket = tlsConnect({ port: warden.port, host: '127.0.0.1', servername: 'localhost', ca: cert.certPem });
    socket.once('secureConnect', () => resolve('accepted'));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
  t.equal(late, 'ECONNREFUSED', 'no new connections while draining');

  const results = await Promise.all(inFlight);
  t.same(
    results.map((r) => r.status),
    Array(20).fill(200),
    'every in-flight request completed',
  );
  // A caller must not be told it may reuse a connection the drain is about to close: its next
  // request met the idle sweep (reset) in 1 of 5 tries by hand.
  t.same(
    results.filter((_, i) => i % 2 === 0).map((r) => r.headers.connection),
    Array(10).fill('close'),
    'every HTTP/1.1 response in flight says Connection: close',
  );
  t.equal(await warden.exited, 0, 'exit code 0');
  const stopped = Date.now() - signalled;
  // Where the time went, should it be long: the sidecar's own log times from the signal.
  const at = (msg: string) => {
    const line = warden.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith(msg));
    return line ? `${msg} +${Number(line.time) - signalled} ms` : `no ${msg}`;
  };
  // Well short of the 10 s grace, which is what this checks. The bound is the drain's own when an h2
  // session does not finish closing after its last stream (Node 20, h2-session-tracker.ts): cut
  // within two stall periods of the answers (1.5 s). A CI run took 5.7 s against an earlier 5 s bound.
  const bound = 1500 + 2 * CLOSING_STALL_MS + 1500;
  t.ok(stopped < bound, `stopped ${stopped} ms after SIGTERM, bound ${bound} (${['stopping', 'draining', 'drained'].map(at).join(', ')})`);
  t.ok(warden.lines.some((l) => l.msg === 'drained'));
});

t.test('drain: pipelined requests the backend ran are all answered, the last with Connection: close', async (t) => {
  // Marking the response writing when the drain began closed the connection after it: the answer
  // to a POST pipelined behind it, which the backend had already run, never reached the client.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { lifecycle: { drain_timeout: '5s' } });
  const socket = tlsConnect({ host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
  t.teardown(() => socket.destroy());
  await new Promise((r) => socket.once('secureConnect', r));
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  const closed = new Promise((r) => socket.once('close', r));
  socket.write(
    'GET /slow?ms=800 HTTP/1.1\r\nHost: localhost\r\n\r\nPOST /slow?ms=400 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\nhi',
  );
  while (backend.requests.length < 2) await new Promise((r) => setTimeout(r, 20));
  const drained = s.sidecar.drain();
  await closed;
  await drained;
  const statuses = [...got.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
  const connections = [...got.matchAll(/\r\nconnection: ([^\r]+)/gi)].map((m) => m[1]?.toLowerCase());
  t.same(statuses, ['200', '200'], 'both answered');
  t.same(connections, ['keep-alive', 'close'], 'the last closes the connection');
  t.same(
    backend.requests.map((r) => r.method),
    ['GET', 'POST'],
    'the backend ran both',
  );
});

t.test('SIGTERM with a request outlasting the grace period: closed at the deadline', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { lifecycle: { drain_timeout: '1s' } }));
  const cert = await testCertificate();
  const agent = testAgent(cert.certPem);
  t.teardown(() => agent.close());
  const hanging = fetchText(`${warden.url}/hang`, agent).then(
    (r) => `status ${r.status}`,
    () => 'cut',
  );
  await new Promise((r) => setTimeout(r, 300));
  const start = Date.now();
  warden.child.kill('SIGTERM');
  t.equal(await warden.exited, 0);
  t.ok(Date.now() - start < 4000, `exited ${Date.now() - start} ms after SIGTERM with drain_timeout 1s`);
  t.equal(await hanging, 'cut');
});

t.test('SIGTERM: an h2 session that takes no byte of its answered response is cut after the stall bound, not the grace', async (t) => {
  // A client that stops reading keeps its stream open (flow control) and moves no byte; so did a
  // session whose client vanished at the wrong moment on Node 20 (h2-session-tracker.ts), which
  // held every drain for the whole grace period. A stream still waiting for the backend is kept.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { lifecycle: { drain_timeout: '15s' } }));
  const cert = await testCertificate();
  const stalled = http2Connect(`https://localhost:${warden.port}`, { ca: cert.certPem });
  stalled.on('error', () => undefined);
  t.teardown(() => stalled.destroy());
  const download = stalled.request({ ':path': '/download?bytes=4000000' });
  download.on('error', () => undefined);
  const status = await new Promise<number>((resolve) => download.once('response', (h) => resolve(Number(h[':status']))));
  t.equal(status, 200, 'the download is answered; its body is never read');
  download.pause();
  const slowAgent = testAgent(cert.certPem, { h2: true, connections: 1 });
  t.teardown(() => slowAgent.close());
  const slow = fetchText(`${warden.url}/slow?ms=4000`, slowAgent);
  while (!backend.requests.some((r) => r.url.startsWith('/slow'))) await new Promise((r) => setTimeout(r, 20));

  const signalled = Date.now();
  warden.child.kill('SIGTERM');
  t.equal((await slow).status, 200, 'a stream waiting 4 s for the backend, longer than the stall bound, still completes');
  t.equal(await warden.exited, 0, 'exit code 0');
  const took = Date.now() - signalled;
  t.ok(took < 8000, `stopped ${took} ms after SIGTERM (drain_timeout 15s): the stalled session was cut`);
});

t.test('SIGHUP: a valid file applies, a broken one is refused and the old one keeps serving', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { routes: [{ id: 'open', path: '/*' }] }));
  const cert = await testCertificate();
  const agent = testAgent(cert.certPem);
  t.teardown(() => agent.close());
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 200);

  // Broken: an invalid value. The running configuration stays.
  writeFileSync(
    warden.configFile,
    (await testConfigYaml(backend.url, { routes: [{ id: 'open', path: '/*' }] })) + 'limits:\n  max_body_bytes: lots\n',
  );
  warden.child.kill('SIGHUP');
  const failed = await warden.waitFor((l) => l.event === 'warden.config.reload_failed');
  t.match(failed['warden.detail'], /limits\.max_body_bytes: must be a size/);
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 200, 'still serving on the old configuration');

  // Valid: /admin now denied.
  writeFileSync(
    warden.configFile,
    await testConfigYaml(backend.url, {
      routes: [
        { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
        { id: 'open', path: '/*' },
      ],
    }),
  );
  warden.child.kill('SIGHUP');
  await warden.waitFor((l) => l.event === 'warden.config.reloaded');
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 403, 'the new policy applies');
  t.equal((await fetchText(`${warden.url}/other`, agent)).status, 200);

  // Deleted file: refused too.
  writeFileSync(warden.configFile, 'listeners: [not, a, map]\n');
  warden.child.kill('SIGHUP');
  await warden.waitFor((l) => l.event === 'warden.config.reload_failed' && l !== failed);
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 403, 'the last good policy still applies');

  // A FIFO nobody writes to, as a ${file:} value and then as the file itself: reading one held the
  // event loop (no request, no /healthz, not even SIGTERM answered) until something wrote to it.
  const fifo = join(mkdtempSync(join(tmpdir(), 'warden-fifo-')), 'secret');
  execFileSync('mkfifo', [fifo]);
  const good = await testConfigYaml(backend.url, { routes: [{ id: 'open', path: '/*' }] });
  writeFileSync(warden.configFile, good.replace(/^service:\n {2}name: [^\n]*\n/m, `service:\n  name: \${file:${fifo}}\n`));
  t.not(readFileSync(warden.configFile, 'utf8'), good, 'the secret names the FIFO');
  /** The next reload_failed after the signal (earlier ones are kept in warden.lines). */
  const nextFailure = () => {
    const seen = new Set(warden.lines.filter((l) => l.event === 'warden.config.reload_failed'));
    warden.child.kill('SIGHUP');
    return warden.waitFor((l) => l.event === 'warden.config.reload_failed' && !seen.has(l));
  };
  const fifoSecret = await nextFailure();
  t.match(fifoSecret['warden.detail'], /a FIFO, not a file/);
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 403, 'a FIFO secret: refused, the last good policy serving');
  const configFile = warden.configFile;
  rmSync(configFile);
  execFileSync('mkfifo', [configFile]);
  const fifoConfig = await nextFailure();
  t.match(fifoConfig['warden.detail'], /a FIFO, not a file/);
  t.equal((await fetchText(`${warden.url}/admin/x`, agent)).status, 403, 'the file a FIFO: refused, still serving');
  warden.child.kill('SIGTERM');
  t.equal(await warden.exited, 0, 'and SIGTERM is answered');
});

t.test('admin: /healthz, /readyz and /metrics', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(
    t,
    await testConfigYaml(backend.url, { upstream: { health_path: '/healthz' }, routes: [{ id: 'api', path: '/api/*' }] }),
  );
  const cert = await testCertificate();
  const agent = testAgent(cert.certPem);
  t.teardown(() => agent.close());
  t.same((await fetchText(`${warden.adminUrl}/healthz`, agent)).json(), { status: 'ok' });
  const ready = await fetchText(`${warden.adminUrl}/readyz`, agent);
  t.equal(ready.status, 200);
  t.equal(backend.requests.at(-1)?.url, '/healthz', 'readiness probes the configured health path');

  await fetchText(`${warden.url}/api/a`, agent);
  await fetchText(`${warden.url}/api/a`, agent);
  await fetchText(`${warden.url}/nope`, agent);
  const metrics = (await fetchText(`${warden.adminUrl}/metrics`, agent)).text;
  t.match(metrics, /warden_http_request_duration_seconds_count\{[^}]*route="api"[^}]*status="200"[^}]*\} 2/);
  t.match(metrics, /warden_http_request_duration_seconds_count\{[^}]*route="_unmatched"[^}]*status="404"[^}]*\} 1/);
  t.match(metrics, /warden_security_events_total\{[^}]*event="warden.route.unknown"[^}]*\} 1/);
  t.match(metrics, /process_resident_memory_bytes/);
  t.equal((await fetchText(`${warden.adminUrl}/nothing`, agent)).status, 404);
  t.equal((await fetchText(`${warden.adminUrl}/metrics`, agent, { method: 'POST' })).status, 405);
  warden.child.kill('SIGTERM');
  await warden.exited;
});

t.test('access log: one line per request, credentials redacted', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const warden = await spawnWarden(t, await testConfigYaml(backend.url, { log: { access_headers: true } }));
  const cert = await testCertificate();
  const agent = testAgent(cert.certPem);
  t.teardown(() => agent.close());
  await fetchText(`${warden.url}/x?y=1`, agent, {
    headers: { authorization: 'Bearer s3cret', cookie: 'session=s3cret', 'x-warden-token': 's3cret', 'user-agent': 'test-agent' },
  });
  const line = await warden.waitFor((l) => l.msg === 'request');
  t.match(line, {
    'http.request.method': 'GET',
    'url.path': '/x',
    'http.route': '_default',
    'http.response.status_code': 200,
    'client.address': '127.0.0.1',
    'network.protocol.version': '1.1',
  });
  t.ok(typeof line.upstream_ms === 'number' && line.upstream_ms <= (line.duration_ms as number), "the backend's time, within the whole");
  t.match((line.headers as Record<string, string>)['user-agent'], 'test-agent');
  warden.child.kill('SIGTERM');
  await warden.exited;
  const all = warden.lines.map((l) => JSON.stringify(l)).join('\n');
  t.notMatch(all, /s3cret/, 'no credential in any log line');
  t.match(all, /"authorization":"\[redacted\]"/);
});

t.test('SIGHUP: a replaced certificate is used for new handshakes; open connections keep working', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const dir = mkdtempSync(join(tmpdir(), 'warden-rotate-'));
  const first = await createSelfSignedCertificate();
  writeFileSync(join(dir, 'tls.crt'), first.certPem);
  writeFileSync(join(dir, 'tls.key'), first.keyPem);
  const config = await testConfigYaml(backend.url, {
    listeners: { inbound: { tls: { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } } },
  });
  const warden = await spawnWarden(t, config);
  const peerCert = (ca: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ port: warden.port, host: '127.0.0.1', servername: 'localhost', ca });
      socket.once('secureConnect', () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      });
      socket.once('error', reject);
    });
  const before = await peerCert(first.certPem);
  const kept = testAgent(first.certPem);
  t.teardown(() => kept.close());
  t.equal((await fetchText(`${warden.url}/`, kept)).status, 200);

  const second = await createSelfSignedCertificate();
  writeFileSync(join(dir, 'tls.crt'), second.certPem);
  writeFileSync(join(dir, 'tls.key'), second.keyPem);
  warden.child.kill('SIGHUP');
  await warden.waitFor((l) => l.event === 'warden.config.reloaded');
  const after = await peerCert(second.certPem);
  t.not(after, before, 'new handshakes present the new certificate');
  t.equal((await fetchText(`${warden.url}/`, kept)).status, 200, 'the kept-alive connection still works');
  warden.child.kill('SIGTERM');
  await warden.exited;
});
