/**
 * plainReadingOf, the cheap reading of a plain name (no `%`, `+`, `.`, `[`, `]`, NUL or non-ASCII)
 * that token sources use for most cookie names and query keys on every request: it must agree
 * exactly with the full reading (readingOf), and decline every other name — a `.` has qs's
 * allowDots reading too (qsDotsRoot).
 */
import fc from 'fast-check';
import t from 'tap';
import { plainReadingOf, readingOf } from '../../../src/openapi/name-readings.js';
import { qsDotsRoot } from '../../../src/openapi/qs-dots.js';

/** ASCII but NUL, %, +, ., [ and ]: spaces, tabs and other controls, letters of both cases. */
const plainChar = fc
  .integer({ min: 1, max: 0x7f })
  .filter((c) => ![0x25, 0x2b, 0x2e, 0x5b, 0x5d].includes(c))
  .map((c) => String.fromCharCode(c));
const biased = fc.oneof(plainChar, fc.constantFrom(' ', '\t', '\n', '\v', '\f', '\r', '_', 'A', 'z', 'I', 'K', 'S'));

t.test('a plain name: the cheap reading is the full one', async (t) => {
  for (const name of ['access_token', 'ACCESS_TOKEN', 'access token', ' \taccess Token', 'a\x01b', '', '  ', 'x\x7f']) {
    t.equal(plainReadingOf(name), readingOf(name), JSON.stringify(name));
    t.equal(qsDotsRoot(name), undefined, `${JSON.stringify(name)}: no allowDots reading`);
  }
  fc.assert(
    fc.property(fc.array(biased, { maxLength: 16 }), (chars) => {
      const name = chars.join('');
      const reading = plainReadingOf(name);
      // token-sources.ts tells most names apart by this length alone.
      return reading === readingOf(name) && reading.length === name.trimStart().length;
    }),
    { numRuns: 20_000 },
  );
});

t.test('any other name is left to the full reading', async (t) => {
  for (const name of [
    'acc%65ss_token',
    '%u0061ccess_token',
    'access+token',
    'access[token',
    'access_token[]',
    ']x',
    'access_token\0',
    'access.token',
    '.access_token',
    'access_token.0',
    'acceſs_token',
    'access_to\u212aen',
    'clİent',
  ])
    t.equal(plainReadingOf(name), undefined, JSON.stringify(name));
});
