/**
 * A `%` that starts no escape, in a query or a form body. Decoders disagree on it: URLSearchParams,
 * querystring and PHP keep it as text, Jetty's `TypeUtil.convertHexDigit` (query strings and form
 * bodies, Jetty 9.4) takes any character of `0`–`` ` `` as a hex digit, so `l%6@mit` is `limit` and
 * `%4?R` is `OR` to a servlet while every check here read other text (docs/adversarial.md 411).
 * Form serializers send `%` as `%25`; a hand-typed URL may hold a bare one (`?q=50%off`), refused
 * too (fail closed). System.Web's `%uXXXX` is an escape (percent-u.ts).
 */
export function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Whether `text` holds a `%` followed by neither two hex digits nor `u` and four. */
export function hasMalformedEscape(text: string): boolean {
  for (let i = text.indexOf('%'); i !== -1; i = text.indexOf('%', i + 1)) {
    if (isHexDigit(text.charCodeAt(i + 1)) && isHexDigit(text.charCodeAt(i + 2))) continue;
    if ((text.charCodeAt(i + 1) | 0x20) === 0x75 /* u */ && [2, 3, 4, 5].every((k) => isHexDigit(text.charCodeAt(i + k)))) continue;
    return true;
  }
  return false;
}
