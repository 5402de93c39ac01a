/**
 * lowSSpelling: an ECDSA-signed JWS has a second spelling that verifies, (r, n − s); both must have
 * one hash, or a revocation keyed by the text misses the other (docs/adversarial.md defect 92).
 */
import t from 'tap';
import { generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { isRespelledJws, isWholeRsaSignature, lowSSpelling } from '../../../src/identity/jws-encoding.js';
import { tokenHash } from '../../../src/identity/token-hash.js';

/** Curve orders, written out here apart from the code under test. */
const ORDERS: Record<string, { n: bigint; size: number }> = {
  ES256: { n: BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'), size: 32 },
  ES384: {
    n: BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
    size: 48,
  },
  ES512: {
    n: BigInt(
      '0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409',
    ),
    size: 66,
  },
};

const sOf = (jws: string, size: number) => BigInt(`0x${Buffer.from(jws.split('.')[2]!, 'base64url').toString('hex', size)}`);

/** The same token with s replaced by n − s. */
function twinOf(jws: string, alg: string): string {
  const { n, size } = ORDERS[alg]!;
  const [h, p, sig] = jws.split('.') as [string, string, string];
  const bytes = Buffer.from(sig, 'base64url');
  bytes.write((n - sOf(jws, size)).toString(16).padStart(2 * size, '0'), size, 'hex');
  return `${h}.${p}.${bytes.toString('base64url')}`;
}

t.test('both spellings of an ECDSA-signed token have one hash, and the one kept verifies', async (t) => {
  for (const alg of ['ES256', 'ES384', 'ES512']) {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const { n, size } = ORDERS[alg]!;
    let sawHigh = false;
    let sawLow = false;
    for (let i = 0; i < 12; i++) {
      const jws = await new SignJWT({ sub: `s${i}` }).setProtectedHeader({ alg }).sign(privateKey);
      const twin = twinOf(jws, alg);
      await jwtVerify(twin, publicKey as CryptoKey | KeyObject); // the twin verifies: this is the defect's premise
      const kept = lowSSpelling(jws);
      t.equal(lowSSpelling(twin), kept, `${alg}: the twin has the same spelling`);
      t.equal(tokenHash('https://idp', twin), tokenHash('https://idp', jws), `${alg}: and the same hash`);
      t.ok(sOf(kept, size) <= n >> 1n, `${alg}: the spelling kept has the low s`);
      t.ok(kept === jws || kept === twin, `${alg}: and is one of the two`);
      await jwtVerify(kept, publicKey as CryptoKey | KeyObject);
      if (kept === jws) sawLow = true;
      else sawHigh = true;
    }
    t.ok(sawHigh && sawLow, `${alg}: tokens signed with a high s and with a low s were both seen`);
  }
});

t.test('anything else is its own spelling', async (t) => {
  const rsa = await generateKeyPair('RS256');
  const ed = await generateKeyPair('EdDSA');
  const es = await generateKeyPair('ES256');
  const rs256 = await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
  const eddsa = await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'EdDSA' }).sign(ed.privateKey);
  let high = '';
  while (high === '') {
    const jws = await new SignJWT({ sub: 'b' }).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey);
    if (lowSSpelling(jws) !== jws) high = jws;
  }
  const [h, p, sig] = high.split('.') as [string, string, string];
  const { n } = ORDERS.ES256!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  // 64 bytes in 86 characters: the last one's 4 low bits are spare, 0 in the canonical spelling.
  const spareBitSet = `${h}.${p}.${sig.slice(0, -1)}${alphabet[alphabet.indexOf(sig.at(-1)!) | 1]}`;
  const sIsN = Buffer.from(sig, 'base64url');
  sIsN.write(n.toString(16).padStart(64, '0'), 32, 'hex');
  const withS = (bytes: Buffer) => `${h}.${p}.${bytes.toString('base64url')}`;
  const cases: [string, string][] = [
    ['an opaque token', 'opaque-token-value'],
    ['two segments', `${h}.${p}`],
    ['RS256', rs256],
    ['EdDSA (64 bytes, as ES256)', eddsa],
    ['a header that is not JSON', `bm90IGpzb24.${p}.${sig}`],
    ['alg ES256 with a short signature', withS(Buffer.from(sig, 'base64url').subarray(0, 63))],
    ['a signature segment with a character base64url has not', `${h}.${p}.${sig.slice(0, 10)}!${sig.slice(10)}`],
    ['a non-canonical last character (a spare bit set)', spareBitSet],
    ['s = 0', withS(Buffer.concat([Buffer.from(sig, 'base64url').subarray(0, 32), Buffer.alloc(32)]))],
    ['s = n', withS(sIsN)],
    ['s > n', withS(Buffer.concat([Buffer.from(sig, 'base64url').subarray(0, 32), Buffer.alloc(32, 0xff)]))],
  ];
  for (const [name, token] of cases) t.equal(lowSSpelling(token), token, name);
  t.not(lowSSpelling(high), high, 'a well-formed ES256 token with a high s is respelled (the control)');
});

