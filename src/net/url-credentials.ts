/**
 * Text with the user name and password of any URL in it shown as `***`: for log lines and error
 * messages that name a URL an operator configured (a Redis URL carries its password). Spellings a
 * URL parser would refuse are masked too — they are what a refused value's echo shows
 * (`redis:/:pw@h`, `redis//user:pw@h`, an upper-case scheme, a password holding `/` or `:`): the
 * userinfo runs from after the scheme's `:`/`/` characters to the last `@` of the word.
 */
import { isTrimmedSpace } from './cookie-trim.js';

const SCHEME = /[a-z][a-z0-9+.-]*(?::\/{0,2}|\/{1,2})/iy;

/** Whitespace (as `\s` reads it: what String#trim takes off) and the quotes and brackets that end a word in a message (`"`, `'`, `<`, `>`). */
function endsWord(c: number): boolean {
  return c === 0x22 || c === 0x27 || c === 0x3c || c === 0x3e || isTrimmedSpace(c);
}

/** Whether text[from, to) holds a `:` (within one word: the words are disjoint, so linear in all). */
function holdsColon(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (text.charCodeAt(i) === 0x3a) return true;
  return false;
}

/**
 * `text` with every URL's user name and password shown as `***`. One pass: each `@` found with
 * indexOf, its word's start found by walking back (no further than the previous word's end) and its
 * end by walking on. A regex over words (`/[^\s"'<>]*@[^\s"'<>]*\/g`) was quadratic on a long word
 * without `@`: a 200 KB refused value held a reload 17-50 s (red team 28 §4).
 */
export function withoutUrlCredentials(text: string): string {
  let out = '';
  let done = 0; // text before this is in `out`
  let at = text.indexOf('@');
  while (at !== -1) {
    let start = at;
    while (start > done && !endsWord(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    let last = at;
    for (; end < text.length; end++) {
      const c = text.charCodeAt(end);
      if (endsWord(c)) break;
      if (c === 0x40) last = end;
    }
    SCHEME.lastIndex = start;
    const schemed = SCHEME.exec(text) !== null;
    const userinfo = schemed ? SCHEME.lastIndex : start;
    // Without a scheme, only `user:password@`: a word like `node_modules/@octokit/…` or `api@v2/doc.yaml`
    // is a file path, which was shown as `***@octokit/…` in load errors (review rt28-2, F4).
    if (last > userinfo && (schemed || holdsColon(text, userinfo, last))) {
      out += `${text.slice(done, userinfo)}***`;
      done = last;
    }
    at = end < text.length ? text.indexOf('@', end) : -1;
  }
  return done === 0 ? text : out + text.slice(done);
}

const TARGET_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * A request target as the logs and events show it when it is not read as a path (refused, or
 * egress's proxy form): without its query, and without the user name and password of an
 * absolute-form target (`GET http://user:S3cret@host/x`), which were logged whole. Not the
 * free-text masking above: it ends a word at a quote, which a password in a target may hold.
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
