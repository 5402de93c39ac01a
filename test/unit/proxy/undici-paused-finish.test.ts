/**
 * The fix for nodejs/undici#5360 (a paused HTTP/1 parser at the backend's FIN crashed the process,
 * red team 27d F1) lives in patches/undici+7.30.2.patch, applied by patch-package at `npm ci`. This
 * fails when the undici this tree loads still asserts `!this.paused` in `Parser.finish()`: the patch
 * did not apply (`--ignore-scripts`, a new undici the patch no longer fits) or finish() moved.
 * The start-up warning (src/proxy/undici-paused-finish.ts) reads the same file the same way.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import { installedUndici, pausedFinishOf, warnIfUndiciUnpatched } from '../../../src/proxy/undici-paused-finish.js';
import { repoRoot } from '../../support/sidecar.js';

t.test("the installed undici's finish() completes a paused parser instead of asserting", async (t) => {
  const undici = installedUndici();
  t.equal(undici.finish, 'fixed', `${undici.file} (undici ${undici.version}): finish() does not assert(!this.paused)`);
  const source = readFileSync(undici.file, 'utf8');
  t.match(
    source,
    /if \(this\.paused\) \{\s+let data\s+do \{\s+llhttp\.llhttp_resume\(this\.ptr\)/,
    'it resumes and drains the paused parser (#5474)',
  );
  const patch = `patches/undici+${undici.version}.patch`;
  t.doesNotThrow(() => readFileSync(`${repoRoot}/${patch}`), `${patch} exists: the patch is named for the installed version`);
  const warnings: string[] = [];
  warnIfUndiciUnpatched({ warn: (_fields, msg) => warnings.push(msg) });
  t.same(warnings, [], 'no warning at start');
});

t.test('the check tells the unpatched finish() from the fixed one', async (t) => {
  const unpatched = [
    'class Parser {',
    '  finish () {',
    '    assert(currentParser === null)',
    '    assert(!this.paused)',
    '  }',
    '',
    '  createError () {',
    '  }',
    '',
  ];
  t.equal(pausedFinishOf(unpatched.join('\n')), 'asserts', "undici 7.30.2's finish()");
  t.equal(pausedFinishOf(unpatched.filter((l) => !l.includes('paused')).join('\n')), 'fixed', 'without the assertion');
  const elsewhere = ['class Parser {', '  finish () {', '  }', '', '  execute () {', '    assert(!this.paused)', '  }', ''];
  t.equal(pausedFinishOf(elsewhere.join('\n')), 'fixed', 'the assertion in execute() (it stays there) is not finish()');
  t.equal(pausedFinishOf('class Parser {}\n'), 'unknown', 'no finish() found');
});
