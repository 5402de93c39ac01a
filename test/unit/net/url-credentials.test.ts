/**
 * withoutUrlCredentials: the password of a configured URL never reaches an error message or a log
 * line, however the URL is spelled — the refused spellings are the ones a config error echoes.
 */
import t from 'tap';
import { loggedTarget, withoutUrlCredentials } from '../../../src/net/url-credentials.js';

t.test('userinfo masked in every spelling a config error may echo', async (t) => {
  const cases: [string, string][] = [
    ['redis://:Sup3rS3cret@redis:6379', 'redis://***@redis:6379'],
    ['REDIS://user:Sup3rS3cret@redis:6379', 'REDIS://***@redis:6379'],
    // Before, these reached `config check` and the reload_failed event in clear.
    ['redis:/:Sup3rS3cret@redis:6379', 'redis:/***@redis:6379'],
    ['redis//default:Sup3rS3cret@redis:6379', 'redis//***@redis:6379'],
    ['tcp://:Sup3r/S3cret@redis:6379', 'tcp://***@redis:6379'],
    ['rediss://u:p@ss:w@rd@h:1/0', 'rediss://***@h:1/0'],
    ['"redis://:pw@h" is refused', '"redis://***@h" is refused'],
  ];
  for (const [text, masked] of cases) {
    t.equal(withoutUrlCredentials(text), masked, text.replace(/Sup3r\/?S3cret|pw|p@ss:w@rd/, '…'));
    t.notMatch(withoutUrlCredentials(text), /Sup3r|S3cret|:pw@|w@rd/, 'no part of the password left');
  }
  for (const text of ['redis://redis:6379', 'no url here', 'http://h/p?x=1'])
    t.equal(withoutUrlCredentials(text), text, `${text}: unchanged`);
});

t.test('loggedTarget: a request target without its query and its userinfo, in one pass', async (t) => {
  for (const [target, shown] of [
    ['http://u:S3cretIn@localhost/api/hello', 'http://***@localhost/api/hello'],
    // A quote ended the free-text masker's word: most of this password was logged.
    ["http://bob:TopS3cretH'1@localhost/api/hello", 'http://***@localhost/api/hello'],
    ['http://user:p@ss@payments/echo?token=x', 'http://***@payments/echo'],
    ['http://payments/a@b', 'http://payments/a@b'],
    ['/a@b?x=1', '/a@b'],
    ['u:p@host:443', '***@host:443'],
    ['*', '*'],
  ] as const)
    t.equal(loggedTarget(target), shown, target);
  // The free-text masker is quadratic on a word without `@`: 16 KB took ~400 ms, 64 KB 4.4 s.
  const long = `http://${'a'.repeat(64_000)}`;
  loggedTarget(long);
  const started = performance.now();
  for (let i = 0; i < 10; i++) loggedTarget(long);
  const ms = (performance.now() - started) / 10;
  t.ok(ms < 50, `a 64 KB target in ${ms.toFixed(2)} ms`);
});

/** Best of three, in ms. */
function timed(fn: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    fn();
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

t.test('withoutUrlCredentials is linear: a long word without "@" (red team 28 §4: 200 KB held a reload 17-50 s)', async (t) => {
  const timings: string[] = [];
  for (const [label, size, boundMs] of [
    ['16 KiB', 16 * 1024, 20],
    ['1 MiB', 1024 * 1024, 300],
    ['10 MiB', 10 * 1024 * 1024, 3000],
  ] as const) {
    for (const [shape, text] of [
      ['no @', 'a'.repeat(size)],
      ['@ at the end', `${'a'.repeat(size)}@`],
      ['many words with @', 'u:p@h '.repeat(Math.floor(size / 6))],
      ['scheme-like run', 'a:'.repeat(size / 2)],
    ] as const) {
      const ms = timed(() => withoutUrlCredentials(text));
      timings.push(`${label} ${shape}: ${ms.toFixed(1)} ms`);
      t.ok(ms < boundMs, `${label}, ${shape}: ${ms.toFixed(1)} ms`);
    }
  }
  t.comment(timings.join('; '));
  // Same masking as before, around the long word.
  t.equal(withoutUrlCredentials(`x ${'a'.repeat(100)} redis://u:pw@h`), `x ${'a'.repeat(100)} redis://***@h`);
  t.equal(withoutUrlCredentials('a:1@b c:2@d'), 'a:***@b c:***@d', 'each word on its own');
  // Without a scheme only `user:password@`: a file path is shown as written (review rt28-2, F4).
  for (const path of ['../npm/node_modules/@octokit/openapi/api.json', 'api@v2/doc.yaml', 'alice@example.com'])
    t.equal(withoutUrlCredentials(`cannot read ${path} (ENOENT)`), `cannot read ${path} (ENOENT)`, path);
  t.equal(withoutUrlCredentials('see https://u@h/x'), 'see https://***@h/x', 'a URL with a scheme: its user masked as before');
  t.equal(withoutUrlCredentials('<u:p@h>"x://a:b@c"'), '<u:***@h>"x://***@c"', 'quotes and brackets end a word');
  // (The new pass gave the old regex's answer on 300 000 random short strings over `a:/@ "'<>\n.+-1é` and Unicode spaces.)
});
