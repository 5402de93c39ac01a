/**
 * A cookie's name (or value) as the backends that trim it read it: the white space JS's trim() and
 * Python's str.strip() take off both ends. Starlette and Django (cookie_parser, parse_cookie)
 * decode the Cookie header as Latin-1 and strip() each name, and Python's white space holds U+0085
 * (NEL) and U+001C–U+001F, which trim() keeps: `theme\x85=<x>1` was an undeclared cookie to
 * validation and `request.cookies['theme']` to FastAPI, and `access_token\x85=<token>` beside an
 * Authorization header reached it as the token cookie (red team 25 F2). Read the wider way, such a
 * name is the cookie it is to them. Trimmed rather than refused: browsers send raw UTF-8 names a
 * page set through document.cookie, whose bytes 0x85 and 0xA0 (`Å` is C3 85) a refusal would hit.
 */

/** The characters String#trim takes off (WhiteSpace and LineTerminator; none beyond the BMP). */
export function isTrimmedSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Whether trim() or Python's str.strip() takes `c` off: JS's WhiteSpace and LineTerminator, and Python's U+001C–U+001F and U+0085. */
const isTrimmed = (c: number): boolean => isTrimmedSpace(c) || (c >= 0x1c && c <= 0x1f) || c === 0x85;

/** `text` without the white space JS and Python trim; the same string, not a copy, when it has none at either end (most names). */
export function cookieTrimmed(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isTrimmed(text.charCodeAt(start))) start++;
  while (end > start && isTrimmed(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
