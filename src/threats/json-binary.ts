/**
 * A file inside a JSON document, as backends bind it to a byte array without being asked: a base64
 * string (Go's encoding/json into `[]byte`: the standard alphabet, padded, CR and LF skipped;
 * Jackson's and System.Text.Json's `byte[]`; OpenAPI's `format: byte`, `contentEncoding: base64`),
 * and an array of byte numbers (encoding/json into `[]byte` as well; Jackson's `byte[]` takes
 * -128…255). The malware scan scans the bytes such a value spells as a file of its own
 * (body-field-values.ts): clamd given the base64 text finds nothing, and the handler stores the file.
 *
 * Read as the laxest of those decoders that still tells base64 from text: either alphabet (the URL
 * one is `-_`; Node reads both, mixed), with or without padding, CR and LF anywhere. Not other white
 * space (Go refuses it; taking it would make every sentence of a document a second scan), and not a
 * decoder that skips any character it does not know (Python's b64decode without validate=True).
 * A `data:…;base64,` URL (FileReader.readAsDataURL, canvas.toDataURL) is read from its comma.
 */
import { createHash } from 'node:crypto';
import { isHexDigit } from '../net/hex-digits.js';

/**
 * The fewest numbers a byte array must hold to be scanned decoded. Below it small arrays (a
 * colour, a date's parts) are byte arrays by accident, each a clamd round trip more; and 5 bytes
 * hold no file anyone writes a signature for.
 */
export const MIN_DECODED_BYTES = 6;

/**
 * The fewest base64 characters (padding and line breaks not counted: 12 bytes) a string must hold
 * to be scanned decoded. Below it words, dates and ids (`username`, `SKU_100123`) are base64 by
 * accident; every one was a second value to scan (review rt29/2 F2). Ordinary long identifiers
 * still qualify: they decode to junk clamd finds nothing in, at the cost of a scan each.
 */
export const MIN_BASE64_CHARACTERS = 16;

/** Where a data: URL's base64 may begin at the latest (`data:` + a media type and its parameters). */
const DATA_URL_HEAD = 256;

/**
 * Where the base64 of `s` begins (0, or past a `data:…;base64,` head), when all of the rest is
 * base64 of at least MIN_BASE64_CHARACTERS, not all of them hex digits and `-`; else -1. One
 * pass, no regex (a `[…\n]*=*[\n]*$` backtracks quadratically on a run of line breaks).
 *
 * Hex and `-` only is a UUID, a hash, a hex id, a date: text whose decoded bytes nobody chose. A
 * file's base64 is that only if every 6 bits of it are one of those 23 of 64 values, which only a
 * file of runs of a few byte values is (zeros are `AAAA`), never a file a signature is written for
 * (EICAR's base64 leaves them at its first character, an executable's `TVq`, a PDF's `JVBER`, a
 * ZIP's `UEsD` at once; a sender cannot bend a file's bytes to it and keep the file): skipping
 * them loses no file and spares a scan per id.
 */
export function base64Start(s: string): number {
  let from = 0;
  if (s.startsWith('data:')) {
    const comma = s.indexOf(',', 5);
    if (comma === -1 || comma > DATA_URL_HEAD || s.slice(comma - 7, comma).toLowerCase() !== ';base64') return -1;
    from = comma + 1;
  }
  let data = 0;
  let padding = 0;
  let hex = true;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) continue;
    if (c === 0x3d /* = */) {
      if (++padding > 2) return -1;
      continue;
    }
    // After padding only more padding or line breaks.
    if (padding > 0 || !isBase64Character(c)) return -1;
    if (hex && !isHexOrDash(c)) hex = false;
    data++;
  }
  // One character left over spells no byte; padding must complete the last quantum (Go).
  if (data % 4 === 1 || (padding > 0 && (data + padding) % 4 !== 0)) return -1;
  return data >= MIN_BASE64_CHARACTERS && !hex ? from : -1;
}

/** 0-9 a-f A-F and `-`. */
const isHexOrDash = (c: number): boolean => isHexDigit(c) || c === 0x2d;

/** A-Z a-z 0-9, `+/` (standard) and `-_` (URL). */
function isBase64Character(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x2d || c === 0x5f
  );
}

