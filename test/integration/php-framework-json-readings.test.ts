/**
 * Red team 27f against the real Laravel 8 and Symfony 5.4 HTTP layers (Debian's php-illuminate-http
 * and php-symfony-http-foundation under `php -S`) behind an enforcing sidecar:
 * - F1: a JSON member literally named `"user.role"` passed as an undeclared extra, and Laravel's
 *   `$request->all(['user.role'])` (Arr::get: the literal key first) read it as `user.role`;
 * - F2: a JSON document sent as `text/plain` or `application/octet-stream` to an operation that also
 *   takes JSON was forwarded unchecked, and Symfony's `toArray()` and Laravel's `json()` decode it.
 * Each is refused before PHP; a note, a document the schema allows and an undeclared dotted name pass.
 * Review rt27 F3, F4: a dotted path through a map (`teams.core.role`) is refused when its value is
 * one the schema refuses there, a valid value under a dotted name passes, and a JSON upload that
 * only lacks required members (an export file sent to an import operation) passes.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startPhpServer } from '../support/php.js';
import { startTestSidecar } from '../support/sidecar.js';

const AUTOLOAD = '/usr/share/php/Illuminate/Http/autoload.php';

/** Logs each request (`log`), then answers with what each layer reads. */
const router = (log: string) => `<?php
file_put_contents(${JSON.stringify(log)}, "x\\n", FILE_APPEND);
require '${AUTOLOAD}';
use Illuminate\\Http\\Request as LR;
use Symfony\\Component\\HttpFoundation\\Request as SR;
header('content-type: application/json');
$s = SR::createFromGlobals();
try { $toArray = $s->toArray(); } catch (\\Throwable $e) { $toArray = 'EXC'; }
$l = LR::createFromBase(SR::createFromGlobals());
echo json_encode(['toArray' => $toArray, 'json' => (object) $l->json()->all(), 'all' => $l->all(['user.role']), 'teamRole' => \\Illuminate\\Support\\Arr::get($l->all(), 'teams.core.role')]);
`;

const DOC = `openapi: 3.1.0
info: { title: phpfw, version: '1' }
security: []
paths:
  /v1/users:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                name: { type: string, pattern: '^[a-z]+$' }
                user: { type: object, properties: { role: { type: string, enum: [user] } } }
                teams: { type: object, additionalProperties: { type: object, properties: { role: { type: string, enum: [user] } } } }
      responses: { '200': { description: ok } }
  /v1/import:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object, required: [url], properties: { url: { type: string, format: uri } } }
          application/octet-stream: { schema: { type: string, format: binary } }
      responses: { '200': { description: ok } }
  /v1/profile:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              properties:
                name: { type: string, pattern: '^[a-z]+$' }
                role: { type: string, enum: [user] }
          application/octet-stream: { schema: { type: string, format: binary } }
          text/plain: { schema: { type: string, maxLength: 20000000 } }
      responses: { '200': { description: ok } }
`;

interface Read {
  toArray: unknown;
  json: Record<string, unknown>;
  all: Record<string, unknown>;
  teamRole: unknown;
}

