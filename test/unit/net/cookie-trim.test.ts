/**
 * cookieTrimmed takes off what JS's trim() and Python's str.strip() take off: Starlette and Django
 * strip() cookie names and values decoded as Latin-1 (red team 25 F2).
 */
import t from 'tap';
import { cookieTrimmed } from '../../../src/net/cookie-trim.js';

/** Python 3's str.isspace(), every code point up to U+FFFF (`[c for c in range(0x10000) if chr(c).isspace()]`). */
const PYTHON_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

t.test('every code point JS or Python trims is trimmed, and no other', async (t) => {
  const wrong: string[] = [];
  for (let c = 0; c <= 0xffff; c++) {
    const ch = String.fromCharCode(c);
    const expected = ch.trim() === '' || PYTHON_SPACE.has(c);
    if ((cookieTrimmed(`${ch}a${ch}`) === 'a') !== expected) wrong.push(c.toString(16));
  }
  t.same(wrong, []);
});

t.test('the names Starlette reads as another', async (t) => {
  t.equal(cookieTrimmed('theme\x85'), 'theme', 'NEL after');
  t.equal(cookieTrimmed('\x85theme'), 'theme', 'NEL before');
  t.equal(cookieTrimmed(' \x1c\x1f\xa0\x85 theme \x85\t'), 'theme', 'mixed');
  t.equal(cookieTrimmed('th\x85eme'), 'th\x85eme', 'inside a name: kept');
  t.equal(cookieTrimmed('\x85'), '');
});

t.test('a name without such ends is returned as it is, UTF-8 names too', async (t) => {
  const plain = 'session_id';
  t.equal(cookieTrimmed(plain), plain);
  const utf8 = Buffer.from('prénom', 'utf8').toString('latin1');
  t.equal(cookieTrimmed(utf8), utf8, 'raw UTF-8 bytes, as Node hands them over');
  t.equal(cookieTrimmed(''), '');
});