/** The bytes base64 `s` spells from `from` (base64Start's answer): Node's decoder reads both alphabets and skips CR/LF. */
export function base64Decoded(s: string, from: number): Buffer {
  return Buffer.from(from === 0 ? s : s.slice(from), 'base64');
}

/** Whether a parsed JSON array is one of at least MIN_DECODED_BYTES integers, each a byte (0…255, or Java's signed -128…-1). */
export function isByteArray(items: readonly unknown[]): boolean {
  if (items.length < MIN_DECODED_BYTES) return false;
  for (const item of items) {
    if (typeof item !== 'number' || !Number.isInteger(item) || item < -128 || item > 255) return false;
  }
  return true;
}

/** The bytes a byte array spells (Buffer.from takes each number modulo 256: -1 is 0xFF). */
export function byteArrayDecoded(items: readonly unknown[]): Buffer {
  return Buffer.from(items as number[]);
}

/** Bytes hashed at a time by byteArrayKey; arrays up to this size are keyed by their bytes themselves. */
const KEY_CHUNK = 16 * 1024;

/**
 * A key that tells a byte array from every other, without decoding a large one whole before its
 * scan's turn (a 10 MiB body's array was held beside itself as bytes and as a string): up to
 * KEY_CHUNK bytes, the bytes as latin1 (a hash per small array cost more than the array); past it
 * their SHA-256, taken a chunk at a time.
 */
export function byteArrayKey(items: readonly unknown[] | Buffer): string {
  if (items.length <= KEY_CHUNK) return (Buffer.isBuffer(items) ? items : Buffer.from(items as number[])).toString('latin1');
  const hash = createHash('sha256');
  if (Buffer.isBuffer(items)) return `#${hash.update(items).digest('base64')}`;
  const chunk = Buffer.allocUnsafe(KEY_CHUNK);
  for (let i = 0; i < items.length; i += KEY_CHUNK) {
    const n = Math.min(KEY_CHUNK, items.length - i);
    for (let j = 0; j < n; j++) chunk[j] = (items[i + j] as number) & 0xff;
    hash.update(n === KEY_CHUNK ? chunk : chunk.subarray(0, n));
  }
  return `#${hash.digest('base64')}`;
}

/**
 * The byte arrays in the text of a document that is not interoperable JSON (not parsed, so read
 * lexically as its string literals are): each `[` run of integer literals -128…255 separated by
 * commas, of at least MIN_DECODED_BYTES. One pass, never back: a run broken off is dropped where
 * it broke, and the character that broke it may open the next.
 */
export function byteArraysIn(text: string): Buffer[] {
  const arrays: Buffer[] = [];
  // One buffer for every run, grown as needed, and its length (a body of `[` × n allocated n arrays).
  let run = Buffer.allocUnsafe(64);
  let length = 0;
  let open = false;
  /** The number being read: its value, digit count, sign; -1 digits while none is open. */
  let value = 0;
  let digits = -1;
  let negative = false;
  /** Whether a number (not a comma or `[`) was the last token of the run. */
  let afterNumber = false;
  /** Ends the number being read, if any: whether the run may go on. */
  const close = (): boolean => {
    if (digits <= 0) return digits === -1;
    const n = negative ? -value : value;
    digits = -1;
    if (n < -128 || n > 255) return false;
    if (length === run.length) {
      const grown = Buffer.allocUnsafe(run.length * 2);
      run.copy(grown);
      run = grown;
    }
    run[length++] = n & 0xff;
    afterNumber = true;
    return true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b /* [ */) {
      open = true;
      length = 0;
      digits = -1;
      afterNumber = false;
      continue;
    }
    if (!open) continue;
    if (c >= 0x30 && c <= 0x39) {
      if (digits === -1) {
        value = 0;
        digits = 0;
        negative = false;
        if (afterNumber) open = false;
      }
      if (++digits > 3) open = false;
      value = value * 10 + (c - 0x30);
    } else if (c === 0x2d /* - */ && digits === -1 && !afterNumber) {
      value = 0;
      digits = 0;
      negative = true;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      open = close();
    } else if (c === 0x2c /* , */ && close() && afterNumber) {
      afterNumber = false;
    } else {
      if (c === 0x5d /* ] */ && close() && (afterNumber || length === 0) && length >= MIN_DECODED_BYTES) {
        arrays.push(Buffer.from(run.subarray(0, length)));
      }
      open = false;
    }
  }
  return arrays;
}
