/**
 * Text with the user name and password of any URL in it shown as `***`: for log lines and error
 * messages that name a URL an operator configured (a Redis URL carries its password). Spellings a
 * URL parser would refuse are masked too — they are what a refused value's echo shows
 * (`redis:/:pw@h`, `redis//user:pw@h`, an upper-case scheme, a password holding `/` or `:`): the
 * userinfo runs from after the scheme's `:`/`/` characters to the last `@` of the word.
 */
const WORD_WITH_AT = /[^\s"'<>]*@[^\s"'<>]*/g;
const SCHEME = /^[a-z][a-z0-9+.-]*(?::\/{0,2}|\/{1,2})/i;

export const withoutUrlCredentials = (text: string): string =>
  text.replace(WORD_WITH_AT, (word) => {
    const at = word.lastIndexOf('@');
    const start = SCHEME.exec(word)?.[0].length ?? 0;
    return at <= start ? word : `${word.slice(0, start)}***${word.slice(at)}`;
  });

const TARGET_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * A request target as the logs and events show it when it is not read as a path (refused, or
 * egress's proxy form): without its query, and without the user name and password of an
 * absolute-form target (`GET http://user:S3cret@host/x`), which were logged whole. One pass over
 * the target: the free-text masking above is quadratic on a long word without `@` (a refused 16 KB
 * target held the event loop 400 ms), and it ends a word at a quote that a password may hold.
 */
export function loggedTarget(target: string): string {
  const q = target.indexOf('?');
  const raw = q < 0 ? target : target.slice(0, q);
  if (raw.startsWith('/')) return raw;
  const start = TARGET_SCHEME.exec(raw)?.[0].length ?? 0;
  let end = raw.length;
  for (let i = start; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x2f || c === 0x23) {
      end = i; // `/` or `#`: the authority ends
      break;
    }
  }
  const at = raw.lastIndexOf('@', end - 1);
  return at < start ? raw : `${raw.slice(0, start)}***${raw.slice(at)}`;
}
