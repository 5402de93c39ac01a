/**
 * Reads a CRL (RFC 5280 §5.1, DER) in one linear pass, without an ASN.1 library. asn1js, under
 * @peculiar/x509, takes ~100 µs per revoked entry: a 10 000-entry CRL blocked the sidecar's event
 * loop for more than a second per parse, and a new CRL was parsed four times (signature, order,
 * list). This reader takes what the sidecar uses — the signed bytes, the signature, the issuer, the
 * dates, the CRL number and the revoked serials — and refuses what it cannot use: a malformed or
 * non-DER encoding, a signature algorithm other than ECDSA, and any critical extension (RFC 5280
 * §5.2: a CRL with a critical extension the application does not process must not be used; a delta
 * CRL or a partitioned one read as a full list would un-revoke certificates).
 * test/unit/net/crl-reader.test.ts reads the same CRLs with @peculiar/x509 and compares.
 */

import { canonicalSerial } from './serial.js';

/** What the sidecar needs of a CRL; `der` is the whole CRL as received. */
export interface CrlView {
  readonly der: Buffer;
  /** The TBSCertList's encoding: the bytes the signature covers. */
  readonly tbs: Buffer;
  /** The signature algorithm's OID (dotted), the same in the TBSCertList and outside it. */
  readonly signatureAlgorithm: string;
  /** The signature (the BIT STRING's octets; for ECDSA an ECDSA-Sig-Value). */
  readonly signature: Buffer;
  /** The issuer Name's encoding. */
  readonly issuer: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** The CRL number extension (RFC 5280 §5.2.3), undefined when absent. */
  readonly number: bigint | undefined;
  /** Revoked serials as the ledger keys them (src/net/serial.ts). */
  readonly serials: readonly string[];
}

/** A CRL that cannot be read or used; `code` is stable for logs. */
export class CrlFormatError extends Error {
  readonly code = 'ERR_MESH_CRL_FORMAT';
  constructor(message: string) {
    super(`unreadable CRL: ${message}`);
    this.name = 'CrlFormatError';
  }
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BOOLEAN = 0x01;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const CRL_EXTENSIONS = 0xa0; // [0] EXPLICIT

const CRL_NUMBER_OID = '2.5.29.20';

/** One DER element: its tag and where its contents are. */
interface Element {
  readonly tag: number;
  readonly start: number;
  readonly body: number;
  readonly end: number;
}

/** Reads the element at `at`, which must end by `limit`. */
function element(der: Buffer, at: number, limit: number): Element {
  if (at + 2 > limit) throw new CrlFormatError(`truncated at octet ${at}`);
  const tag = der[at] as number;
  if ((tag & 0x1f) === 0x1f) throw new CrlFormatError(`unexpected tag at octet ${at}`);
  let length = der[at + 1] as number;
  let body = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 4) throw new CrlFormatError(`unsupported length form at octet ${at} (DER wants a definite length)`);
    if (body + octets > limit) throw new CrlFormatError(`truncated at octet ${at}`);
    if (der[body] === 0) throw new CrlFormatError(`non-minimal length at octet ${at}`);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + (der[body + i] as number);
    if (length < 0x80) throw new CrlFormatError(`non-minimal length at octet ${at}`);
    body += octets;
  }
  const end = body + length;
  if (end > limit) throw new CrlFormatError(`an element at octet ${at} runs past its container`);
  return { tag, start: at, body, end };
}

function expect(der: Buffer, at: number, limit: number, tag: number, what: string): Element {
  const e = element(der, at, limit);
  if (e.tag !== tag) throw new CrlFormatError(`${what}: expected tag 0x${tag.toString(16)} at octet ${at}, found 0x${e.tag.toString(16)}`);
  return e;
}

