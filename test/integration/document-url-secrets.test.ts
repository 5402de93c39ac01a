/**
 * red team 28 §3: an openapi.document URL's user name and password, and the `${…}` values substituted
 * into it, were echoed whole by `config check` (its error and its success line) and by
 * warden.config.reload_failed (logs, console, OTLP): OpenAPI load errors skipped the masking that
 * the configuration's own errors get. The document URL is shown without its userinfo and its query.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { repoRoot, spawnWarden, testConfigYaml } from '../support/sidecar.js';

const PASSWORD = 'Sup3rS3cretPass';
const TOKEN = 'Sup3rS3cretValue';
const DOC = `openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /login:
    post:
      operationId: login
      security: []
      responses: {'200': {description: ok}}
`;

async function documentServer(t: Test): Promise<number> {
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/doc.yaml')) res.writeHead(200, { 'content-type': 'application/yaml' }).end(DOC);
    else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

const documentUrl = (port: number, name: string) => `http://svc:${PASSWORD}@127.0.0.1:${port}/${name}?access_token=\${DOC_TOKEN}`;

async function configWith(url: string): Promise<string> {
  return (await testConfigYaml('http://127.0.0.1:1')) + `openapi:\n  document: "${url}"\n  allow_public: true\n`;
}

/** Not spawnSync: the document server answers from this process's event loop. */
async function check(text: string): Promise<{ code: number | null; out: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-docsecret-')), 'sidecar.yaml');
  writeFileSync(file, text);
  const child = spawn(process.execPath, [join(repoRoot, 'bin/warden.js'), 'config', 'check', '-c', file], {
    env: { ...process.env, DOC_TOKEN: TOKEN },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, out };
}

t.test('config check shows a document URL without its credentials or query, valid or not', async (t) => {
  const port = await documentServer(t);
  const valid = await check(await configWith(documentUrl(port, 'doc.yaml')));
  t.equal(valid.code, 0, valid.out);
  t.match(valid.out, `1 operations from http://***@127.0.0.1:${port}/doc.yaml`);
  const missing = await check(await configWith(documentUrl(port, 'missing.yaml')));
  t.equal(missing.code, 2, missing.out);
  t.match(missing.out, /openapi\.document: cannot read http:\/\/\*\*\*@127\.0\.0\.1:\d+\/missing\.yaml \(answered 404\)/);
  for (const r of [valid, missing]) {
    t.notMatch(r.out, PASSWORD, 'no password');
    t.notMatch(r.out, TOKEN, 'no substituted token');
  }
});

t.test('warden.config.reload_failed for a document that cannot be read: no credentials, no substituted value', async (t) => {
  const port = await documentServer(t);
  const warden = await spawnWarden(t, await configWith(documentUrl(port, 'doc.yaml')), { DOC_TOKEN: TOKEN });
  writeFileSync(warden.configFile, await configWith(documentUrl(port, 'missing.yaml')));
  warden.child.kill('SIGHUP');
  const failed = await warden.waitFor((l) => l.event === 'warden.config.reload_failed');
  const detail = String(failed['warden.detail']);
  t.match(detail, /cannot read http:\/\/\*\*\*@127\.0\.0\.1:\d+\/missing\.yaml/);
  t.notMatch(JSON.stringify(warden.lines) + warden.stderr(), PASSWORD, 'no password anywhere in the logs');
  t.notMatch(JSON.stringify(warden.lines) + warden.stderr(), TOKEN, 'no substituted token anywhere in the logs');
});
