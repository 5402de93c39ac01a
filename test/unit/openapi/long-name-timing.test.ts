/**
 * Review rt26 F3: one form (or JSON) key of 9 MiB read as backends read names held the event loop
 * for seconds: each reading rewrote the whole key (qsDotsKey, global regular-expression replaces,
 * case folding), ~100–300 ns a character. Declared and override names are short, so a reading longer
 * than the longest is now told apart in one pass that stops there (reading-length.ts, qsDotsPath).
 * Before the fix (this test on 34e5e60, best of three, readAs + isMethodOverrideName +
 * isMultipartMethodOverrideName for one 9 MiB key): `.a` 4.2 s, ` a` 3.1 s, `%u0020a` 3.6 s, `.]`
 * 3.3 s, `a.` 3.5 s (tap's timeout ended it there); `a` + 9 MiB of spaces + `b` took ~1.5 s, and
 * `ā` + 9 MiB of `_` + `b` threw a RangeError (INTERIOR_SEPARATORS' backtracking). Now 1–270 ms.
 */
import t from 'tap';
import { foldSpelling } from '../../../src/openapi/case-variants.js';
import { compileNameReadings, isMethodOverrideName, isMultipartMethodOverrideName } from '../../../src/openapi/name-readings.js';

const SIZE = 9 << 20;
/** Generous for a loaded CI host: 1–270 ms now, 3–4 s before the fix. */
const BOUND_MS = 500;

// As the review's w.yaml declares them: a form body with a dotted name (qs allowDots paths).
const form = compileNameReadings(
  ['role', 'bio', 'page.size', 'ïsAdmin'].map((name) => ({ name, in: 'query' as const })),
  { separators: true, stripped: true },
);

const repeated = (unit: string) => unit.repeat(Math.ceil(SIZE / unit.length)).slice(0, SIZE);

function bestOfThree(read: () => void): number {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const start = performance.now();
    read();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

t.test('a 9 MiB key is read in one short pass', async (t) => {
  // `+a` is ` a` once the form is decoded; `%20a` stays as it is (PHP does not decode names twice).
  const keys: [string, string][] = [
    ['.a', repeated('.a')],
    [' a (+a)', repeated(' a')],
    ['%20a', repeated('%20a')],
    ['%u0020a', repeated('%u0020a')],
    ['[a', repeated('[a')],
    ['.]', repeated('.]')],
    ['a.', repeated('a.')],
    ['a, spaces, b', `a${' '.repeat(SIZE)}b`],
    ['a, dots, b', `a${'.'.repeat(SIZE)}b`],
    ['ā, underscores, b', `ā${'_'.repeat(SIZE)}b`],
  ];
  for (const [label, key] of keys) {
    const ms = bestOfThree(() => {
      form.readAs(key);
      isMethodOverrideName(key);
      isMultipartMethodOverrideName(key);
    });
    t.ok(ms < BOUND_MS, `${label}: ${ms.toFixed(0)} ms (< ${BOUND_MS})`);
  }
});

t.test('long keys are still read as their declared names', async (t) => {
  // Separators between letters are dropped however many (pydantic's populate_by_name).
  t.equal(form.readAs(`ïs${'_'.repeat(SIZE)}admin`)?.declared, 'ïsAdmin', 'ïs____…admin is ïsAdmin');
  t.equal(form.readAs(`is${' '.repeat(SIZE)}admin`)?.declared, undefined, 'is    …admin: ïsAdmin is another name');
  t.equal(form.readAs(`${' '.repeat(SIZE)}role`)?.declared, 'role', 'leading spaces trimmed');
  t.equal(form.readAs(`${'.]'.repeat(SIZE / 2)}.role`)?.declared, 'role', '.].]….role is role to qs');
  t.equal(form.readAs(`${'.'.repeat(SIZE)}role`)?.declared, undefined, '….role is no name of its own to qs');
  t.equal(form.readAs(`${'[]'.repeat(SIZE / 2)}role`)?.declared, 'role', 'brackets skipped');
  t.equal(form.readAs(`page.size${'.x'.repeat(SIZE / 2)}`)?.declared, 'page.size', 'page.size.x.x…: under page.size');
  t.equal(form.readAs(`role${'x'.repeat(SIZE)}`), undefined, 'a long name is none');
  t.equal(isMethodOverrideName(`${'%u0020'.repeat(SIZE / 6)}_method`), true, '%u0020…_method is _method');
  t.equal(isMethodOverrideName(`._method${'.a'.repeat(SIZE / 2)}`), true, '._method.a.a… is _method to qs');
  t.equal(isMultipartMethodOverrideName(`${' '.repeat(SIZE)}_method\t`), true, 'Django strips a multipart name');
});

t.test('a JSON member name of a two-byte letter and 9 MiB of "_" folds without a RangeError (case variants)', async (t) => {
  const name = `ā${'_'.repeat(SIZE)}b`;
  t.equal(foldSpelling(name), 'āb', 'the run between letters dropped, as the regular expression drops a short one');
  t.equal(foldSpelling('is_Admin'), 'isadmin', 'a short name as before');
});