t.test('an RSA signature is as long as its modulus: a PSS one a zero byte short verifies, and is refused', async (t) => {
  for (const alg of ['PS256', 'RS256']) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { modulusLength: 2048 });
    let jws = '';
    for (let i = 0; i < 5000 && Buffer.from(jws.split('.')[2] ?? '', 'base64url')[0] !== 0; i++)
      jws = await new SignJWT({ i }).setProtectedHeader({ alg }).sign(privateKey);
    const [h, p, sig] = jws.split('.') as [string, string, string];
    t.equal(Buffer.from(sig, 'base64url')[0], 0, `${alg}: a signature starting with 0x00`);
    const short = `${h}.${p}.${Buffer.from(sig, 'base64url').subarray(1).toString('base64url')}`;
    t.ok(isWholeRsaSignature(jws, alg, publicKey), `${alg}: the signature as made (256 bytes) passes`);
    t.notOk(isWholeRsaSignature(short, alg, publicKey), `${alg}: 255 bytes do not`);
    if (alg === 'PS256') await jwtVerify(short, publicKey as CryptoKey | KeyObject); // the defect's premise: it verifies
    const { KeyObject: NodeKeyObject } = await import('node:crypto');
    t.notOk(isWholeRsaSignature(short, alg, NodeKeyObject.from(publicKey)), `${alg}: a KeyObject's modulus too`);
    t.notOk(isWholeRsaSignature(jws, alg, undefined), `${alg}: a key whose modulus cannot be read refuses`);
  }
  const es = await generateKeyPair('ES256');
  const es256 = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey);
  t.ok(isWholeRsaSignature(es256, 'ES256', es.publicKey), 'other algorithms pass');
});

t.test('isRespelledJws: another spelling of a JWS, not an opaque token holding dots', async (t) => {
  const es = await generateKeyPair('ES256');
  const jws = await new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'ES256' }).sign(es.privateKey);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const [h, p, sig] = jws.split('.') as [string, string, string];
  const respelled: [string, string][] = [
    ['padded', `${jws}==`],
    ['one =', `${jws}=`],
    ['a spare bit set', `${h}.${p}.${sig.slice(0, -1)}${alphabet[alphabet.indexOf(sig.at(-1)!) | 1]}`],
    ["base64's + and / (jose's decoder takes them for - and _)", `${h}.${p}.+/${sig.slice(2)}`],
    ['a padded header', `${h}${'='.repeat((4 - (h.length % 4)) % 4 || 2)}.${p}.${sig}`],
  ];
  for (const [name, token] of respelled) t.ok(isRespelledJws(token), name);
  const not: [string, string][] = [
    ['the token itself', jws],
    ['an opaque token', 'abcDEF123-_xyz'],
    ['an opaque token with two dots and spare bits', 'opaque.token.with-dotsQ'],
    ['an opaque token with dots and padding', 'b3BhcXVl.dG9rZW4=.c2lnbmF0dXJl=='],
    ['a header that is JSON but no object', `${Buffer.from('[1]').toString('base64url')}.${p}.${sig}=`],
    ['four segments', `${jws}.x=`],
  ];
  for (const [name, token] of not) t.notOk(isRespelledJws(token), name);
});
