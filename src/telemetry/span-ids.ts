/**
 * Trace and span ids for request spans: random (Math.random, as the SDK's RandomIdGenerator), never
 * all zeros (W3C trace context calls that invalid), lowercase hex.
 *
 * Why not the SDK's generator: it writes the random words into a Buffer and reads them back with
 * `toString('hex')`, a call into Node's C++ per id; with three ids per request that was about
 * 1.7 µs of a loaded sidecar's time per request (bench/side-profile.js, 2026-11-30). Here the hex
 * digits are picked in JavaScript and made into a flat string in one `String.fromCharCode` call.
 */
const DIGITS = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const traceCodes = new Array<number>(32).fill(0);
const spanCodes = new Array<number>(16).fill(0);

const randomWord = (): number => (Math.random() * 0x100000000) >>> 0;

/** Writes `word` (32 bits) as 8 hex digits' char codes at `at`. */
function putWord(codes: number[], at: number, word: number): void {
  for (let i = 0; i < 8; i++) codes[at + i] = DIGITS[(word >>> (28 - 4 * i)) & 15] as number;
}

/** Fills `codes` with random hex digits, the last word made non-zero if all came out zero. */
function fillRandom(codes: number[]): string {
  const words = codes.length >>> 3;
  let any = 0;
  for (let w = 0; w < words; w++) {
    const word = randomWord();
    any |= word;
    putWord(codes, w * 8, word);
  }
  if (any === 0) putWord(codes, (words - 1) * 8, 1);
  return String.fromCharCode.apply(null, codes);
}

/** A 16-byte trace id as 32 hex digits. */
export const generateTraceId = (): string => fillRandom(traceCodes);

/** An 8-byte span id as 16 hex digits. */
export const generateSpanId = (): string => fillRandom(spanCodes);
