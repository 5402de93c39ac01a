/** UTF-16 and UTF-32 told by their first bytes, as JSON readers tell them (src/net/wide-encoding.ts). */
import t from 'tap';
import { wideEncoding } from '../../../src/net/wide-encoding.js';

const json = '{"q":"\\u0027"}';
const utf16be = (s: string) => Buffer.from(s, 'utf16le').swap16();
const utf32le = (s: string) => {
  const out = Buffer.alloc(s.length * 4);
  for (let i = 0; i < s.length; i++) out.writeUInt32LE(s.charCodeAt(i), i * 4);
  return out;
};

t.test('UTF-16 and UTF-32, marked or not, are told from the bytes and from the bytes read as UTF-8', async (t) => {
  for (const [what, bytes] of [
    ['UTF-16LE', Buffer.from(json, 'utf16le')],
    ['UTF-16LE with its mark', Buffer.from(`\ufeff${json}`, 'utf16le')],
    ['UTF-16BE', utf16be(json)],
    ['UTF-16BE with its mark', utf16be(`\ufeff${json}`)],
    ['UTF-32LE', utf32le(json)],
    ['UTF-32LE with its mark', utf32le(`\ufeff${json}`)],
    ['UTF-32BE with its mark', Buffer.from([0, 0, 0xfe, 0xff, 0, 0, 0, 0x7b])],
    ['UTF-16BE of a leading space', utf16be(` ${json}`)],
    ['one NUL', Buffer.from([0])],
  ] as const) {
    t.match(wideEncoding(bytes), /^UTF-16 or UTF-32/, `${what}: the bytes`);
    t.match(wideEncoding(bytes.toString('utf8')), /^UTF-16 or UTF-32/, `${what}: read as UTF-8 (busboy's fields)`);
  }
});

t.test('UTF-8 text is not', async (t) => {
  for (const text of [json, '\ufeff{"a":1}', 'q=1', ' [1]', 'x', 'ご注文', '\r\n\r\n{}']) {
    t.equal(wideEncoding(Buffer.from(text)), undefined, `${JSON.stringify(text)}: the bytes`);
    t.equal(wideEncoding(text), undefined, `${JSON.stringify(text)}: the text`);
  }
  t.equal(wideEncoding(Buffer.alloc(0)), undefined, 'nothing');
  t.equal(wideEncoding(Buffer.from('abcd\0')), undefined, 'a NUL past the first four bytes is the rules’ business');
});

t.test('a body without a Content-Type is judged by RFC 4627 patterns of text, not by a NUL alone (binary often holds one)', async (t) => {
  for (const [what, bytes] of [
    ['UTF-16LE', Buffer.from(json, 'utf16le')],
    ['UTF-16BE', utf16be(json)],
    ['UTF-32LE', utf32le(json)],
    ['UTF-32BE', Buffer.from([0, 0, 0, 0x7b, 0, 0, 0, 0x22])],
    ['UTF-16LE with its mark', Buffer.from(`\ufeff${json}`, 'utf16le')],
    ['UTF-32BE with its mark', Buffer.from([0, 0, 0xfe, 0xff, 0, 0, 0, 0x7b])],
  ] as const)
    t.match(wideEncoding(bytes, true), /^UTF-16 or UTF-32/, what);
  // The review's case: `fetch(url, { body: uint8Array })` sends no Content-Type; length prefixes and protobuf start with NULs.
  for (const [what, bytes] of [
    ['a little-endian length prefix', Buffer.from([0x08, 0, 0, 0, 0x0a, 0x02, 0x68, 0x69])],
    ['a big-endian one', Buffer.from([0, 0, 0, 0x05, 0x0a, 0x03])],
    ['protobuf with a zero field', Buffer.from([0x08, 0x00, 0x12, 0x00])],
    ['one NUL', Buffer.from([0])],
  ] as const)
    t.equal(wideEncoding(bytes, true), undefined, `${what}: not refused`);
});
