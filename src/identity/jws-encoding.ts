/**
 * Canonical base64url (RFC 4648 §3.5, RFC 7515 §2): the bits a segment's last character carries
 * beyond its last whole byte must be zero. Decoders (jose's among them) ignore those bits, so
 * without this check one signed JWT has up to 16 spellings that all verify, and a revocation
 * denylist keyed by the token's text would refuse only the spelling it was given.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Spare low bits of the last character, by segment length mod 4 (1 is never a valid length). */
const SPARE_MASK = [0, -1, 0x0f, 0x03] as const;

/** Whether every dot-separated segment of a compact JWS is canonical base64url (its shape is checked elsewhere). */
export function isCanonicalJws(token: string): boolean {
  let start = 0;
  for (;;) {
    const dot = token.indexOf('.', start);
    const end = dot === -1 ? token.length : dot;
    if (!canonicalSegment(token, start, end)) return false;
    if (dot === -1) return true;
    start = dot + 1;
  }
}

function canonicalSegment(token: string, start: number, end: number): boolean {
  const mask = SPARE_MASK[(end - start) % 4] as number;
  if (mask === 0) return true;
  if (mask === -1) return false;
  return (ALPHABET.indexOf(token.charAt(end - 1)) & mask) === 0;
}
