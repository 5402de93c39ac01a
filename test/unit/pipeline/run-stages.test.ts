import t from 'tap';
import { WardenError } from '../../../src/errors.js';
import { runStages } from '../../../src/pipeline/run-stages.js';
import type { RequestContext, Stage, Verdict } from '../../../src/pipeline/stage.js';

const ctx = {} as RequestContext;
function stage(log: string[], name: string, verdict: () => Verdict | Promise<Verdict>): Stage {
  return {
    id: 'access',
    run: () => {
      log.push(name);
      return verdict();
    },
  };
}

t.test('synchronous stages stay synchronous and run in order', async (t) => {
  const log: string[] = [];
  const r = runStages([stage(log, 'a', () => undefined), stage(log, 'b', () => undefined)], ctx);
  t.equal(r, undefined, 'no promise when every stage is synchronous');
  t.same(log, ['a', 'b']);
});

t.test('the first refusal wins and later stages do not run', async (t) => {
  const log: string[] = [];
  const denied = new WardenError('ERR_ACCESS_DENIED');
  const r = runStages([stage(log, 'a', () => denied), stage(log, 'b', () => undefined)], ctx);
  t.equal(r, denied);
  t.same(log, ['a']);
});

t.test('an asynchronous stage continues the run on promises', async (t) => {
  const log: string[] = [];
  const denied = new WardenError('ERR_ACCESS_DENIED');
  const stages = [
    stage(log, 'a', () => undefined),
    stage(log, 'b', () => Promise.resolve(undefined)),
    stage(log, 'c', () => undefined),
    stage(log, 'd', () => Promise.resolve(denied)),
    stage(log, 'e', () => undefined),
  ];
  const r = runStages(stages, ctx);
  t.ok(r instanceof Promise);
  t.equal(await r, denied);
  t.same(log, ['a', 'b', 'c', 'd']);
});
