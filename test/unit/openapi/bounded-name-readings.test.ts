/**
 * Review rt26 F3: name readings bounded for long keys (reading-length.ts, qs-dots.ts qsDotsPath,
 * underscored.ts, separators-removed.ts) must read every key as the unbounded readings did
 * (test/support/unbounded-name-readings.ts, the code before): same verdicts on random keys made of
 * the characters the readings treat specially, around short declared names, most keys longer than
 * the longest of them so the bounds decide.
 */
import fc from 'fast-check';
import t from 'tap';
import { compileNameReadings, isMethodOverrideName, isMultipartMethodOverrideName } from '../../../src/openapi/name-readings.js';
import { qsDotsKey, qsDotsPath, qsPath } from '../../../src/openapi/qs-dots.js';
import { isTrimmedSpace } from '../../../src/net/cookie-trim.js';
import { boundedReading } from '../../../src/openapi/reading-length.js';

import { separatorsRemoved } from '../../../src/openapi/separators-removed.js';
import { underscored } from '../../../src/openapi/underscored.js';
import * as unbounded from '../../support/unbounded-name-readings.js';

/** Whether `key`'s PHP reading is too long (boundedReading's null). */
const readingLonger = (key: string, max: number, separators: boolean): boolean => boundedReading(key, max, separators) === null;

const DECLARED = ['a', 'ab', 'role', 'page.size', 'is_admin', 'isAdmin', 'x.y.z', 'İd', 'ßa', 'tags[]', 'Σa', 'a-b', 'ā_b'];
const piece = fc.constantFrom(
  ...['a', 'b', 'A', 'd', 'i', 'İ', '\u0307', 'ß', 's', 'S', 'ﬃ', 'Σ', 'σ', 'ā', 'x', 'y', 'z', 'role', 'page', 'size', 'is', 'admin'],
  ...['.', '[', ']', ' ', '_', '-', '+', '%', '\0', '\t', '\u3000', '\ufeff', '%u0020', '%u002e', '%u005b', '%U005D', '%u0000', '%u0061'],
  ...['%20', '%2e', 'method', '_method', 'x-http-method-override', '\ud83d\ude00', '\ud800', '1'],
  // Separator runs longer than any declared name, which the bounded reading cuts.
  ...['_'.repeat(12), ' '.repeat(11), '.-'.repeat(6), '%u005f'.repeat(5), '_\u0307'.repeat(6), 'i\u0307\u0307'],
);
const key = fc.array(piece, { maxLength: 24 }).map((pieces) => pieces.join(''));
const declared = fc.uniqueArray(fc.constantFrom(...DECLARED), { minLength: 1, maxLength: 4 });

t.test('readAs reads every key as the unbounded readings do', async () => {
  fc.assert(
    fc.property(
      declared,
      fc.boolean(),
      fc.boolean(),
      fc.array(key, { minLength: 1, maxLength: 8 }),
      (names, separators, stripped, keys) => {
        const params = names.map((name) => ({ name, in: 'query' as const }));
        const bounded = compileNameReadings(params, { separators, stripped });
        const reference = unbounded.compileNameReadings(params, { separators, stripped });
        return keys.every((k) => JSON.stringify(bounded.readAs(k)) === JSON.stringify(reference.readAs(k)));
      },
    ),
    { numRuns: 20_000 },
  );
});

t.test('the method override checks read every key as the unbounded ones do', async () => {
  fc.assert(
    fc.property(key, (k) => {
      return (
        isMethodOverrideName(k) === unbounded.isMethodOverrideName(k) &&
        isMultipartMethodOverrideName(k) === unbounded.isMultipartMethodOverrideName(k)
      );
    }),
    { numRuns: 50_000 },
  );
  for (const k of ['_method', ' _METHOD', '._method', '_method[]', '%u005fmethod', 'x-http-method-override\0x', ' \t_method \r\n'])
    t.equal(isMultipartMethodOverrideName(k), true, JSON.stringify(k));
});

t.test('a too long reading is too long: its unbounded reading folds to more characters', async () => {
  fc.assert(
    fc.property(key, fc.integer({ min: 0, max: 12 }), (k, max) => {
      const reading = unbounded.readingOf(k);
      if (readingLonger(k, max, false) && reading.length <= max) return false;
      // Separators: what withoutSeparators keeps of it.
      return !readingLonger(k, max, true) || separatorsRemoved(reading).replace(/[_-]/g, '').length > max;
    }),
    { numRuns: 50_000 },
  );
});

t.test('the parts agree with what they replace', async (t) => {
  fc.assert(
    fc.property(key, fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 10 }), (k, limit, max) => {
      const whole = qsPath(qsDotsKey(k) ?? k, limit);
      const read = qsDotsPath(k, limit, max);
      // Equal up to the first segment too long, which is one.
      const cut = read.indexOf(null);
      if (cut === -1) return JSON.stringify(read) === JSON.stringify(whole);
      return JSON.stringify(read.slice(0, cut)) === JSON.stringify(whole.slice(0, cut)) && (whole[cut] as string).length > max;
    }),
    { numRuns: 50_000 },
  );
  fc.assert(
    fc.property(key, (k) => {
      const spaced = underscored(k.padEnd(1100, k || '.'), /[ .]/g, (c) => c === 0x20 || c === 0x2e);
      return (
        separatorsRemoved(k, 0) === k.replace(/(?<=[\p{L}\p{N}])[_-]+(?=[\p{L}\p{N}])/gu, '') &&
        spaced === k.padEnd(1100, k || '.').replace(/[ .]/g, '_')
      );
    }),
    { numRuns: 20_000 },
  );
  let differ = 0;
  for (let c = 0; c <= 0xffff; c++) if (isTrimmedSpace(c) !== (String.fromCharCode(c).trimStart() === '')) differ++;
  t.equal(differ, 0, 'isTrimmedSpace is what trimStart trims');
});
