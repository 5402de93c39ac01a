/**
 * One `Content-Encoding: deflate` body with two readings (adversarial.md, defect 132). As zlib
 * (RFC 1950; Node, body-parser) it is `zlibForm`; as raw deflate (RFC 1951; DeflateStream) it is
 * `\x01` and `rawForm`. The zlib header 78 01 is also a stored raw block of one byte whose length
 * checks; the next raw block lies inside the zlib reading's first stored block.
 */
import { deflateRawSync } from 'node:zlib';

function adler32(bytes: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of bytes) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A stored deflate block holding `data` (at most 65 535 bytes). */
function storedBlock(data: Buffer, final: boolean): Buffer {
  const head = Buffer.alloc(5);
  head[0] = final ? 1 : 0;
  head.writeUInt16LE(data.length, 1);
  head.writeUInt16LE(0xffff ^ data.length, 3);
  return Buffer.concat([head, data]);
}

export function deflatePolyglot(rawForm: string, zlibForm = '&note=hello'): Buffer {
  // Inside the zlib reading's first stored block: the raw reading's empty stored block, then its last block.
  const rawRest = Buffer.concat([Buffer.from([0x00, 0x00, 0xff, 0xff]), deflateRawSync(rawForm)]);
  const first = Buffer.concat([rawRest, Buffer.from('&pad='), Buffer.alloc(65534 - rawRest.length - 5, 'a')]);
  const last = Buffer.from(zlibForm);
  const sum = Buffer.alloc(4);
  sum.writeUInt32BE(adler32(Buffer.concat([first, last])));
  // 78 01 (zlib header), then a stored block of 65 534 bytes: read raw, 78 is a stored block, 01 00 fe ff its length.
  return Buffer.concat([Buffer.from([0x78, 0x01]), storedBlock(first, false), storedBlock(last, true), sum]);
}
