/**
 * Coded bodies with bytes their decoders skip: gzip's optional header fields (RFC 1952 §2.3.1:
 * FEXTRA, FNAME, FCOMMENT) and a brotli metadata meta-block (RFC 7932 §9.2). A reader of the bytes
 * as sent (PHP) sees those bytes; a decoder does not.
 */
import { crc32, deflateRawSync } from 'node:zlib';

export interface GzipHeaderFields {
  extra?: string;
  name?: string;
  comment?: string;
}

export function gzipWithHeader(payload: string, fields: GzipHeaderFields): Buffer {
  const data = Buffer.from(payload);
  const flags = (fields.extra === undefined ? 0 : 4) | (fields.name === undefined ? 0 : 8) | (fields.comment === undefined ? 0 : 16);
  const parts = [Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 0xff])];
  if (fields.extra !== undefined) {
    const extra = Buffer.from(fields.extra, 'latin1');
    parts.push(Buffer.from([extra.length & 0xff, extra.length >> 8]), extra);
  }
  for (const text of [fields.name, fields.comment]) if (text !== undefined) parts.push(Buffer.from(`${text}\0`, 'latin1'));
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length, 4);
  parts.push(deflateRawSync(data), trailer);
  return Buffer.concat(parts);
}

/** A brotli stream: a metadata block holding `metadata` (at most 256 bytes), then `payload` stored uncompressed. */
export function brotliWithMetadata(payload: string, metadata: string): Buffer {
  const bytes: number[] = [];
  let current = 0;
  let used = 0;
  const bits = (value: number, count: number) => {
    for (let i = 0; i < count; i++) {
      current |= ((value >> i) & 1) << used;
      if (++used === 8) {
        bytes.push(current);
        current = 0;
        used = 0;
      }
    }
  };
  const align = () => {
    if (used > 0) bits(0, 8 - used);
  };
  const raw = (b: Buffer) => {
    align();
    bytes.push(...b);
  };
  const meta = Buffer.from(metadata, 'latin1');
  const data = Buffer.from(payload);
  bits(0, 1); // WBITS 16
  // A metadata block: ISLAST 0, MNIBBLES 0 (coded 3), reserved 0, MSKIPBYTES 1, MSKIPLEN - 1, the bytes.
  for (const [value, count] of [
    [0, 1],
    [3, 2],
    [0, 1],
    [1, 2],
    [meta.length - 1, 8],
  ] as const)
    bits(value, count);
  raw(meta);
  // A stored block: ISLAST 0, 4 nibbles of MLEN - 1, ISUNCOMPRESSED 1, the bytes.
  for (const [value, count] of [
    [0, 1],
    [0, 2],
    [data.length - 1, 16],
    [1, 1],
  ] as const)
    bits(value, count);
  raw(data);
  bits(1, 1); // ISLAST
  bits(1, 1); // ISLASTEMPTY
  align();
  return Buffer.from(bytes);
}
