/**
 * Text in UTF-16 or UTF-32 by its first bytes, which the waf would read as UTF-8. JSON readers
 * handed the bytes tell the encoding from them, whatever the Content-Type says (RFC 4627 §3:
 * Python's json.loads on bytes, which Flask's get_json uses, and Jackson): a byte order mark, or a
 * NUL among the first four bytes. Read as UTF-8, `{\0"\0q\0"\0:\0"\0\\\0u\x000\x002\x007\0…`
 * keeps no JSON escape the waf could undo, and the backend decodes `\u0027` into a quote.
 *
 * No UTF-8 text opens so: FF and FE are no UTF-8 bytes, and neither JSON nor any text format the
 * waf reads starts with a NUL. Only the first four bytes are looked at.
 */

const BY_BYTE_ORDER_MARK = 'UTF-16 or UTF-32 (by its byte order mark)';
const BY_NUL = 'UTF-16 or UTF-32 (by a NUL among its first bytes)';
const REPLACEMENT = 0xfffd;

/**
 * Why `content` reads as UTF-16 or UTF-32 to a reader that detects it, or undefined. `content` is
 * the bytes, or text already decoded as UTF-8 (busboy's fields, a part read whole), in which a
 * UTF-16 byte order mark's bytes (FF FE, FE FF) read as two U+FFFD and a NUL stays a NUL.
 */
export function wideEncoding(content: Buffer | string, untyped = false): string | undefined {
  if (typeof content === 'string') {
    if (content.charCodeAt(0) === REPLACEMENT && content.charCodeAt(1) === REPLACEMENT) return BY_BYTE_ORDER_MARK;
    const n = Math.min(content.length, 4);
    for (let i = 0; i < n; i++) if (content.charCodeAt(i) === 0) return BY_NUL;
    return undefined;
  }
  const a = content[0];
  const b = content[1];
  // FF FE is UTF-16LE's mark and UTF-32LE's first half (FF FE 00 00); FE FF UTF-16BE's.
  if ((a === 0xff && b === 0xfe) || (a === 0xfe && b === 0xff)) return BY_BYTE_ORDER_MARK;
  // UTF-32BE's mark (00 00 FE FF) and every unmarked UTF-16 or UTF-32 text opening with ASCII.
  if (untyped) {
    if (a === 0 && b === 0 && content[2] === 0xfe && content[3] === 0xff) return BY_BYTE_ORDER_MARK; // UTF-32BE's
    return asciiInWideUnits(content) ? BY_NUL : undefined;
  }
  const n = Math.min(content.length, 4);
  for (let i = 0; i < n; i++) if (content[i] === 0) return BY_NUL;
  return undefined;
}

/** Text (tab, line breaks, printable ASCII) as the first two characters' bytes: a body that is no text is not judged by its NULs. */
const isAsciiText = (b: number | undefined) => b !== undefined && ((b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0d);

/**
 * RFC 4627 §3's patterns, text opening with ASCII: 00 00 00 xx (UTF-32BE), 00 xx 00 xx (UTF-16BE),
 * xx 00 00 00 (UTF-32LE), xx 00 xx 00 (UTF-16LE). For a body without a Content-Type, which may be
 * anything: binary (a length prefix, protobuf) often holds a NUL in its first bytes, and was refused.
 */
function asciiInWideUnits(b: Buffer): boolean {
  const [b0, b1, b2, b3] = [b[0], b[1], b[2], b[3]];
  if (b0 === 0 && b1 === 0 && b2 === 0) return isAsciiText(b3);
  if (b0 === 0 && b2 === 0) return isAsciiText(b1) && isAsciiText(b3);
  if (b1 === 0 && b2 === 0 && b3 === 0) return isAsciiText(b0);
  if (b1 === 0 && b3 === 0) return isAsciiText(b0) && isAsciiText(b2);
  return false;
}
