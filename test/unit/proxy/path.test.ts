import t from 'tap';
import { normaliseTarget } from '../../../src/proxy/path.js';
import { WardenError } from '../../../src/errors.js';

t.test('x', async (t) => {
  const r = normaliseTarget('/a/%61b');
  t.same(r, { path: '/a/ab', search: '' });
  t.ok(normaliseTarget('/%2F') instanceof WardenError);
});
