/**
 * The ids of a request's spans from one draw: its trace id and the server and upstream span ids
 * as one 64-digit hex string, cut from a pool of random bytes refilled from the CSPRNG every 128
 * requests. The SDK's generator makes each id apart, from Math.random, with a hex conversion each.
 */
import { randomFillSync } from 'node:crypto';

/** Trace id (16 bytes), server span id (8), upstream span id (8). */
const BYTES = 32;
const pool = Buffer.allocUnsafe(BYTES * 128);
let at = pool.length;
const ZERO_SPAN = '0000000000000000';

/** 64 hex digits: `traceIdOf`, `serverSpanIdOf` and `clientSpanIdOf` cut the three ids from it. */
export function drawRequestIds(): string {
  if (at === pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const ids = pool.toString('hex', at, at + BYTES);
  at += BYTES;
  // An id of zeros is invalid (W3C trace context): about one in 2⁶⁴ draws, so draw again.
  return ids.includes(ZERO_SPAN) && hasZeroId(ids) ? drawRequestIds() : ids;
}

export const traceIdOf = (ids: string): string => ids.slice(0, 32);
export const serverSpanIdOf = (ids: string): string => ids.slice(32, 48);
export const clientSpanIdOf = (ids: string): string => ids.slice(48, 64);

function hasZeroId(ids: string): boolean {
  return traceIdOf(ids) === ZERO_SPAN + ZERO_SPAN || serverSpanIdOf(ids) === ZERO_SPAN || clientSpanIdOf(ids) === ZERO_SPAN;
}
