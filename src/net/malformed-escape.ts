/**
 * A `%` that starts no escape, in a query or a form body. Decoders disagree on it: URLSearchParams,
 * querystring and PHP keep it as text, Jetty's `TypeUtil.convertHexDigit` (query strings and form
 * bodies, Jetty 9.4) takes any character of `0`–`` ` `` as a hex digit, so `l%6@mit` is `limit` and
 * `%4?R` is `OR` to a servlet while every check here read other text (docs/adversarial.md 411).
 * Form serializers send `%` as `%25`; a hand-typed URL may hold a bare one (`?q=50%off`), refused
 * too (fail closed). System.Web's `%uXXXX` is an escape (percent-u.ts).
 */
function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * Whether `text` holds a `%` followed by neither two hex digits nor `u` and four. A query is a
 * string; a form body is read in its bytes, without a copy (up to four stages ask about one body).
 */
export function hasMalformedEscape(text: string | Buffer): boolean {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i] ?? NaN;
  // Both find a "%" at memchr speed: a string's indexOf takes '%', a Buffer's its byte.
  const next = typeof text === 'string' ? (from: number) => text.indexOf('%', from) : (from: number) => text.indexOf(0x25, from);
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
