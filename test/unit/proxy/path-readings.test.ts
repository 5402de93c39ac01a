import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { WardenError } from '../../../src/errors.js';
import { compilePlan, type Plan } from '../../../src/pipeline/plan.js';
import { checkPathReadings } from '../../../src/proxy/path-readings.js';
import { testConfigYaml } from '../../support/sidecar.js';

async function plan(extra: Record<string, unknown>): Promise<Plan> {
  return compilePlan(parseSidecarConfig('s.yaml', await testConfigYaml('http://127.0.0.1:1', extra)).config);
}

/** The rule of the refusal for `path`, or 'ok' when it passes (and 'unrouted' when it names no route). */
function verdict(p: Plan, method: string, path: string): string {
  const match = p.resolve(method, path);
  if (match instanceof WardenError) return 'unrouted';
  const err = checkPathReadings(p, method, path, match);
  if (err) t.equal(err.code, 'ERR_PATH_INVALID', path);
  return err?.rule ?? 'ok';
}

t.test('a reading a backend routes by that names another declared route is refused', async (t) => {
  const p = await plan({
    routes: [
      { id: 'admin', path: '/admin', access: { action: 'deny' } },
      { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
      { id: 'orders', path: '/orders/:id' },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string][] = [
    ['/admin/', 'path.trailing_slash'],
    ['/ADMIN', 'path.case'],
    ['/Admin/', 'path.case'],
    ['/SECRET/data', 'path.case'],
    ['/Secret/', 'path.case'],
    ['/ORDERS/abc', 'path.case'], // open as sent, orders read caselessly: another policy, whatever it is
    ['/admin;x', 'path.segment_parameters'],
    ['/public/..;/admin', 'path.segment_parameters'],
    // Readings that name the same route, or none, change nothing.
    ['/admin', 'ok'],
    ['/orders/AbC', 'ok'],
    ['/public/ReadMe.txt', 'ok'],
    ['/public/', 'ok'],
    ['/', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
});

t.test('a route declared in upper case is named by the lower-case path too (a catch-all takes it as sent)', async (t) => {
  const p = await plan({
    routes: [
      { id: 'admin', path: '/Admin', access: { action: 'deny' } },
      { id: 'reports', path: '/v1/Reports/:reportId', access: { action: 'deny' } },
      { id: 'user', path: '/users/:userId' }, // upper case in a parameter name only
      { id: 'open', path: '/*' },
    ],
  });
  t.ok(p.declaresUpperCase);
  const cases: [string, string][] = [
    ['/admin', 'path.case'],
    ['/admin/', 'path.case'],
    ['/admin;x', 'path.segment_parameters'],
    ['/v1/reports/7', 'path.case'],
    ['/Admin', 'ok'], // denied by its own route, not by a reading
    ['/users/7', 'ok'],
    ['/public', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
  const lower = await plan({
    routes: [
      { id: 'user', path: '/users/:userId' },
      { id: 'open', path: '/*' },
    ],
  });
  t.notOk(lower.declaresUpperCase, 'parameter names are not text a path spells');
});

t.test('the readings combine: ";parameters" dropped, then the slash or the case (Tomcat before Spring, Express)', async (t) => {
  const p = await plan({
    routes: [
      { id: 'admin', path: '/admin', access: { action: 'deny' } },
      { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string][] = [
    // Tomcat reads "/admin/", Spring before 6 then serves "/admin".
    ['/admin;x/', 'path.segment_parameters'],
    ['/admin/;x', 'path.segment_parameters'],
    ['/admin/.;x', 'path.segment_parameters'],
    ['/ADMIN;jsessionid=1/', 'path.segment_parameters'],
    ['/Admin;x', 'path.segment_parameters'],
    ['/secret;x', 'path.segment_parameters'], // "/secret", the root of the denied subtree (below)
    ['/Secret;x/', 'path.segment_parameters'],
    // Parameters that leave every reading on the same route are refused all the same (below):
    // Fastify 4 reads what follows the ";" as the query.
    ['/public;jsessionid=1', 'path.semicolon_query'],
    ['/public;x/', 'path.semicolon_query'],
    ['/Public;x/ReadMe', 'path.semicolon_query'],
    ['/public;', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
});

t.test('text after a ";" is refused: Fastify 4 ends the path at the first ";" and reads the rest as the query', async (t) => {
  // find-my-way's useSemicolonDelimiter, on by default in Fastify 4 (4.29.1 checked by hand):
  // `/docs/1;/summary` runs `/docs/:id` (id "1", query {"/summary": ""}), `/admin/stats;x/y` runs
  // `/admin/stats`, `/files/a;limit=1000` runs `/files/:name` with the query {limit: "1000"}.
  const p = await plan({
    routes: [
      { id: 'doc', path: '/docs/:id', access: { action: 'deny' } },
      { id: 'summary', path: '/docs/:id/summary' },
      { id: 'stats', path: '/admin/stats', access: { action: 'deny' } },
      { id: 'file', path: '/files/:name' },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string][] = [
    ['/docs/1;/summary', 'path.semicolon_query'],
    ['/docs/1;x/summary', 'path.semicolon_query'],
    ['/admin/stats;x/y', 'path.semicolon_query'],
    ['/admin/stats;jsessionid=1/z', 'path.semicolon_query'],
    ['/files/a;limit=1000', 'path.semicolon_query'],
    ['/files/a;x', 'path.semicolon_query'],
    ['/files/a;;', 'path.semicolon_query'],
    ['/public;jsessionid=1', 'path.semicolon_query'],
    // The ";" reading naming another route keeps its own rule (Tomcat reads "/admin/stats").
    ['/admin/stats;x', 'path.segment_parameters'],
    // A ";" that ends the path leaves Fastify no query, and an encoded one is no delimiter to it.
    ['/files/a;', 'ok'],
    ['/files/a%3Blimit=1000', 'ok'],
    ['/docs/1%3B/summary', 'ok'],
    ['/docs/1/summary', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
});

t.test('a subtree rule covers its root: the path with a slash added is read too (Express mounts)', async (t) => {
  const p = await plan({
    routes: [
      { id: 'secret', path: '/secret/*', access: { action: 'deny' } },
      { id: 'exception', path: '/secret/public' },
      { id: 'list', path: '/orders/', methods: ['GET'] },
      { id: 'item', path: '/orders/:id/', methods: ['GET'] },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string][] = [
    ['/secret', 'path.trailing_slash'],
    ['/Secret', 'path.case'],
    ['/SECRET', 'path.case'],
    ['/orders', 'path.trailing_slash'], // a non-strict "/orders/" route answers "/orders"
    ['/orders/A1', 'path.trailing_slash'],
    ['/secret/data', 'ok'],
    ['/secret/public', 'ok'], // deeper in the subtree: adding a slash is no reading of it
    ['/secrets', 'ok'],
    ['/public', 'ok'],
    ['/', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
  t.equal(verdict(p, 'POST', '/orders'), 'ok', 'no "/orders/" route for POST');
});

t.test('a path declared as a route of its own beside its subtree is served as declared', async (t) => {
  const p = await plan({
    routes: [
      { id: 'list', path: '/files', methods: ['GET'] },
      { id: 'files', path: '/files/*', access: { action: 'deny' } },
      { id: 'item', path: '/pets/:id' },
      { id: 'sub', path: '/pets/:id/*', access: { action: 'deny' } },
      { id: 'open', path: '/*' },
    ],
  });
  t.equal(verdict(p, 'GET', '/files'), 'ok');
  t.equal(verdict(p, 'GET', '/pets/7'), 'ok');
  t.equal(verdict(p, 'GET', '/Files'), 'path.case', 'read case-insensitively it is /files, another route than the open one');
  t.equal(verdict(p, 'POST', '/files'), 'path.trailing_slash', 'for POST /files names only the open route');
});

t.test('under passthrough, the root of a denied subtree is refused too', async (t) => {
  const p = await plan({
    routing: { unmatched: 'passthrough' },
    routes: [{ id: 'secret', path: '/secret/*', access: { action: 'deny' } }],
  });
  t.equal(verdict(p, 'GET', '/secret'), 'path.trailing_slash');
  t.equal(verdict(p, 'GET', '/secret;x'), 'path.segment_parameters');
  t.equal(verdict(p, 'GET', '/elsewhere'), 'ok');
});

t.test('OpenAPI templates: a collection beside its items is no slash reading', async (t) => {
  // find-my-way matches "/pets/" to "/pets/:id" with an empty id; "/pets" must not be read so.
  const p = await plan({
    routes: [
      { id: 'list', path: '/pets', methods: ['GET'] },
      { id: 'item', path: '/pets/:id', methods: ['GET'], access: { action: 'deny' } },
      { id: 'owner', path: '/pets/:id/owner/*', methods: ['GET'], access: { action: 'deny' } },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string][] = [
    ['/pets', 'ok'],
    ['/pets/7', 'ok'],
    ['/pets/7;x', 'path.semicolon_query'],
    ['/pets/7;', 'ok'],
    ['/pets/7/owner/x', 'ok'],
    ['/pets/7/owner', 'path.trailing_slash'], // the root of "/pets/:id/owner/*"
    ['/pets;x/', 'path.segment_parameters'], // "/pets/", the item route with an empty id
    ['/Pets', 'path.case'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
});

t.test('an API that declares trailing slashes (Django REST style) is served as declared', async (t) => {
  const p = await plan({
    routes: [
      { id: 'list', path: '/orders/', methods: ['GET', 'POST'] },
      { id: 'item', path: '/orders/:id/', methods: ['GET'] },
    ],
  });
  t.equal(verdict(p, 'GET', '/orders/'), 'ok');
  t.equal(verdict(p, 'POST', '/orders/'), 'ok');
  t.equal(verdict(p, 'GET', '/orders/A1/'), 'ok', '/orders/A1 names no route');
});

t.test('routes a case-insensitive backend cannot tell apart still load; the first stands for both', async (t) => {
  const p = await plan({
    routes: [
      { id: 'lower', path: '/admin' },
      { id: 'upper', path: '/Admin' },
    ],
  });
  t.equal(verdict(p, 'GET', '/admin'), 'ok');
  t.equal(verdict(p, 'GET', '/Admin'), 'path.case', 'a backend reading case-insensitively serves /admin');
});

t.test('only another method: the reading names no route for this one', async (t) => {
  const p = await plan({
    routes: [
      { id: 'create', path: '/admin', methods: ['POST'] },
      { id: 'open', path: '/*' },
    ],
  });
  t.equal(verdict(p, 'GET', '/admin/'), 'ok');
  t.equal(verdict(p, 'POST', '/admin/'), 'path.trailing_slash');
});

t.test('without routes no reading matters', async (t) => {
  const p = await plan({});
  t.equal(verdict(p, 'GET', '/ADMIN/'), 'ok');
});

t.test('a format suffix, trailing dots or padded segments that name another route are refused (defect 179)', async (t) => {
  const p = await plan({
    routes: [
      { id: 'login', path: '/login', methods: ['POST'] },
      { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
      { id: 'spec', path: '/openapi' },
      { id: 'spec-json', path: '/openapi.json' },
      { id: 'files', path: '/files/:name' },
      { id: 'open', path: '/*' },
    ],
  });
  const cases: [string, string, string][] = [
    // Rails reads `/login.json` as `/login` (`(.:format)`), Spring MVC's suffix match before 5.3 too.
    ['POST', '/login.json', 'path.suffix'],
    ['POST', '/login.xml', 'path.suffix'],
    ['POST', '/login.', 'path.suffix'], // IIS drops trailing dots
    ['POST', '/login%20', 'path.suffix'], // Spring's AntPathMatcher trims tokens
    ['POST', '/login%09', 'path.suffix'],
    ['GET', '/admin%20/users', 'path.suffix'],
    ['GET', '/%20admin/users', 'path.suffix'],
    ['GET', '/admin.json/users', 'ok'], // only the last segment's suffix: no backend here reads it so
    ['POST', '/login.json/', 'path.suffix'], // Rails drops the trailing slash, then reads the format
    ['POST', '/login./', 'path.suffix'],
    // The same route, a route declared as it is, or no route at all: nothing changes.
    ['GET', '/files/report.pdf', 'ok'],
    ['GET', '/files/a%20b', 'ok'],
    ['GET', '/openapi.json', 'ok'],
    ['GET', '/.well-known/x', 'ok'],
    ['GET', '/.env', 'ok'],
    ['GET', '/readme.txt', 'ok'],
    ['POST', '/login', 'ok'],
  ];
  for (const [method, path, expected] of cases) t.equal(verdict(p, method, path), expected, `${method} ${path}`);
});

t.test(
  "a subtree rule's root with a format suffix, trailing dots or padding is its root: refused, not the catch-all's (row 22b)",
  async (t) => {
    for (const passthrough of [false, true]) {
      const p = await plan({
        ...(passthrough ? { routing: { unmatched: 'passthrough' } } : {}),
        routes: [
          { id: 'admin', path: '/admin/*', access: { action: 'deny' } },
          { id: 'files', path: '/files/*' },
          { id: 'pet', path: '/pets/:id' },
          { id: 'pet-parts', path: '/pets/:id/*', access: { action: 'deny' } },
          ...(passthrough ? [] : [{ id: 'open', path: '/*' }]),
        ],
      });
      const cases: [string, string][] = [
        // Rails reads `/admin.json` as `/admin`, which Express serves from the router mounted at `/admin`.
        ['/admin.json', 'path.suffix'],
        ['/admin.', 'path.suffix'],
        ['/admin%20', 'path.suffix'],
        ['/admin%09', 'path.suffix'],
        ['/Admin.json', 'path.suffix'], // and folds case (ASP.NET Core)
        ['/ADMIN.', 'path.suffix'],
        ['/Admin%20', 'path.suffix'],
        ['/files.json', 'path.suffix'],
        ['/files.xml', 'path.suffix'],
        ['/Files.json', 'path.suffix'],
        ['/admin.json/', 'path.suffix'], // Rails drops the trailing slash before it reads the format
        ['/admin./', 'path.suffix'],
        ['/files.json/', 'path.suffix'],
        // Other names, paths inside the subtree, and a parameter's own value: nothing changes.
        ['/administrator.json', 'ok'],
        ['/admin-tools.json', 'ok'],
        ['/admin/x.json', 'ok'],
        ['/files/a.json', 'ok'],
        ['/pets/7.json', 'ok'],
        ['/pets/7.', 'ok'],
        ['/pets/7%20', 'ok'],
        ['/readme.json', 'ok'],
      ];
      for (const [path, expected] of cases)
        t.equal(verdict(p, 'GET', path), expected, `${passthrough ? 'passthrough' : 'catch-all'} ${path}`);
    }
  },
);

t.test(
  'a percent-encoded ": @ ! $ & \' ( ) * + , =" that names another declared route once decoded is refused (Flask, ASP.NET Core, Go decode it)',
  async (t) => {
    const p = await plan({
      routes: [
        { id: 'me', path: '/users/@me', methods: ['GET'], access: { action: 'deny' } },
        { id: 'user', path: '/users/:id', methods: ['GET'] },
        { id: 'metadata', path: '/odata/$metadata', methods: ['GET'], access: { action: 'deny' } },
        { id: 'entity', path: '/odata/:set', methods: ['GET'] },
        { id: 'open', path: '/*' },
      ],
    });
    const cases: [string, string][] = [
      ['/users/%40me', 'path.encoded_delimiter'],
      // Combined with the case and suffix readings (ASP.NET Core decodes and folds case): the review's `%40ME`, `%40me.json`.
      ['/users/%40ME', 'path.encoded_delimiter'],
      ['/users/%40me.json', 'path.encoded_delimiter'],
      ['/users/%40me/', 'path.encoded_delimiter'],
      ['/odata/%24metadata', 'path.encoded_delimiter'],
      ['/odata/%24Metadata', 'path.encoded_delimiter'],
      ['/users/%40me/x', 'ok'], // the catch-all as sent and decoded
      // An encoded character inside a parameter names the same route: it passes.
      ['/users/alice%40example.com', 'ok'],
      ['/users/a%2Bb%3Dc', 'ok'],
      // Only those characters: %25 (a percent sign) is no delimiter, and %2540 stays "%40" text.
      ['/users/%2540me', 'ok'],
      ['/users/@me', 'ok'],
    ];
    for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
  },
);

t.test('a script name before a declared path is refused where nothing declared names the path (PATH_INFO, row 21b F5)', async (t) => {
  // PHP's built-in server runs /v1/index.php with PATH_INFO /admin/stats; a front controller routes it as /v1/admin/stats.
  const p = await plan({
    routing: { unmatched: 'passthrough' },
    routes: [
      { id: 'stats', path: '/v1/admin/stats', access: { action: 'deny' } },
      { id: 'file', path: '/v1/files/:name/meta' },
      { id: 'meta', path: '/v1/files/meta', access: { action: 'deny' } },
      { id: 'docs', path: '/docs/*' },
      { id: 'legacy', path: '/v1/legacy.php/admin/stats' },
    ],
  });
  const cases: [string, string][] = [
    ['/v1/index.php/admin/stats', 'path.script_prefix'],
    ['/index.php/v1/admin/stats', 'path.script_prefix'],
    ['/v1/app.cgi/admin/stats', 'path.script_prefix'],
    // …combined with the other readings (the fourth review: Laravel trims the slash).
    ['/v1/index.php/admin/stats/', 'path.script_prefix'],
    ['/v1/index.php/Admin/Stats', 'path.script_prefix'],
    // Literally declared, by a parameter, or a reading that names nothing: left alone.
    ['/v1/legacy.php/admin/stats', 'ok'],
    ['/v1/files/a.php/meta', 'ok'],
    ['/v1/index.php/other', 'ok'],
    ['/v1/index.php', 'ok'],
    ['/v1/admin/stats', 'ok'],
  ];
  for (const [path, expected] of cases) t.equal(verdict(p, 'GET', path), expected, path);
  // By a wildcard: the wildcard's policy is not the operation's.
  const wild = await plan({
    routes: [
      { id: 'stats', path: '/v1/admin/stats', access: { action: 'deny' } },
      { id: 'v1', path: '/v1/*' },
    ],
  });
  t.equal(verdict(wild, 'GET', '/v1/index.php/admin/stats'), 'path.script_prefix');
  t.equal(verdict(wild, 'GET', '/v1/index.php/anything'), 'ok');
});
