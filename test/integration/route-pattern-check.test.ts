/**
 * `warden config check` and `warden proxy` refuse a deny route that no request can match, and an
 * OpenAPI template that names a parameter twice: both passed and the proxy served the requests the
 * operator meant to refuse or validate (red team 28 §1, §6).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, testConfigYaml } from '../support/sidecar.js';

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [join(repoRoot, 'bin/warden.js'), ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

t.test('a deny route written encoded is refused at its line, naming the pattern to write', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-routes-'));
  const file = join(dir, 'sidecar.yaml');
  const text = await testConfigYaml('http://127.0.0.1:8080', {
    routes: [
      { id: 'docs', path: '/files/my%20docs/*', access: { action: 'deny' } },
      { id: 'all', path: '/*' },
    ],
  });
  writeFileSync(file, text);
  const line = text.split('\n').findIndex((l) => l.includes('my%20docs')) + 1;
  for (const command of ['config check', 'proxy']) {
    const r = warden(...command.split(' '), '-c', file);
    t.equal(r.code, 2, `${command}: exit 2`);
    t.equal(
      r.stderr,
      `${file}:${line} routes[0].path: "/files/my%20docs/*" is never matched: requests are matched decoded; write "/files/my docs/*"\n`,
      command,
    );
  }
});

t.test('a path template naming a parameter twice is refused at its pointer', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-routes-'));
  const doc = join(dir, 'openapi.yaml');
  writeFileSync(
    doc,
    [
      'openapi: 3.0.3',
      "info: {title: t, version: '1'}",
      'paths:',
      "  '/a/{b}/{b}':",
      '    get:',
      '      security: []',
      '      parameters: [{name: b, in: path, required: true, schema: {type: integer, maximum: 10}}]',
      "      responses: {'200': {description: ok}}",
      '',
    ].join('\n'),
  );
  const file = join(dir, 'sidecar.yaml');
  writeFileSync(file, await testConfigYaml('http://127.0.0.1:8080', { openapi: { document: './openapi.yaml', allow_public: true } }));
  const r = warden('config', 'check', '-c', file);
  t.equal(r.code, 2);
  t.match(r.stderr, /^\S+:\d+ openapi\.document: \S*openapi\.yaml #\/paths\/~1a~1\{b\}~1\{b\}: path parameter "\{b\}" appears twice\n$/);
});