function oidText(der: Buffer, e: Element): string {
  if (e.end === e.body) throw new CrlFormatError(`empty object identifier at octet ${e.start}`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = e.body; i < e.end; i++) {
    const octet = der[i] as number;
    if (value === 0 && octet === 0x80) throw new CrlFormatError(`non-minimal object identifier at octet ${e.start}`);
    value = value * 128 + (octet & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new CrlFormatError(`object identifier arc too large at octet ${e.start}`);
    if (!(octet & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  if ((der[e.end - 1] as number) & 0x80) throw new CrlFormatError(`truncated object identifier at octet ${e.start}`);
  const head = arcs[0] as number;
  const top = Math.min(Math.floor(head / 40), 2); // the first subidentifier holds two arcs (X.690 §8.19.4)
  return [top, head - top * 40, ...arcs.slice(1)].join('.');
}

/** The decimal number in `der[from, from + n)`, or -1 when an octet is not a digit. */
function digits(der: Buffer, from: number, n: number): number {
  let value = 0;
  for (let i = from; i < from + n; i++) {
    const d = (der[i] as number) - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
  }
  return value;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), the forms RFC 5280 §4.1.2.5 allows. */
function time(der: Buffer, e: Element, what: string): Date {
  const length = e.end - e.body;
  const utc = e.tag === UTC_TIME && length === 13;
  if (!utc && !(e.tag === GENERALIZED_TIME && length === 15)) {
    throw new CrlFormatError(`${what}: not a UTCTime or GeneralizedTime in Zulu time without fractions`);
  }
  const text = () => der.toString('latin1', e.body, e.end);
  const yearDigits = utc ? 2 : 4;
  let year = digits(der, e.body, yearDigits);
  if (utc && year >= 0) year += year >= 50 ? 1900 : 2000;
  const at = e.body + yearDigits;
  const [month, day, hour, minute, second] = [0, 2, 4, 6, 8].map((i) => digits(der, at + i, 2)) as [number, number, number, number, number];
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0 || der[e.end - 1] !== 0x5a) {
    throw new CrlFormatError(`${what}: malformed time "${text()}"`);
  }
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 31 February over into March: a date that does not read back is not a date.
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    throw new CrlFormatError(`${what}: no such time "${text()}"`);
  }
  return date;
}

/** A serial as the ledger keys it (canonicalSerial): lower-case hex, no leading zeros. */
function serialOf(der: Buffer, e: Element): string {
  if (e.end === e.body) throw new CrlFormatError(`empty serial number at octet ${e.start}`);
  return canonicalSerial(der.toString('hex', e.body, e.end));
}

/**
 * Walks an Extensions SEQUENCE; refuses critical ones (none is processed), calls `take` with each
 * extension's OID and value.
 */
function extensions(der: Buffer, list: Element, where: string, take?: (oid: string, value: Element) => void): void {
  const seen = new Set<string>();
  for (let at = list.body; at < list.end;) {
    const ext = expect(der, at, list.end, SEQUENCE, `${where} extension`);
    const oid = oidText(der, expect(der, ext.body, ext.end, OID, `${where} extension id`));
    if (seen.has(oid)) throw new CrlFormatError(`${where} extension ${oid} appears twice`);
    seen.add(oid);
    let next = element(der, ext.body, ext.end).end;
    let value = element(der, next, ext.end);
    if (value.tag === BOOLEAN) {
      if (value.end - value.body !== 1) throw new CrlFormatError(`${where} extension ${oid}: malformed critical flag`);
      if (der[value.body] !== 0) throw new CrlFormatError(`${where} extension ${oid} is critical, and Warden does not process it`);
      next = value.end;
      value = element(der, next, ext.end);
    }
    if (value.tag !== OCTET_STRING || value.end !== ext.end) throw new CrlFormatError(`${where} extension ${oid}: malformed value`);
    take?.(oid, value);
    at = ext.end;
  }
}

/** The CRL number: a non-negative INTEGER of at most 20 octets (RFC 5280 §5.2.3). */
function crlNumber(der: Buffer, value: Element): bigint {
  const integer = expect(der, value.body, value.end, INTEGER, 'CRL number');
  const octets = integer.end - integer.body;
  if (integer.end !== value.end || octets === 0 || octets > 21 || (der[integer.body] as number) & 0x80) {
    throw new CrlFormatError('malformed CRL number');
  }
  return BigInt(`0x${der.toString('hex', integer.body, integer.end)}`);
}

/** Reads a CRL's DER; throws CrlFormatError when it is malformed or carries what Warden cannot use. */
export function readCrl(input: Uint8Array): CrlView {
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const list = expect(der, 0, der.length, SEQUENCE, 'CertificateList');
  if (list.end !== der.length) throw new CrlFormatError('trailing octets after the CRL');
  const tbs = expect(der, list.body, list.end, SEQUENCE, 'TBSCertList');
  const outerAlgorithm = expect(der, tbs.end, list.end, SEQUENCE, 'signatureAlgorithm');
  const signatureBits = expect(der, outerAlgorithm.end, list.end, BIT_STRING, 'signatureValue');
  if (signatureBits.end !== list.end) throw new CrlFormatError('trailing elements in the CertificateList');
  if (signatureBits.end - signatureBits.body < 2 || der[signatureBits.body] !== 0) throw new CrlFormatError('malformed signature');

  let at = tbs.body;
  let field = element(der, at, tbs.end);
  if (field.tag === INTEGER) {
    if (field.end - field.body !== 1 || der[field.body] !== 1) throw new CrlFormatError('unsupported CRL version (v2 is 1)');
    at = field.end;
    field = element(der, at, tbs.end);
  }
  if (field.tag !== SEQUENCE) throw new CrlFormatError('TBSCertList: missing signature algorithm');
  if (!der.subarray(field.start, field.end).equals(der.subarray(outerAlgorithm.start, outerAlgorithm.end))) {
    throw new CrlFormatError('the signature algorithms inside and outside the TBSCertList differ');
  }
  const signatureAlgorithm = oidText(der, expect(der, field.body, field.end, OID, 'signature algorithm'));
  const issuer = expect(der, field.end, tbs.end, SEQUENCE, 'issuer');
  const thisUpdateField = element(der, issuer.end, tbs.end);
  const thisUpdate = time(der, thisUpdateField, 'thisUpdate');
  at = thisUpdateField.end;

  let nextUpdate: Date | undefined;
  let number: bigint | undefined;
  const serials: string[] = [];
  if (at < tbs.end) {
    field = element(der, at, tbs.end);
    if (field.tag === UTC_TIME || field.tag === GENERALIZED_TIME) {
      nextUpdate = time(der, field, 'nextUpdate');
      at = field.end;
    }
  }
  if (at < tbs.end) {
    field = element(der, at, tbs.end);
    if (field.tag === SEQUENCE) {
      for (let e = field.body; e < field.end;) {
        const entry = expect(der, e, field.end, SEQUENCE, 'revoked entry');
        const serial = expect(der, entry.body, entry.end, INTEGER, 'revoked serial');
        const date = element(der, serial.end, entry.end);
        time(der, date, 'revocationDate');
        if (date.end < entry.end) {
          const entryExtensions = expect(der, date.end, entry.end, SEQUENCE, 'entry extensions');
          if (entryExtensions.end !== entry.end) throw new CrlFormatError(`trailing octets in the revoked entry at octet ${entry.start}`);
          extensions(der, entryExtensions, 'entry');
        }
        serials.push(serialOf(der, serial));
        e = entry.end;
      }
      at = field.end;
    }
  }
  if (at < tbs.end) {
    const wrapper = expect(der, at, tbs.end, CRL_EXTENSIONS, 'crlExtensions');
    const list = expect(der, wrapper.body, wrapper.end, SEQUENCE, 'crlExtensions');
    if (list.end !== wrapper.end) throw new CrlFormatError('trailing octets in crlExtensions');
    extensions(der, list, 'CRL', (oid, value) => {
      if (oid === CRL_NUMBER_OID) number = crlNumber(der, value);
    });
    at = wrapper.end;
  }
  if (at !== tbs.end) throw new CrlFormatError('trailing elements in the TBSCertList');

  return {
    der,
    tbs: der.subarray(tbs.start, tbs.end),
    signatureAlgorithm,
    signature: der.subarray(signatureBits.body + 1, signatureBits.end),
    issuer: der.subarray(issuer.start, issuer.end),
    thisUpdate,
    nextUpdate,
    number,
    serials,
  };
}
