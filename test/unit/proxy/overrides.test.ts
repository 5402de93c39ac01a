import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { checkOverrides, OVERRIDE_HEADERS } from '../../../src/proxy/overrides.js';

t.test('every override header is refused, with a rule naming it', async (t) => {
  for (const name of OVERRIDE_HEADERS) {
    const err = checkOverrides({ host: 'a', [name]: name.includes('url') ? '/admin' : 'DELETE' }, '');
    t.ok(err instanceof WardenError, name);
    t.equal(err?.code, 'ERR_REQUEST_OVERRIDE', name);
    t.equal(err?.status, 400, name);
    t.equal(err?.rule, `overrides.${name.replaceAll('-', '_')}`, name);
    t.match(err?.detail, name, name);
  }
  // Present but empty still asks for an override in some frameworks (and is never needed).
  t.equal(checkOverrides({ 'x-http-method-override': '' }, '')?.code, 'ERR_REQUEST_OVERRIDE');
});

t.test('an override header spelled with underscores is refused as the dashed one (CGI, WSGI, Rack read both as HTTP_X_…)', async (t) => {
  const spellings = (name: string): string[] => {
    // Every mix of '-' and '_' at the dashes: x-http_method-override reaches such a backend too.
    const [first, ...rest] = name.split('-');
    let out = [first as string];
    for (const part of rest) out = out.flatMap((s) => [`${s}-${part}`, `${s}_${part}`]);
    return out.filter((s) => s !== name);
  };
  for (const name of OVERRIDE_HEADERS) {
    const variants = spellings(name);
    t.equal(variants.length, 2 ** (name.split('-').length - 1) - 1, `${name}: every spelling`);
    for (const spelled of variants) {
      // Node lower-cases field names: X_HTTP_Method_Override arrives as x_http_method_override.
      const err = checkOverrides({ host: 'a', [spelled]: 'DELETE' }, '');
      t.equal(err?.code, 'ERR_REQUEST_OVERRIDE', spelled);
      t.equal(err?.rule, `overrides.${name.replaceAll('-', '_')}`, spelled);
    }
  }
  t.equal(checkOverrides({ x_http_method_override_not: 'b', x_original_host: 'a', x_request_id: 'r' }, ''), undefined, 'other names');
});

t.test('a _method query parameter is refused however it is spelled', async (t) => {
  const refused = [
    '?_method=DELETE',
    '?a=1&_method=PUT',
    '?%5Fmethod=DELETE',
    '?%5fmethod=DELETE',
    '?_%6Dethod=DELETE',
    '?_METHOD=DELETE',
    '?.method=DELETE', // PHP reads "." in a name as "_"
    '?%20_method=DELETE', // leading spaces trimmed
    '?%20%20_method=DELETE',
    '?_method[]=DELETE', // qs, PHP and Rails read brackets as the name before them
    '?x%20_method=1&_method=PUT',
    '?_method', // no value: still a request to override
    '?_method%00=DELETE', // PHP ends a name at a NUL
    '?_method%00x=DELETE',
    '?[_method]=DELETE', // qs drops an empty parent; method-override then reads _method (defect 168)
    '?%5B_method%5D=DELETE',
    '?]_method=DELETE', // Rack 2 strips leading brackets and what follows the name
    '?_method]=DELETE',
  ];
  for (const search of refused) {
    const err = checkOverrides({}, search);
    t.equal(err?.code, 'ERR_REQUEST_OVERRIDE', search);
    t.equal(err?.rule, 'overrides.method_parameter', search);
  }
});

t.test(
  "the other frameworks' override parameters are refused: Plack's x-tunneled-method, ASP.NET MVC's X-HTTP-Method-Override (red team 26)",
  async (t) => {
    const refused = [
      '?x-tunneled-method=DELETE', // Plack::Middleware::MethodOverride's default
      '?a=1&x-tunneled-method=delete',
      '?%78-tunneled-method=DELETE',
      '?X-Tunneled-Method=DELETE',
      '?x-tunneled-method[]=DELETE',
      '?.x-tunneled-method=DELETE', // qs with allowDots
      '?X-HTTP-Method-Override=DELETE', // System.Web.Mvc reads the query after the header and the form
      '?x-http-method-override=PUT',
    ];
    for (const search of refused) {
      const err = checkOverrides({}, search);
      t.equal(err?.code, 'ERR_REQUEST_OVERRIDE', search);
      t.equal(err?.rule, 'overrides.method_parameter', search);
      t.match(err?.detail, /method-override query parameter/, search);
    }
    for (const search of ['?tunneled-method=x', '?x-tunneled=1', '?x-http-method=1', '?q=x-tunneled-method'])
      t.equal(checkOverrides({}, search), undefined, `${search} passes`);
  },
);

t.test('ordinary requests pass', async (t) => {
  // PHP trims leading spaces: " method" is "method".
  const passed = [
    '',
    '?',
    '?+method=DELETE',
    '?[method=DELETE', // PHP drops a name that starts with a bracket
    '?%20method=DELETE',
    '?method=card',
    '?payment_method=card',
    '?q=_method',
    '?q=%5Fmethod',
    '?x_method=1',
    '?methods=a',
    '?a=%20b',
  ];
  for (const search of passed) t.equal(checkOverrides({ host: 'a', 'x-request-id': 'r' }, search), undefined, search || '(none)');
  t.equal(checkOverrides({ 'x-original-host': 'a', 'x-http-method-override-not': 'b' }, ''), undefined, 'other names');
});
