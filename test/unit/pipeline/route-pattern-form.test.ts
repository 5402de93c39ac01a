/**
 * Route patterns (`routes[].path`) and OpenAPI path templates are held at load to the form requests
 * are matched in (decoded, dot-segments resolved, `//` collapsed): one that differs was never
 * matched, so a deny route written `/files/my%20docs/*` protected nothing (red team 28 §1). Regex
 * parameters (§5) and a parameter named twice (§6) are refused too.
 */
import t from 'tap';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { WardenError } from '../../../src/errors.js';
import { operationsOf } from '../../../src/openapi/operations.js';
import type { OpenApiDocument } from '../../../src/openapi/document.js';
import { normaliseTarget } from '../../../src/net/request-target.js';
import { compilePlan, PlanError, type Plan } from '../../../src/pipeline/plan.js';
import { testConfigYaml } from '../../support/sidecar.js';

const base = await testConfigYaml('http://127.0.0.1:1', { routes: [{ id: 'x', path: '/x' }] });

/** The plan for one deny route beside a catch-all, or the PlanError's field and message. */
function planOf(path: string): Plan | string {
  const text = base.replace(
    /routes:[\s\S]*$/,
    `routes: ${JSON.stringify([
      { id: 'secret', path, access: { action: 'deny' } },
      { id: 'all', path: '/*' },
    ])}\n`,
  );
  try {
    return compilePlan(parseSidecarConfig('s.yaml', text).config);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    return `${err.field.join('.')}: ${err.message}`;
  }
}

/** The route a request target is routed to, after the normalisation every request gets. */
function routed(plan: Plan, target: string): string {
  const n = normaliseTarget(target);
  if (n instanceof WardenError) return n.code;
  const m = plan.resolve('GET', n.path);
  return m instanceof WardenError ? m.code : m.route.id;
}

t.test('a route pattern not in the form requests are matched in is refused, naming the form to write', async (t) => {
  const cases: [string, string][] = [
    ['/files/my%20docs/*', '"/files/my%20docs/*" is never matched: requests are matched decoded; write "/files/my docs/*"'],
    ['/caf%C3%A9/*', '"/caf%C3%A9/*" is never matched: requests are matched decoded; write "/café/*"'],
    ['/caf%c3%a9/*', '"/caf%c3%a9/*" is never matched: requests are matched decoded; write "/café/*"'],
    ['/%7Euser/*', '"/%7Euser/*" is never matched: requests are matched decoded; write "/~user/*"'],
    ['/adm%69n', '"/adm%69n" is never matched: requests are matched decoded; write "/admin"'],
    ['/users/%40me', '"/users/%40me" is never matched: requests are matched decoded; write "/users/@me"'],
    ['/items%3Asearch', '"/items%3Asearch" is never matched: requests are matched decoded; write "/items::search"'],
    ['/100%25', '"/100%25" is never matched: requests are matched decoded; write "/100%"'],
    [
      '/internal/./*',
      '"/internal/./*" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/internal/*"',
    ],
    [
      '/internal//*',
      '"/internal//*" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/internal/*"',
    ],
    ['//admin', '"//admin" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/admin"'],
    [
      '/x/../admin',
      '"/x/../admin" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/admin"',
    ],
    [
      '/x/%2e%2e/my%20admin',
      '"/x/%2e%2e/my%20admin" is never matched: requests are matched decoded, with "." and ".." segments resolved and "//" collapsed; write "/my admin"',
    ],
    ['/admin?x=1', '"/admin?x=1" is never matched: "?" starts the query, which is not part of the path: remove "?x=1"'],
    ['/admin#top', '"/admin#top" is never matched: "#" starts a fragment, which requests do not send: remove "#top"'],
    ['/admin ', '"/admin " is never matched: it ends in white space (a quoting slip?): write "/admin"'],
    ['/admin\t', '"/admin\\t" is never matched: it ends in white space (a quoting slip?): write "/admin"'],
    ['/a/../..', '"/a/../.." is never matched: its ".." climbs above the root (such requests are refused)'],
    ['/a%2Fb', '"/a%2Fb" is never matched: requests with an encoded "/" (%2F) are refused'],
    ['/a\\b', '"/a\\\\b" is never matched: requests with a "\\" are refused'],
    ['/a%00b', '"/a%00b" is never matched: requests with an encoded control character are refused'],
    ['/caf%C3', '"/caf%C3" is never matched: "%C3" is not UTF-8, and requests are matched decoded'],
    ['/a%2Ab', '"/a%2Ab" is never matched: requests are matched decoded ("/a*b"), and a literal "*" cannot be written in a pattern'],
    ['/a%3Fb', '"/a%3Fb" is never matched: requests are matched decoded ("/a?b"), and a literal "?" cannot be written in a pattern'],
    ['/users/:id?', '"/users/:id?": optional parameters (":id?") are not supported: declare the path with and without the parameter'],
  ];
  for (const [path, message] of cases) t.equal(planOf(path), `routes.0.path: ${message}`, JSON.stringify(path));
});

