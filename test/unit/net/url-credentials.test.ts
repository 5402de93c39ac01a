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
