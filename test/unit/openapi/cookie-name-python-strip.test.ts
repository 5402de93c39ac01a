/**
 * A cookie name ending or starting with U+0085 (NEL) or U+001C–U+001F is the cookie without them to
 * Starlette and Django, which decode the Cookie header as Latin-1 and str.strip() each name (red
 * team 25 F2): validation checks `theme\x85` as `theme`, and a cookie token source reads and strips
 * `access_token\x85` as itself. JS's trim() kept them: an undeclared cookie, never checked, and a
 * second token the backend read as the token cookie.
 */
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../../../src/errors.js';
import { compileTokenSources } from '../../../src/identity/token-sources.js';
import { compileRequestValidator } from '../../../src/openapi/request-validator.js';
import type { RequestContext, UpstreamHeaders } from '../../../src/pipeline/stage.js';
import { testOperation } from '../../support/operation.js';
import { testContext } from '../../support/request-context.js';

const validator = compileRequestValidator(
  testOperation({
    id: 'prefs',
    method: 'GET',
    paths: ['/prefs'],
    pointer: '#/paths/~1prefs/get',
    parameters: [{ name: 'theme', in: 'cookie', schema: { type: 'string', pattern: '^[a-z]+$', minLength: 3 } }],
    dialect: '3.1',
  }),
  { unknownQuery: 'allow' },
);
const check = (cookie: string) => validator.params({ params: {}, search: '', headers: { cookie } });

const STRIPPED = ['\x85', '\x1c', '\x1d', '\x1e', '\x1f'];

t.test("a declared cookie's name with Python's white space around it is that cookie", async (t) => {
  for (const ws of STRIPPED) {
    const hex = `\\x${ws.charCodeAt(0).toString(16)}`;
    t.match(check(`theme${ws}=<x>1`), { pointer: '/cookie/theme' }, `theme${hex}=<x>1`);
    t.match(check(`a=b; ${ws}theme=<x>1`), { pointer: '/cookie/theme' }, `${hex}theme=<x>1`);
    t.match(
      check(`theme=dark; theme${ws}=light`),
      { pointer: '/cookie/theme', message: /once|twice/ },
      `theme and theme${hex}: given twice`,
    );
    t.equal(check(`theme${ws}=dark`), undefined, `theme${hex}=dark: a valid theme`);
  }
});

t.test('its value as Python strips it is checked too', async (t) => {
  t.match(check('theme=ab\x85\x85'), { pointer: '/cookie/theme' }, '"ab" to Starlette: below minLength');
  t.equal(check('theme=dark'), undefined);
});

t.test('no false refusals: UTF-8 names and values, NBSP as before', async (t) => {
  const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  t.equal(check(utf8('prénom=Åsa; theme=dark')), undefined, 'a UTF-8 name and value (Å is C3 85)');
  t.equal(check(`${utf8('Å')}=1; theme=dark`), undefined, 'a name ending in byte 0x85 is another cookie, undeclared');
  t.match(check('theme\xa0=<x>1'), { pointer: '/cookie/theme' }, 'U+00A0, which trim() took already');
});

function ctx(headers: IncomingHttpHeaders, upstreamHeaders: UpstreamHeaders = {}): RequestContext {
  return testContext({ headers, upstreamHeaders });
}
const ruleOf = (v: unknown) => (v instanceof WardenError ? v.rule : { notAnError: v });

t.test('a cookie token source reads and strips the name as Python strips it', async (t) => {
  const s = compileTokenSources([{ from: 'authorization' }, { from: 'cookie', name: 'access_token' }], 100, undefined);
  for (const ws of STRIPPED) {
    const hex = `\\x${ws.charCodeAt(0).toString(16)}`;
    for (const cookie of [`access_token${ws}=tok`, `a=b; ${ws}access_token=tok`, `a=b; access_token${ws}${ws}=tok`]) {
      t.equal(
        ruleOf(s.extract(ctx({ authorization: 'Bearer abc', cookie }))),
        'token.multiple',
        `beside Authorization: ${JSON.stringify(cookie)} (${hex})`,
      );
      t.equal(s.extract(ctx({ cookie })), 'tok', `alone: read as the token (${hex})`);
      const c = ctx({ cookie }, { cookie });
      s.strip(c);
      t.notMatch(String(c.upstreamHeaders.cookie ?? ''), /tok/, `stripped (${hex})`);
    }
  }
  t.equal(s.extract(ctx({ authorization: 'Bearer abc', cookie: 'access\x85token=tok' })), 'abc', 'inside the name: another cookie');
});
