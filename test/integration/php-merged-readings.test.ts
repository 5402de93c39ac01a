/**
 * Red-team round 21b against PHP 8.2's built-in server behind an enforcing sidecar: names PHP reads
 * as a checked one though Warden did not check them there.
 * - F2: a query key named as a body property; $_REQUEST (request_order=GP) takes it as the body's.
 * - F5: `/v1/index.php/admin/stats` under `routing.unmatched: passthrough`; PHP runs v1/index.php
 *   with PATH_INFO /admin/stats, which a front controller routes as the operation /v1/admin/stats.
 * - F6: the dashed spelling of a header declared with `_`; PHP reads both as HTTP_X_REPORT_SCOPE.
 * Each is refused (or dropped) before PHP; the legitimate request still reaches it.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startPhpServer } from '../support/php.js';
import { startTestSidecar } from '../support/sidecar.js';

interface Read {
  request: Record<string, string>;
  pathInfo: string | null;
  scope: string | null;
}

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /v1/users:
    post:
      security: []
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                name: { type: string }
                role: { type: string, enum: [user] }
                is_admin: { type: string, readOnly: true }
      responses: { '200': { description: ok } }
  /v1/admin/stats:
    get:
      security: []
      parameters: [{ name: X-Admin-Key, in: header, required: true, schema: { type: string } }]
      responses: { '200': { description: ok } }
  /v1/reports:
    get:
      security: []
      parameters: [{ name: X_Report_Scope, in: header, schema: { type: string, enum: [own] } }]
      responses: { '200': { description: ok } }
`;

t.test('PHP reads no query key as a body property, no script path as an operation, no other spelling of a header', async (t) => {
  const docroot = mkdtempSync(join(tmpdir(), 'warden-php-front-'));
  mkdirSync(join(docroot, 'v1'));
  // A front controller: /v1/users and /v1/index.php/… both run it (php -S looks up index.php).
  writeFileSync(
    join(docroot, 'v1', 'index.php'),
    `<?php header('content-type: application/json');
echo json_encode(['request' => (object) $_REQUEST, 'pathInfo' => $_SERVER['PATH_INFO'] ?? null, 'scope' => $_SERVER['HTTP_X_REPORT_SCOPE'] ?? null]);`,
  );
  const phpUrl = await startPhpServer(t, ['-d', 'request_order=GP'], ['-t', docroot]);

  const s = await startTestSidecar(t, phpUrl, {
    openapi: { document: openApiFile(DOCUMENT), allow_public: true, validation: { mode: 'enforce', unknown_query: 'allow' } },
    routing: { unmatched: 'passthrough' },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const form = { method: 'POST' as const, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=eve' };

  // F2
  const ok = await fetchText(`${s.url}/v1/users?page=2`, agent, form);
  t.equal(ok.status, 200, 'a form with an unrelated query key passes');
  t.same(ok.json<Read>().request, { page: '2', name: 'eve' }, 'PHP merges it');
  for (const search of ['?role=admin&is_admin=1', '?is_admin=1', '?role[]=admin']) {
    const r = await fetchText(`${s.url}/v1/users${search}`, agent, form);
    t.equal(r.status, 400, `${search}: refused before PHP`);
    t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /^\/query\/.*body property/ });
  }

  // F5
  t.equal((await fetchText(`${s.url}/v1/admin/stats`, agent)).status, 400, 'the operation without its header');
  const front = await fetchText(`${s.url}/v1/index.php/admin/stats`, agent);
  t.equal(front.status, 400, 'its path behind the script name');
  t.match(front.json(), { code: 'ERR_PATH_INVALID' });
  const passed = await fetchText(`${s.url}/v1/index.php/elsewhere`, agent);
  t.equal(passed.status, 200, 'a path info naming no operation passes');
  t.equal(passed.json<Read>().pathInfo, '/elsewhere');
  t.equal((await fetchText(`${s.url}/v1/admin/stats`, agent, { headers: { 'x-admin-key': 'k' } })).status, 200);

  // F6
  t.equal(
    (await fetchText(`${s.url}/v1/reports`, agent, { headers: { X_Report_Scope: 'all' } })).status,
    400,
    'the declared spelling is checked',
  );
  const mixed = await fetchText(`${s.url}/v1/reports`, agent, { headers: { X_Report_Scope: 'own', 'X-Report-Scope': 'all' } });
  t.equal(mixed.status, 200);
  t.equal(mixed.json<Read>().scope, 'own', 'PHP reads the checked value; the dashed spelling was dropped');
  const dashed = await fetchText(`${s.url}/v1/reports`, agent, { headers: { 'X-Report-Scope': 'all' } });
  t.equal(dashed.json<Read>().scope, null, 'alone, the dashed spelling does not reach PHP either');
});
