/** Signal-driven reloads are merged: one running, one waiting; further asks while one waits add nothing. */
import t from 'tap';
import { mergedReloads } from '../../../src/cli/reload-signal.js';

t.test('one running, one waiting, the rest merged; a failed reload does not stop the next', async (t) => {
  const finish: ((ok: boolean) => void)[] = [];
  let runs = 0;
  const ask = mergedReloads(
    () =>
      new Promise<void>((resolve, reject) => {
        runs++;
        finish.push((ok) => (ok ? resolve() : reject(new Error('refused'))));
      }),
  );
  const settle = () => new Promise((r) => setImmediate(r));
  t.same([ask(), ask(), ask(), ask()], ['started', 'queued', 'merged', 'merged']);
  t.equal(runs, 1, 'one running');
  finish.shift()?.(false);
  await settle();
  t.equal(runs, 2, 'the waiting one runs after it, even though the first failed');
  t.equal(ask(), 'queued', 'a signal during the second queues one more');
  finish.shift()?.(true);
  await settle();
  t.equal(runs, 3);
  finish.shift()?.(true);
  await settle();
  t.equal(runs, 3, 'nothing left waiting');
  t.equal(ask(), 'started', 'idle again: a signal starts a reload at once');
});
