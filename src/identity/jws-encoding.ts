/**
 * Canonical base64url (RFC 4648 §3.5, RFC 7515 §2): nothing but the base64url alphabet (no `=`
 * padding, no `+` or `/`), and the bits a segment's last character carries beyond its last whole
 * byte must be zero. Decoders (jose's among them, through `atob`) accept padding and ignore those
 * bits, so without this check one signed JWT has many spellings that all verify, and a revocation
 * denylist keyed by the token's text would refuse only the spelling it was given.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Spare low bits of the last character, by segment length mod 4 (1 is never a valid length). */
const SPARE_MASK = [0, -1, 0x0f, 0x03] as const;

/** The alphabet and the dots between segments: `sig==` has a length that needs no spare-bit check. */
const JWS_CHARACTERS = /^[A-Za-z0-9_.-]*$/;

/** Whether every dot-separated segment of a compact JWS is canonical base64url (its shape is checked elsewhere). */
export function isCanonicalJws(token: string): boolean {
  if (!JWS_CHARACTERS.test(token)) return false;
  let start = 0;
  for (;;) {
    const dot = token.indexOf('.', start);
    const end = dot === -1 ? token.length : dot;
    if (!canonicalSegment(token, start, end)) return false;
    if (dot === -1) return true;
    start = dot + 1;
  }
}

/**
 * A compact JWS as lenient decoders read it: base64 or base64url segments (jose turns `-` and `_`
 * into `+` and `/` for `atob`, so both alphabets decode), each with optional `=` padding.
 */
const LENIENT_JWS_SHAPE = /^[A-Za-z0-9_+/-]+={0,2}\.[A-Za-z0-9_+/-]+={0,2}\.[A-Za-z0-9_+/-]*={0,2}$/;

/**
 * Whether a token is another spelling of a JWS: shaped like one as decoders take it, not canonical,
 * and its first segment decodes (leniently) to a JSON object, a JOSE header. Such a token is no
 * opaque token, wherever it is sent: an IdP that introspects JWTs with a lenient decoder answers
 * for it as for the token itself, while everything Warden keys by the text (the denylist, caches)
 * sees another token. The header test keeps opaque tokens that merely hold two dots apart: only a
 * signed token's header is a JSON object, and a respelling cannot change it (the signature covers
 * the header and payload segments as written, so only the signature can be respelled).
 */
export function isRespelledJws(token: string): boolean {
  if (!LENIENT_JWS_SHAPE.test(token) || isCanonicalJws(token)) return false;
  try {
    // 'base64' takes both alphabets and ignores padding, as the lenient decoders do.
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64').toString());
    return typeof header === 'object' && header !== null && !Array.isArray(header);
  } catch {
    return false;
  }
}

function canonicalSegment(token: string, start: number, end: number): boolean {
  const mask = SPARE_MASK[(end - start) % 4] as number;
  if (mask === 0) return true;
  if (mask === -1) return false;
  return (ALPHABET.indexOf(token.charAt(end - 1)) & mask) === 0;
}

/** The order n of each ECDSA curve a JWS `alg` names (FIPS 186-4 D.1.2), with the signature's half length. */
const CURVES: Record<string, { n: bigint; size: number }> = {
  ES256: { n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n, size: 32 },
  ES384: {
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    size: 48,
  },
  ES512: {
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
    size: 66,
  },
};

/**
 * One spelling per ECDSA-signed token: an ECDSA signature (r, s) verifies as (r, n − s) too, and
 * anyone can write that second spelling of a token without the key. Keyed by its text, a revoked
 * token came back in its other spelling. This returns the spelling with s ≤ n/2 (BIP 62's "low s";
 * about half of all tokens are signed high), so both spellings have one hash. Anything that is not
 * a well-formed ES256/384/512 JWS is returned as it is: it has no other spelling that verifies.
 */
export function lowSSpelling(token: string): string {
  const firstDot = token.indexOf('.');
  const lastDot = token.lastIndexOf('.');
  if (firstDot === -1 || firstDot === lastDot) return token;
  let alg: unknown;
  try {
    alg = (JSON.parse(Buffer.from(token.slice(0, firstDot), 'base64url').toString()) as { alg?: unknown }).alg;
  } catch {
    return token;
  }
  const curve = typeof alg === 'string' && Object.hasOwn(CURVES, alg) ? CURVES[alg] : undefined;
  if (curve === undefined) return token;
  const segment = token.slice(lastDot + 1);
  const signature = Buffer.from(segment, 'base64url');
  // Buffer's decoder skips what is not base64url: only a segment that is exactly these bytes has a twin.
  if (signature.length !== 2 * curve.size || signature.toString('base64url') !== segment) return token;
  const s = BigInt(`0x${signature.toString('hex', curve.size)}`);
  if (s <= curve.n >> 1n || s >= curve.n) return token;
  const low = (curve.n - s).toString(16).padStart(2 * curve.size, '0');
  signature.write(low, curve.size, 'hex');
  return `${token.slice(0, lastDot + 1)}${signature.toString('base64url')}`;
}

/**
 * Whether an RSA signature (RS256/384/512, PS256/384/512) is exactly as long as its key's modulus:
 * RFC 8017 (§8.1.2, §8.2.2) makes a signature k octets, and OpenSSL's PSS verification (Node 20,
 * jose's WebCrypto path) also takes one a leading zero byte shorter, so about one PSS-signed token
 * in 256 had a second spelling that verified and hashed as another token (a revoked one came back
 * in). `key` is the key that verified it (a CryptoKey or a KeyObject); a key whose modulus cannot be
 * read refuses the token. Other algorithms have one signature length, and pass. The token is canonical.
 */
export function isWholeRsaSignature(token: string, alg: string, key: unknown): boolean {
  if (!/^(?:RS|PS)(?:256|384|512)$/.test(alg)) return true;
  const k = key as { algorithm?: { modulusLength?: unknown }; asymmetricKeyDetails?: { modulusLength?: unknown } } | null;
  const bits = k?.algorithm?.modulusLength ?? k?.asymmetricKeyDetails?.modulusLength;
  if (typeof bits !== 'number' || bits <= 0) return false;
  const segment = token.length - token.lastIndexOf('.') - 1;
  return Math.floor((segment * 3) / 4) === Math.ceil(bits / 8);
}
