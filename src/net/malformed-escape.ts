/**
 * A `%` that starts no escape, in a query or a form body. Decoders disagree on it: URLSearchParams,
 * querystring and PHP keep it as text, Jetty's `TypeUtil.convertHexDigit` (query strings and form
 * bodies, Jetty 9.4) takes any character of `0`–`` ` `` as a hex digit, so `l%6@mit` is `limit` and
 * `%4?R` is `OR` to a servlet while every check here read other text (docs/adversarial.md 411).
 * Form serializers send `%` as `%25`; a hand-typed URL may hold a bare one (`?q=50%off`), refused
 * too (fail closed). System.Web's `%uXXXX` is an escape (percent-u.ts).
 */
import { isHexDigit } from './hex-digits.js';

/**
 * Whether `text` holds a `%` followed by neither two hex digits nor `u` and four. A query is a
 * string; a form body is read in its bytes, without a copy (up to four stages ask about one body).
 */
export function hasMalformedEscape(text: string | Buffer): boolean {
  if (typeof text !== 'string') return bodyHasMalformedEscape(text);
  const at = (i: number) => text.charCodeAt(i);
  // A "%" found at memchr speed.
  const next = (from: number) => text.indexOf('%', from);
  for (let i = next(0); i !== -1; i = next(i + 1)) {
    if (isHexDigit(at(i + 1)) && isHexDigit(at(i + 2))) continue;
    if (
      (at(i + 1) | 0x20) === 0x75 /* u */ &&
      isHexDigit(at(i + 2)) &&
      isHexDigit(at(i + 3)) &&
      isHexDigit(at(i + 4)) &&
      isHexDigit(at(i + 5))
    )
      continue;
    return true;
  }
  return false;
}

/**
 * The same over a body's bytes, one loop: a Buffer's indexOf is a native call per `%`, and a form
 * of 3.5 M `%20` took ~50 ms per stage that asked (this loop: ~10 ms for 10 MiB, `%` dense or not).
 */
function bodyHasMalformedEscape(body: Buffer): boolean {
  const n = body.length;
  for (let i = 0; i < n; i++) {
    if (body[i] !== 0x25 /* % */) continue;
    const a = i + 1 < n ? (body[i + 1] as number) : NaN;
    const b = i + 2 < n ? (body[i + 2] as number) : NaN;
    if (isHexDigit(a) && isHexDigit(b)) continue;
    if (
      (a | 0x20) === 0x75 /* u */ &&
      i + 5 < n &&
      isHexDigit(b) &&
      isHexDigit(body[i + 3] as number) &&
      isHexDigit(body[i + 4] as number) &&
      isHexDigit(body[i + 5] as number)
    )
      continue;
    return true;
  }
  return false;
}
