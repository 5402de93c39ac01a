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
  const err = checkPathReadings(p, method, path, match.route);
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
