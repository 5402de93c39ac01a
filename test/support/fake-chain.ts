/**
 * A client certificate chain of fabricated CAs, written as raw DER: a leaf with a real key (so the
 * client can prove it holds it), "issued" by `count` CA certificates whose RSA keys are random
 * moduli with a public exponent as large as the modulus, every signature garbage. OpenSSL checks
 * each signature of such a chain during the handshake (Node's verify callback lets it go on past
 * every error), each check a modular exponentiation with that exponent: the costly handshake that
 * limits.handshake_failures exists for. Made once per test process per shape.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, body: Buffer) => Buffer.concat([Buffer.from([tag]), length(body.length), body]);
const sequence = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
/** A positive INTEGER from big-endian bytes. */
const integer = (bytes: Buffer) => tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
const oid = (hex: string) => tlv(0x06, Buffer.from(hex, 'hex'));
const bitString = (bytes: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
const NULL = Buffer.from([0x05, 0x00]);

const RSA_ENCRYPTION = '2a864886f70d010101';
const SHA256_WITH_RSA = '2a864886f70d01010b';
const COMMON_NAME = '550403';
const BASIC_CONSTRAINTS = '551d13';

const name = (cn: string) => sequence(tlv(0x31, sequence(oid(COMMON_NAME), tlv(0x0c, Buffer.from(cn)))));
const signatureAlgorithm = sequence(oid(SHA256_WITH_RSA), NULL);
const now = Date.now();
const utcTime = (ms: number) => tlv(0x17, Buffer.from(`${new Date(ms).toISOString().slice(2, 19).replace(/[-:T]/g, '')}Z`));
const validity = sequence(utcTime(now - 86_400_000), utcTime(now + 30 * 86_400_000));
/** basicConstraints critical, CA:true. */
const caExtensions = tlv(
  0xa3,
  sequence(sequence(oid(BASIC_CONSTRAINTS), tlv(0x01, Buffer.from([0xff])), tlv(0x04, sequence(tlv(0x01, Buffer.from([0xff])))))),
);

/** Random bytes with the top bit and the lowest bit set: a full-length odd number. */
function oddNumber(bits: number): Buffer {
  const b = randomBytes(bits / 8);
  b[0]! |= 0x80;
  b[b.length - 1]! |= 1;
  return b;
}

function certificate(issuer: string, subject: string, spki: Buffer, ca: boolean, signatureBytes: number): Buffer {
  const serial = randomBytes(8);
  serial[0] = 0x01;
  const tbs = sequence(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    signatureAlgorithm,
    name(issuer),
    validity,
    name(subject),
    spki,
    ...(ca ? [caExtensions] : []),
  );
  // Below any modulus (top byte 0x01), so OpenSSL gets as far as the exponentiation.
  const signature = randomBytes(signatureBytes);
  signature[0] = 0x01;
  return sequence(tbs, signatureAlgorithm, bitString(signature));
}

const pem = (der: Buffer) =>
  `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;

export interface FakeChain {
  /** The leaf's private key (PKCS#8 PEM). */
  key: string;
  /** The leaf, then the fabricated CAs (PEM), as tls.connect's `cert` takes a chain. */
  cert: string;
  /** Size of the chain in DER bytes. */
  bytes: number;
}

const cache = new Map<string, FakeChain>();

/** `count` fabricated CAs with `modulusBits`-bit RSA moduli and `exponentBits`-bit public exponents. */
export function fakeClientChain(count: number, { modulusBits = 3072, exponentBits = 3072 } = {}): FakeChain {
  const key = `${count}/${modulusBits}/${exponentBits}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leafSpki = leafKey.publicKey.export({ type: 'spki', format: 'der' });
  const ders = [certificate('fake-ca-1', 'fake-client', leafSpki, false, modulusBits / 8)];
  for (let i = 1; i <= count; i++) {
    const spki = sequence(
      sequence(oid(RSA_ENCRYPTION), NULL),
      bitString(sequence(integer(oddNumber(modulusBits)), integer(oddNumber(exponentBits)))),
    );
    const issuer = i === count ? 'fake-absent-root' : `fake-ca-${i + 1}`;
    ders.push(certificate(issuer, `fake-ca-${i}`, spki, true, modulusBits / 8));
  }
  const chain = {
    key: leafKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    cert: ders.map(pem).join(''),
    bytes: ders.reduce((n, d) => n + d.length, 0),
  };
  cache.set(key, chain);
  return chain;
}
