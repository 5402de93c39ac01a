/**
 * The DER of a CRL (RFC 5280 §5.1), built in one linear pass. @peculiar/x509's X509CrlGenerator
 * checks every serial against all earlier ones (quadratic), serializes the TBS twice and re-parses
 * the result; asn1-schema alone still needs ~1 s for 10 000 entries. So the revoked entries — the
 * only part that grows — are encoded here; the fixed parts (name, times, extensions, algorithm)
 * still come from asn1-schema. test/unit/ca/crl.test.ts holds the bytes equal to the library's.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Extension, Extensions, Time } from '@peculiar/asn1-x509';

export interface CrlEntry {
  /** Serial, hex. */
  serial: string;
  revokedAt: Date;
  /** CRLReason code; 0 (unspecified) gets no reason extension (RFC 5280 §5.3.1). */
  reason: number;
}

export interface TbsCertListInput {
  /** DER Name of the issuer. */
  issuer: ArrayBuffer;
  thisUpdate: Date;
  nextUpdate: Date;
  /** DER of each CRL extension. */
  extensions: ArrayBuffer[];
  entries: readonly CrlEntry[];
}

/** ecdsa-with-SHA256 (RFC 5758 §3.2: no parameters), the only algorithm the CA signs with. */
export const ECDSA_SHA256 = new AlgorithmIdentifier({ algorithm: '1.2.840.10045.4.3.2' });

/**
 * A DER TLV with a one-byte tag around `content`, copied once into one buffer. The parts come as an
 * array, never as one argument each: spread into a call (`tlv(0x30, ...entries)`), ~125 000 CRL
 * entries overflowed V8's stack (RangeError) and no CRL could be signed any more.
 */
export function tlv(tag: number, content: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const c of content) size += c.length;
  let lengthOctets = 0;
  if (size >= 0x80) for (let n = size; n > 0; n = Math.floor(n / 256)) lengthOctets++;
  const headerLength = 2 + lengthOctets;
  const out = Buffer.allocUnsafe(headerLength + size);
  out[0] = tag;
  if (lengthOctets === 0) out[1] = size;
  else {
    out[1] = 0x80 | lengthOctets;
    for (let i = lengthOctets, n = size; i > 0; i--, n = Math.floor(n / 256)) out[1 + i] = n % 256;
  }
  let at = headerLength;
  for (const c of content) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A serial as a positive INTEGER: leading zero octets dropped, one added when the high bit is set. */
function serialInteger(hex: string): Buffer {
  if (!/^[0-9a-f]*$/i.test(hex)) throw new TypeError(`not a hex serial: ${hex}`);
  let bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  let first = 0;
  while (first < bytes.length - 1 && bytes[first] === 0) first++;
  bytes = bytes.length ? bytes.subarray(first) : Buffer.from([0]);
  if ((bytes[0] as number) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, [bytes]);
}

const two = (n: number) => String(n).padStart(2, '0');

/** UTCTime YYMMDDHHMMSSZ through 2049; later dates (GeneralizedTime) go through asn1-schema. */
function time(date: Date): Buffer {
  if (date.getUTCFullYear() > 2049) return Buffer.from(AsnConvert.serialize(new Time(date)));
  const s = `${two(date.getUTCFullYear() % 100)}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;
  return tlv(0x17, [Buffer.from(s, 'latin1')]);
}

/** The crlEntryExtensions holding only a CRLReason (id-ce-cRLReasons, not critical), per code. */
const reasonExtensions = new Map<number, Buffer>();
function reasonExtension(code: number): Buffer {
  let der = reasonExtensions.get(code);
  if (!der) {
    const extension = tlv(0x30, [tlv(0x06, [Buffer.from([0x55, 0x1d, 0x15])]), tlv(0x04, [tlv(0x0a, [Buffer.from([code])])])]);
    der = tlv(0x30, [extension]);
    reasonExtensions.set(code, der);
  }
  return der;
}

/** Without a reason, an empty crlEntryExtensions (30 00), as the library wrote it: the same bytes as before. */
const NO_EXTENSIONS = Buffer.from([0x30, 0x00]);

function revokedCertificate(serial: Buffer, entry: CrlEntry): Buffer {
  return tlv(0x30, [serial, time(entry.revokedAt), entry.reason ? reasonExtension(entry.reason) : NO_EXTENSIONS]);
}

/** TBSCertList, v2, signed with ECDSA_SHA256. Throws on a duplicate serial, as the library does. */
export function tbsCertList(input: TbsCertListInput): Buffer {
  const seen = new Set<string>();
  const entries = input.entries.map((entry) => {
    const serial = serialInteger(entry.serial);
    const key = serial.toString('hex');
    if (seen.has(key)) throw new Error(`serial ${entry.serial} is already in the CRL`);
    seen.add(key);
    return revokedCertificate(serial, entry);
  });
  const extensions = new Extensions(input.extensions.map((raw) => AsnConvert.parse(raw, Extension)));
  const fields: Uint8Array[] = [
    Buffer.from([0x02, 0x01, 0x01]), // version v2
    Buffer.from(AsnConvert.serialize(ECDSA_SHA256)),
    Buffer.from(input.issuer),
    time(input.thisUpdate),
    time(input.nextUpdate),
  ];
  if (entries.length) fields.push(tlv(0x30, entries));
  if (extensions.length) fields.push(tlv(0xa0, [Buffer.from(AsnConvert.serialize(extensions))]));
  return tlv(0x30, fields);
}

/** CertificateList: the TBS, the algorithm again, and the DER signature as a BIT STRING. */
export function certificateList(tbs: Uint8Array, signature: Uint8Array): Buffer {
  return tlv(0x30, [tbs, Buffer.from(AsnConvert.serialize(ECDSA_SHA256)), tlv(0x03, [Buffer.from([0]), signature])]);
}