t.test(
  'a regex parameter that can backtrack is refused: safe-regex2 passes (a|a)*b, which backtracks exponentially on a path (red team 28 §5)',
  async (t) => {
    const because =
      'only one that runs in linear time is accepted (no repetition that can overlap or nest: `^\\d+$`, `^[^/:]+` pass; one that backtracks can hold every request for seconds): simplify it, or match the segment with the parameter alone and check its value in the backend or the OpenAPI document';
    t.equal(planOf('/x/:id((a|a)*b)'), `routes.0.path: "/x/:id((a|a)*b)" has a regular expression on ":id" that can backtrack: ${because}`);
    t.match(planOf('/x/:id((\\w|\\d)*x)'), /has a regular expression on ":id" that can backtrack/);
    // Linear ones load and route (what find-my-way users write; an OpenAPI `{id}:cancel` is routed so).
    for (const [path, hit, miss] of <[string, string, string][]>[
      ['/x/:id(^\\d+$)/y', '/x/42/y', '/x/ab/y'],
      ['/x/:a-:b(^\\d+)', '/x/a-7', '/x/a-b'],
      ['/v1/jobs/:id(^[^/:]+)::cancel', '/v1/jobs/5:cancel', '/v1/jobs/5:delete'],
      ['/o/:id(^[0-9a-f]{24}$)', '/o/0123456789abcdef01234567', '/o/xyz'],
    ]) {
      const plan = planOf(path);
      if (typeof plan === 'string') {
        t.fail(`${path}: ${plan}`);
        continue;
      }
      t.equal(routed(plan, hit), 'secret', `${path}: ${hit} is the route's`);
      t.equal(routed(plan, miss), 'all', `${path}: ${miss} is not`);
    }
  },
);

t.test(
  'a parameter running into "::" is refused: find-my-way reads ":id::cancel" as one parameter, matching any segment (review rt28-2, F2)',
  async (t) => {
    t.equal(
      planOf('/v1/jobs/:id::cancel'),
      'routes.0.path: "/v1/jobs/:id::cancel": ":id::cancel" is one parameter to the router (a name runs to "(", "-", ".", "/" or the end), so it matches any segment: write ":id(^[^/:]+)::cancel" for a parameter followed by a literal ":"',
    );
  },
);

t.test('a parameter named twice is refused: only the last segment was bound (red team 28 §6)', async (t) => {
  t.equal(planOf('/a/:b/:b'), 'routes.0.path: "/a/:b/:b": parameter ":b" appears twice');
  t.equal(planOf('/a/:b-:b'), 'routes.0.path: "/a/:b-:b": parameter ":b" appears twice');
});

