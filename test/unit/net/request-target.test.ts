import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { normaliseTarget } from '../../../src/net/request-target.js';

t.test('leaves ordinary targets untouched (fast path)', async (t) => {
  t.same(normaliseTarget('/orders/42?x=1&y=%2F'), { path: '/orders/42', search: '?x=1&y=%2F' });
  t.same(normaliseTarget('/'), { path: '/', search: '' });
  t.same(normaliseTarget('/a/b/'), { path: '/a/b/', search: '' });
  t.same(normaliseTarget('/orders?q=x%3Blimit=1000'), { path: '/orders', search: '?q=x%3Blimit=1000' }, 'an encoded ";" passes');
  t.same(
    normaliseTarget('/s?q=caf%u00e9%20%25&n=%U004F%2b'),
    { path: '/s', search: '?q=caf%u00e9%20%25&n=%U004F%2b' },
    '%XX and %uXXXX escapes pass',
  );
  t.same(normaliseTarget('/a;b/c?x=1'), { path: '/a;b/c', search: '?x=1' }, 'a ";" in the path is for path-readings.ts');
});

t.test('normalises alternative spellings to one path', async (t) => {
  const cases: [string, string][] = [
    ['/%61dmin/stats', '/admin/stats'],
    ['/api/../admin', '/admin'],
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/admin', '/admin'],
    ['/./admin/./x', '/admin/x'],
    ['//admin//x', '/admin/x'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
    ['/%252e%252e/admin', '/%252e%252e/admin'], // double encoding stays encoded: decoded once only
    ['/x%7e', '/x~'],
  ];
  for (const [input, expected] of cases) {
    const r = normaliseTarget(input);
    t.notOk(r instanceof WardenError, `${input} accepted`);
    t.equal((r as { path: string }).path, expected, `${input} → ${expected}`);
  }
});

t.test('refuses what cannot be normalised safely, with a rule per reason', async (t) => {
  const cases: [string, string][] = [
    ['http://evil/admin', 'path.origin_form'],
    ['*', 'path.origin_form'],
    ['/api%2Fadmin', 'path.encoded_separator'],
    ['/api%2fadmin', 'path.encoded_separator'],
    ['/api%5cadmin', 'path.encoded_separator'],
    ['/api\\admin', 'path.backslash'],
    ['/a%00b', 'path.encoded_control'],
    ['/a%0d%0ab', 'path.encoded_control'],
    ['/a%zz', 'path.bad_escape'],
    ['/a%4', 'path.bad_escape'],
    ['/..', 'path.dot_segments'],
    ['/a/../../etc/passwd', 'path.dot_segments'],
    ['/%2e%2e/etc', 'path.dot_segments'],
    ['/a#frag', 'path.fragment'],
    ['/orders?q=x;limit=1000', 'path.query_semicolon'], // Rack 2 splits the query at ";"
    ['/orders?;', 'path.query_semicolon'],
    ['/a/%2e%2e?q=x;y', 'path.query_semicolon'],
    // Jetty reads any character of 0–` as a hex digit: "l%6@mit" is "limit", "%4?R" is "OR" (row 411).
    ['/items?l%6@mit=1000', 'path.query_bad_escape'],
    ['/items?q=%27%20%4?R%201%3=1', 'path.query_bad_escape'],
    ['/items?q=100%', 'path.query_bad_escape'],
    ['/items?q=%zz', 'path.query_bad_escape'],
    ['/items?q=%4', 'path.query_bad_escape'],
    ['/items?q=%u004', 'path.query_bad_escape'],
    ['/items?q=%u00@7', 'path.query_bad_escape'],
    // node:http2 hands :path over as Latin-1, one character per byte: raw UTF-8 ("1＇", "é") as mojibake.
    ['/search?q=1\u00ef\u00bc\u0087%20OR%201=1', 'path.characters'],
    ['/\u00ef\u00bc\u009cscript\u00ef\u00bc\u009e', 'path.characters'],
    ['/caf\u00e9', 'path.characters'],
    ['/a b', 'path.characters'],
    ['/a?q=a\tb', 'path.characters'],
    ['/a\u007f', 'path.characters'],
  ];
  for (const [input, rule] of cases) {
    const r = normaliseTarget(input);
    t.ok(r instanceof WardenError, `${input} refused`);
    t.equal((r as WardenError).code, 'ERR_PATH_INVALID');
    t.equal((r as WardenError).rule, rule, `${input}: ${rule}`);
  }
});

t.test('pathWithoutParameters: the path as a server that drops ;parameters reads it', async (t) => {
  const { pathWithoutParameters } = await import('../../../src/net/request-target.js');
  t.equal(pathWithoutParameters('/secret;x=1/data'), '/secret/data');
  t.equal(pathWithoutParameters('/public/..;/secret/data'), '/secret/data');
  t.equal(pathWithoutParameters('/a;b/c;d'), '/a/c');
  t.equal(pathWithoutParameters('/plain/path'), '/plain/path');
  t.ok(pathWithoutParameters('/..;/..;/etc/passwd') instanceof WardenError, 'climbing above the root is an error');
});