t.test('Laravel and Symfony read no JSON the schema did not check', async (t) => {
  // A prerequisite (README, .ci/run), not a reason to skip: without it the test would prove nothing.
  t.ok(existsSync(AUTOLOAD), `${AUTOLOAD} is installed (php-illuminate-http)`);
  const dir = mkdtempSync(join(tmpdir(), 'warden-phpfw-'));
  const log = join(dir, 'requests.log');
  writeFileSync(log, '');
  writeFileSync(join(dir, 'router.php'), router(log));
  // Without a php.ini (php -n), as the other PHP tests run it; Laravel's Str needs mbstring.
  const url = await startPhpServer(t, ['-d', 'extension=mbstring'], [join(dir, 'router.php')]);
  const php = { requests: () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length };
  const s = await startTestSidecar(t, url, {
    openapi: { document: openApiFile(DOC), validation: { mode: 'enforce' } },
    limits: { max_body_bytes: '12MiB' },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (path: string, type: string, body: string | Buffer) =>
    fetchText(`${s.url}${path}`, agent, { method: 'POST', headers: { 'content-type': type }, body });

  // F1
  for (const body of ['{"name":"eve","user.role":"admin"}', '{"name":"eve","user":{"role":"user"},"user.role":"admin"}']) {
    const r = await post('/v1/users', 'application/json', body);
    t.equal(r.status, 400, `${body}: refused before PHP`);
    t.match(r.json(), {
      code: 'ERR_REQUEST_INVALID',
      detail:
        /^\/body\/user\.role is read as the property "user\.role" by Laravel's Arr::get.*; there, its value must be equal to one of the allowed values$/,
    });
  }
  // F4: through a map, and a valid value.
  const map = await post('/v1/users', 'application/json', '{"name":"eve","teams":{"core":{"role":"user"}},"teams.core.role":"admin"}');
  t.equal(map.status, 400, 'a path through a map, refused before PHP');
  t.match(map.json(), { detail: /^\/body\/teams\.core\.role is read as the property "teams\.core\.role"/ });
  const mapOk = await post('/v1/users', 'application/json', '{"name":"eve","teams.core.role":"user"}');
  t.equal(mapOk.status, 200, 'a path through a map with a value the schema allows there passes');
  t.equal(mapOk.json<Read>().teamRole, 'user', 'Arr::get reads it');
  const valid = await post('/v1/users', 'application/json', '{"name":"eve","user.role":"user"}');
  t.equal(valid.status, 200, 'a valid value under a dotted name passes');
  t.same(valid.json<Read>().all, { user: { role: 'user' } }, 'Laravel reads the checked value');
  const nested = await post('/v1/users', 'application/json', '{"name":"eve","user":{"role":"user"},"meta.x":1}');
  t.equal(nested.status, 200, 'an undeclared dotted name passes');
  t.same(nested.json<Read>().all, { user: { role: 'user' } }, 'Laravel reads the checked value');

  // F2
  const admin = '{"name":"eve","role":"admin","is_admin":true}';
  for (const type of ['text/plain', 'application/octet-stream', 'text/plain; charset=utf-8']) {
    const r = await post('/v1/profile', type, admin);
    t.equal(r.status, 400, `${type}: refused before PHP`);
    t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /toArray\(\)/, errors: [{ pointer: '/body' }] });
    const twice = await post('/v1/profile', type, '{"role":"user","role":"admin"}');
    t.equal(twice.status, 400, `${type}: a member named twice, refused`);
  }
  // F3: an export file to an import operation lacks `url`: nothing the schema forbids.
  const exported = await post('/v1/import', 'application/octet-stream', '{"users":[{"id":1}]}');
  t.equal(exported.status, 200, 'a JSON export sent as octet-stream passes');
  t.same(exported.json<Read>().toArray, { users: [{ id: 1 }] }, 'Symfony reads it');
  t.equal((await post('/v1/import', 'application/octet-stream', '[{"id":1}]')).status, 200, 'a JSON array file passes');
  const badUrl = await post('/v1/import', 'application/octet-stream', '{"users":[],"url":"not a uri"}');
  t.equal(badUrl.status, 400, 'a present value the JSON schema forbids is refused');
  t.match(badUrl.json(), { errors: [{ pointer: '/body/url' }] });
  const before = php.requests();
  const ok = await post('/v1/profile', 'text/plain', '{"name":"eve","role":"user"}');
  t.equal(ok.status, 200, 'a document the JSON schema allows passes');
  t.same(ok.json<Read>().toArray, { name: 'eve', role: 'user' });
  for (const note of ['[1] first point', '{not json', 'role=admin']) {
    const r = await post('/v1/profile', 'text/plain', note);
    t.equal(r.status, 200, `${note}: a note passes`);
    t.equal(r.json<Read>().toArray, 'EXC', 'Symfony reads no JSON in it');
  }
  t.equal(php.requests(), before + 4, 'only those reached PHP');
  // Past body_memory_bytes (1 MiB): validation holds the whole body (up to max_body_bytes) all the same.
  const big = `{"name":"eve","role":"admin","pad":"${'x'.repeat(2 << 20)}"}`;
  t.equal((await post('/v1/profile', 'application/octet-stream', big)).status, 400, 'a 2 MiB document is checked too');
});