t.test('ordinary patterns still load and route as before', async (t) => {
  const accepted: [string, string, string][] = [
    ['/users/:id', '/users/7', '/users/7/x'],
    ['/files/*', '/files/a/b', '/filesx'],
    ['/café', '/caf%C3%A9', '/cafe'],
    ['/files/my docs/*', '/files/my%20docs/x', '/files/my/x'],
    ['/~user/*', '/%7Euser/x', '/user/x'],
    ['/items::search', '/items:search', '/items'],
    ['/users/@me', '/users/@me', '/users/me'],
    ['/a:b', '/ax', '/b'],
    ['/100%', '/100%25', '/100'],
    ['/:file.:ext', '/a.json', '/a'],
    ['/a/:x-:y', '/a/p-q', '/a/p'],
    ['/orders/', '/orders/', '/orders/1'],
    ['/admin*', '/adminx', '/admi'],
    ['/', '/', '/x'],
    ['/p/(x)', '/p/%28x%29', '/p/x'],
  ];
  for (const [path, hit, miss] of accepted) {
    const plan = planOf(path);
    if (typeof plan === 'string') {
      t.fail(`${path}: ${plan}`);
      continue;
    }
    t.equal(routed(plan, hit), 'secret', `${path}: ${hit} is the route's`);
    t.equal(routed(plan, miss), 'all', `${path}: ${miss} is not`);
  }
});

const ok = { responses: { '200': { description: 'ok' } } };
const docWith = (template: string) => ({ openapi: '3.1.0', paths: { [template]: { get: ok } } }) as unknown as OpenApiDocument;

t.test('an OpenAPI path template not in the form requests are matched in is refused at its path item', async (t) => {
  const cases: [string, string, string][] = [
    [
      '/e/%7Bb%7D',
      '#/paths/~1e~1%7Bb%7D',
      '"/e/%7Bb%7D" is never matched: requests are matched decoded ("/e/{b}"), and a literal "{" cannot be written in a template',
    ],
    [
      '/a//b',
      '#/paths/~1a~1~1b',
      '"/a//b" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/a/b"',
    ],
    [
      '/a/../b',
      '#/paths/~1a~1..~1b',
      '"/a/../b" is never matched: requests are matched with "." and ".." segments resolved and "//" collapsed; write "/b"',
    ],
    [
      '/a/%2e%2e/b',
      '#/paths/~1a~1%2e%2e~1b',
      '"/a/%2e%2e/b" is never matched: requests are matched decoded, with "." and ".." segments resolved and "//" collapsed; write "/b"',
    ],
    [
      '/caf%C3%A9/{id}',
      '#/paths/~1caf%C3%A9~1{id}',
      '"/caf%C3%A9/{id}" is never matched: requests are matched decoded; write "/café/{id}"',
    ],
    [
      '/items%3Asearch',
      '#/paths/~1items%3Asearch',
      '"/items%3Asearch" is never matched: requests are matched decoded; write "/items:search"',
    ],
    ['/a?b=1', '#/paths/~1a?b=1', '"/a?b=1" is never matched: "?" starts the query, which is not part of the path: remove "?b=1"'],
    ['/a ', '#/paths/~1a ', '"/a " is never matched: it ends in white space (a quoting slip?): write "/a"'],
    ['/a/{b}/{b}', '#/paths/~1a~1{b}~1{b}', 'path parameter "{b}" appears twice'],
    ['/a/{b}.{b}', '#/paths/~1a~1{b}.{b}', 'path parameter "{b}" appears twice'],
  ];
  for (const [template, pointer, message] of cases)
    t.throws(() => operationsOf(docWith(template)), { pointer, message }, JSON.stringify(template));
});

t.test('ordinary templates still load', async (t) => {
  for (const template of [
    '/v1/{id}/items',
    '/café',
    '/my docs/{id}',
    '/items:search',
    '/jobs/{id}:cancel',
    '/a/{x}-{y}',
    '/orders/',
    '/100%',
    '/ä',
  ])
    t.equal(operationsOf(docWith(template)).length, 1, template);
});
