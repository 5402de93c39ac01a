/**
 * Fuzz: canonical base64url in compact JWS (src/identity/jws-encoding.ts). For any bytes, the
 * encoding Node writes is canonical; every other spelling that decodes to the same bytes (the last
 * character's spare bits set) is not; and a segment whose length no encoding has is not.
 */
import t from 'tap';
import fc from 'fast-check';
import { isCanonicalJws } from '../../src/identity/jws-encoding.js';
import { fuzz } from './fuzz-budget.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const segment = fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes).toString('base64url'));

/** The other spellings of a segment: same decoded bytes, spare bits of its last character set. */
function otherSpellings(seg: string): string[] {
  const spare = ({ 2: 4, 3: 2 } as Record<number, number>)[seg.length % 4] ?? 0;
  const last = ALPHABET.indexOf(seg.at(-1) ?? 'A');
  const out: string[] = [];
  for (let bits = 1; bits < 1 << spare; bits++) out.push(seg.slice(0, -1) + (ALPHABET[(last & ~((1 << spare) - 1)) | bits] as string));
  return out;
}

t.test('isCanonicalJws', async (t) => {
  fuzz(t, 'jws.canonical', [segment, segment, segment], (h, p, s) => isCanonicalJws(`${h}.${p}.${s}`));

  fuzz(t, 'jws.respelled', [segment, segment, segment, fc.nat(2)], (h, p, s, which) => {
    const parts = [h, p, s];
    for (const other of otherSpellings(parts[which] as string)) {
      // Decoders accept it as the same bytes, which is the reason for the check.
      if (!Buffer.from(other, 'base64url').equals(Buffer.from(parts[which] as string, 'base64url'))) return false;
      const respelled = parts.map((x, i) => (i === which ? other : x)).join('.');
      if (isCanonicalJws(respelled)) return false;
    }
    return true;
  });

  fuzz(t, 'jws.length', [segment, fc.constantFrom(...ALPHABET)], (seg, extra) => {
    const odd = seg.length % 4 === 0 ? `${seg}${extra}` : undefined;
    return odd === undefined || !isCanonicalJws(`e30.${odd}.`);
  });

  // Padded as standard base64 writes it: decoders (atob, Buffer) read the same bytes, and the padded
  // length (a multiple of 4) needs no spare-bit check, so only the alphabet check refuses it (defect 166).
  fuzz(t, 'jws.padded', [segment, segment, segment, fc.nat(2)], (h, p, s, which) => {
    const parts = [h, p, s];
    const seg = parts[which] as string;
    if (seg.length % 4 === 0) return true;
    const padded = `${seg}${'='.repeat(4 - (seg.length % 4))}`;
    if (!Buffer.from(padded, 'base64').equals(Buffer.from(seg, 'base64url'))) return false;
    return !isCanonicalJws(parts.map((x, i) => (i === which ? padded : x)).join('.'));
  });

  fuzz(t, 'jws.alphabet', [segment, fc.nat(), fc.constantFrom('=', '+', '/', ' ', '\t', '%', '\u00e9', '\0')], (seg, at, extra) => {
    const i = seg.length === 0 ? 0 : at % (seg.length + 1);
    return !isCanonicalJws(`e30.e30.${seg.slice(0, i)}${extra}${seg.slice(i)}`);
  });

  t.ok(isCanonicalJws('e30.e30.'), 'an empty signature segment (unsecured JWS shape) is canonical');
  t.notOk(isCanonicalJws('e30.e30.AB'), '"AB": the spare bits of B set');
  t.ok(isCanonicalJws('e30.e30.AA'));
});
