/**
 * `warden dev` as a person runs it: the embedded demo (CA, IdP, backend, sidecar) starts, prints
 * what to try, serves and refuses. Apart from cli.test.ts so tap runs the two side by side (the
 * demo is the slowest part of the CLI's tests).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/sidecar.js';

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('dev --once: the embedded demo starts, prints what to try, and stops', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-dev-')), 'made-by-dev');
  const devOnce = () =>
    warden('dev', '--once', '--dir', dir, '--port', '0', '--admin-port', '0', '--backend-port', '0', '--ca-port', '0', '--idp-port', '0');
  const r = devOnce();
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /Warden dev — a sidecar on https:\/\/localhost:\d+ in front of the demo backend/);
  t.match(r.stdout, /identity spiffe:\/\/dev\.warden\.test\/ns\/demo\/sa\/orders \(enrolled at the Warden CA/);
  t.match(r.stdout, /curl --cacert .*bundle\.pem --cert .*client\.crt --key .*client\.key https:\/\/localhost:\d+\/api\/hello/);
  // The CA commands name the CLI by its absolute path: they work from wherever the reader is.
  t.match(r.stdout, /^ {2}node \/\S+\/bin\/warden\.js ca list --url https:\/\/127\.0\.0\.1:\d+ --dir \S+$/m);
  t.match(readFileSync(join(dir, 'sidecar.yaml'), 'utf8'), /mesh:/);
  t.ok(existsSync(join(dir, 'sidecar-state', 'workload.pem')), 'the sidecar enrolled into its state dir');
  t.notOk(existsSync(join(dir, 'sidecar-state', 'warden.lock')), 'and released it when it stopped');

  // Its secrets are this user's alone, and no bootstrap token is left usable: another local user
  // read a 0644 sidecar.yaml and enrolled as the sidecar with a token a second run minted and never used.
  const usableTokens = () => {
    const db = new Database(join(dir, 'ca', 'ca.db'), { readonly: true });
    try {
      return (
        db.prepare('SELECT count(*) AS n FROM tokens WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > ?').get(Date.now()) as {
          n: number;
        }
      ).n;
    } finally {
      db.close();
    }
  };
  t.equal(statSync(dir).mode & 0o777, 0o700, 'the dev directory it made is 0700');
  t.equal(statSync(join(dir, 'sidecar.yaml')).mode & 0o777, 0o600, 'sidecar.yaml (bootstrap token, IdP secret) is 0600');
  t.equal(statSync(join(dir, 'warden.log')).mode & 0o777, 0o600, 'warden.log is 0600');
  t.equal(usableTokens(), 0, 'no usable bootstrap token after the first run');
  chmodSync(join(dir, 'sidecar.yaml'), 0o644);
  chmodSync(join(dir, 'warden.log'), 0o644);
  chmodSync(dir, 0o755); // an existing directory keeps its mode (`--dir .`): the files are what is private
  t.equal(devOnce().code, 0, 'a second run starts from the saved credentials');
  t.equal(statSync(dir).mode & 0o777, 0o755, 'an existing directory is left as it is');
  t.equal(statSync(join(dir, 'warden.log')).mode & 0o777, 0o600, 'a warden.log left 0644 is made 0600 again');
  t.equal(usableTokens(), 0, 'and leaves no usable token either (it minted one it did not need)');
  t.equal(statSync(join(dir, 'sidecar.yaml')).mode & 0o777, 0o600, 'a sidecar.yaml left 0644 is made 0600 again');
});

t.test('dev: the demo serves, refuses, and prints requests and events as they happen', async (t) => {
  const { spawn } = await import('node:child_process');
  const { curl } = await import('../support/clients.js');
  const dir = mkdtempSync(join(tmpdir(), 'warden-dev-'));
  const child = spawn(process.execPath, [
    join(repoRoot, 'bin/warden.js'),
    'dev',
    '--dir',
    dir,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--backend-port',
    '0',
    '--ca-port',
    '0',
    '--idp-port',
    '0',
  ]);
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const until = async (re: RegExp) => {
    for (let i = 0; i < 600 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    return re.exec(out);
  };
  const base = (await until(/a sidecar on (https:\/\/localhost:\d+)/))?.[1];
  t.ok(base, 'prints the sidecar address');
  const mtls = ['--cacert', join(dir, 'ca/bundle.pem'), '--cert', join(dir, 'client.crt'), '--key', join(dir, 'client.key')];
  const token = readFileSync(join(dir, 'token.txt'), 'utf8');
  const hello = await curl([...mtls, '-H', `authorization: Bearer ${token}`, `${base}/api/hello`]);
  t.equal(hello.status, 200);
  t.match(hello.body, /hello from the demo backend/);
  t.match(hello.body, /spiffe:\/\/dev\.warden\.test\/ns\/demo\/sa\/client/, 'the backend learns the caller identity');
  const seen = JSON.parse(hello.body) as { token_claims?: Record<string, unknown>; received_headers: Record<string, string> };
  t.match(
    seen.token_claims,
    { aud: 'demo-backend', client_id: 'demo-client', act: { sub: 'spiffe://dev.warden.test/ns/demo/sa/client' } },
    'the backend verified the minted token with the sidecar JWKS',
  );
  t.notOk(JSON.stringify(seen.received_headers).includes(token), 'the IdP token never reaches the backend');
  const jwt = await curl([...mtls, '-H', `authorization: Bearer ${readFileSync(join(dir, 'token-jwt.txt'), 'utf8')}`, `${base}/api/hello`]);
  t.equal(jwt.status, 200, 'a JWT access token from the IdP is accepted');
  const noToken = await curl([...mtls, `${base}/api/hello`]);
  t.equal(noToken.status, 401, 'no token: 401');
  const readOnly = await curl([
    ...mtls,
    '-H',
    `authorization: Bearer ${readFileSync(join(dir, 'token-read.txt'), 'utf8')}`,
    '-d',
    '{}',
    `${base}/api/orders`,
  ]);
  t.equal(readOnly.status, 403, 'a read-only token cannot POST /api/orders');
  const write = ['-H', `authorization: Bearer ${token}`, '-H', 'content-type: application/json'];
  const order = await curl([...mtls, ...write, '-d', '{"item":"tea","quantity":2}', `${base}/api/orders`]);
  t.equal(order.status, 200, 'a valid order passes the OpenAPI document');
  const invalid = await curl([...mtls, ...write, '-d', '{"item":"tea","quantity":0}', `${base}/api/orders`]);
  t.equal(invalid.status, 400, 'an invalid order is refused');
  t.match(JSON.parse(invalid.body), { code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/body/quantity' }] });
  const xss = await curl([...mtls, ...write, '-d', '{"note":"<script>alert(1)</script>"}', `${base}/api/echo`]);
  t.equal(xss.status, 403, 'the waf refuses a script in a JSON body');
  t.ok(await until(/event warden\.input\.xss/), 'and its event is printed');
  const form = await curl([...mtls, '-H', `authorization: Bearer ${token}`, '-d', 'item=tea', `${base}/api/orders`]);
  t.equal(form.status, 415, 'a media type the operation does not take');
  t.match(readFileSync(join(dir, 'openapi.yaml'), 'utf8'), /operationId: createOrder/, 'the demo document is written next to sidecar.yaml');
  const noCert = await curl(['--cacert', join(dir, 'ca/bundle.pem'), `${base}/api/hello`]);
  t.equal(noCert.status, 401, 'no client certificate: 401 on an mTLS route');
  const stranger = await curl([
    '--cacert',
    join(dir, 'ca/bundle.pem'),
    '--cert',
    join(dir, 'stranger.crt'),
    '--key',
    join(dir, 'stranger.key'),
    `${base}/api/hello`,
  ]);
  t.equal(stranger.status, 403, 'a workload outside peers.allow: 403');
  const admin = await curl([...mtls, `${base}/admin/stats`]);
  t.equal(admin.status, 403);
  t.ok(await until(/event warden\.access\.denied/), 'the event is printed');
  t.ok(await until(/403 GET \/admin\/stats {2}route=\S+ h[\d.]+ [\d.]+ ms\n/), 'the request is printed, with no backend time: refused');
  t.ok(await until(/200 GET \/api\/hello {2}route=\S+ h[\d.]+ [\d.]+ ms \(backend [\d.]+ ms\)/), "an answered one with the backend's time");
  child.kill('SIGINT');
  const code = await new Promise((r) => child.once('exit', r));
  t.equal(code, 0);
});
