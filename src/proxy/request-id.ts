/**
 * Request ids the sidecar makes: random (version 4) UUIDs from the operating system's CSPRNG, as
 * `crypto.randomUUID` makes them, written as one flat string.
 *
 * Why not `randomUUID`: Node 20 joins its 20 pieces with `+`, a cons string per piece (about 500
 * bytes of garbage per request, flattened again when the id is first written out: bench's heap
 * sampling, 2026-12-01). Here 16 bytes of a batch filled by `randomFillSync` (as Node batches them)
 * become the id's character codes, made into a string in one `String.fromCharCode` call.
 */
import { randomFillSync } from 'node:crypto';

const BATCH = 128;
const random = Buffer.alloc(16 * BATCH);
let next = BATCH;
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const DASH = 0x2d;
/** Where each of the 16 bytes' two hex digits go in xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx. */
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const codes = new Array<number>(36).fill(DASH);

export function generateRequestId(): string {
  if (next === BATCH) {
    randomFillSync(random);
    next = 0;
  }
  const offset = 16 * next++;
  for (let i = 0; i < 16; i++) {
    let byte = random[offset + i] as number;
    if (i === 6)
      byte = (byte & 0x0f) | 0x40; // version 4
    else if (i === 8) byte = (byte & 0x3f) | 0x80; // RFC 9562 variant
    const at = AT[i] as number;
    codes[at] = HEX[byte >>> 4] as number;
    codes[at + 1] = HEX[byte & 15] as number;
  }
  return String.fromCharCode.apply(null, codes);
}
