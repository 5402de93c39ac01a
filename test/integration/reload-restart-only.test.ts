/**
 * Settings a reload cannot apply everywhere are not applied anywhere, and the reload says so.
 * Red-team round 19: a reload renaming `service.name` was reported applied with no warning, while
 * only half the sidecar took the new name (OTLP's resource, the DPoP challenge's realm and the
 * rate-limit prefix did; the log lines, /metrics and the 401 realm did not); and a changed
 * `limits.send_timeout` went to the new forwarder while the listeners' slow-read timers kept theirs.
 */
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { dpopClient } from '../support/dpop.js';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { spawnWarden, startTestSidecar, testConfigYaml } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);

t.test('a reload renaming service.name: everything keeps the name the sidecar started with, and a warning says so', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const forged = await startForgedIssuer(t);
  const otlp = await startOtlpReceiver();
  t.teardown(() => otlp.close());
  const config = (name: string) =>
    testConfigYaml(backend.url, {
      service: { name },
      telemetry: { otlp: { endpoint: otlp.url, export_interval: '200ms', timeout: '1s' } },
      tokens: { issuers: [{ id: 'corp', issuer: forged.issuer, audience: ['api'] }] },
      // One request a minute per caller: the bucket is kept only while the Redis/memory prefix is.
      rate_limits: { default: { rate: 1, per: '1m', burst: 1 } },
      routes: [
        { id: 'x', path: '/x' },
        { id: 'y', path: '/y', rate_limit: false },
      ],
    });
  const w = await spawnWarden(t, await config('orders'));
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());
  const bearer = await forged.sign({ iss: forged.issuer, aud: 'api', sub: 'alice', client_id: 'app', exp: now() + 600 });
  const key = await dpopClient();
  const bound = await forged.sign({
    iss: forged.issuer,
    aud: 'api',
    sub: 'bob',
    client_id: 'app',
    exp: now() + 600,
    cnf: { jkt: key.jkt },
  });
  const get = (headers: Record<string, string> = {}, path = '/x') => fetchText(`${w.url}${path}`, agent, { headers });
  t.equal((await get({ authorization: `Bearer ${bearer}` })).status, 200, 'alice, before the reload');

  writeFileSync(w.configFile, await config('payments'));
  w.child.kill('SIGHUP');
  const reloaded = await w.waitFor((l) => l.event === 'warden.config.reloaded' || l.event === 'warden.config.reload_failed');
  t.equal(reloaded.event, 'warden.config.reloaded');
  t.notMatch(String(reloaded['warden.detail']), /telemetry restarted/, 'telemetry not restarted: its identity is the same');
  const warning = w.lines.find((l) => Array.isArray(l['warden.config.restart_only']));
  t.same(warning?.['warden.config.restart_only'], ['service.name'], 'the warning names service.name');
  t.equal(warning?.msg, 'service.name changes only on restart: still running with the old value');

  t.equal((await get({ authorization: `Bearer ${bearer}` })).status, 429, 'alice’s bucket is kept (the rate-limit prefix did not change)');
  t.match((await get({}, '/y')).headers['www-authenticate'], /^Bearer realm="orders"/, 'a 401’s realm');
  const unproven = await get({ authorization: `DPoP ${bound}` }, '/y');
  t.equal(unproven.status, 401);
  t.match(unproven.headers['www-authenticate'], /^DPoP realm="orders"/, 'a DPoP challenge’s realm');
  const record = await otlp.until(() => otlp.logs.find((l) => l.eventName === 'warden.config.reloaded'), 5000);
  t.equal(record.resource['service.name'], 'orders', 'OTLP’s resource');
  t.equal((await w.waitFor((l) => l.event === 'warden.authn.token_missing')).service, 'orders', 'the log lines');
  const metrics = await (await fetch(`${w.adminUrl}/metrics`)).text();
  t.match(metrics, /warden_security_events_total\{event="warden\.config\.reloaded",service="orders"\}/, '/metrics');
});

t.test('limits.send_timeout changes only on restart: the forwarder keeps the listeners’ value', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { limits: { send_timeout: '30s' } });
  const file = s.sidecar.current.loaded.file;
  const changed = await testConfigYaml(backend.url, { limits: { send_timeout: '5s' } });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(s.sidecar.current.config.limits.send_timeout, 30_000, 'the generation in force has the start value');
  t.same(
    s.logs.find((l) => Array.isArray(l['warden.config.restart_only']))?.['warden.config.restart_only'],
    ['limits.send_timeout'],
    'and a warning names it',
  );
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, changed)));
  t.equal(s.logs.filter((l) => Array.isArray(l['warden.config.restart_only'])).length, 1, 'the same file again: no warning');
});

t.test('every connection-level limit keeps its start value on reload, in the handler too; a revert to it warns not', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const start = { max_header_count: 50, request_timeout: '60s' };
  const s = await startTestSidecar(t, backend.url, { limits: start });
  const file = s.sidecar.current.loaded.file;
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const twentyHeaders = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, 'v']));
  const lowered = await testConfigYaml(backend.url, { limits: { max_header_count: 10, request_timeout: '2s', headers_timeout: '2s' } });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, lowered)));
  const warnings = () => s.logs.filter((l) => Array.isArray(l['warden.config.restart_only']));
  t.same(
    warnings()[0]?.['warden.config.restart_only'],
    ['limits.max_header_count', 'limits.headers_timeout', 'limits.request_timeout'],
    'the warning names the three',
  );
  t.equal(s.sidecar.current.config.limits.max_header_count, 50, 'the generation in force has the start header count');
  t.equal(s.sidecar.current.config.limits.request_timeout, 60_000, '…and the start request timeout');
  const r = await fetchText(`${s.url}/echo`, agent, { headers: twentyHeaders });
  t.equal(r.status, 200, '20 headers still pass, as the warning says (it was 431 by the new file)');
  // Back to the values in force: nothing to warn about (it said "still running with the old value").
  const back = await testConfigYaml(backend.url, { limits: start });
  t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, back)));
  t.equal(warnings().length, 1, 'a revert to the values in force: no second warning');
});
