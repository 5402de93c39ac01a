import t from 'tap';
import { createStateWriter } from '../../../src/mesh/state-writer.js';

/** A write that lands when its `land` is called. */
function gated(log: string[], name: string) {
  let land!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    land = resolve;
    fail = reject;
  });
  return {
    task: async () => {
      log.push(`start ${name}`);
      await done;
      log.push(`end ${name}`);
    },
    land: () => land(),
    fail: (err: Error) => fail(err),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

t.test('one write at a time, in the order asked', async (t) => {
  const log: string[] = [];
  const writer = createStateWriter();
  const a = gated(log, 'a');
  const b = gated(log, 'b');
  const first = writer.write('credentials', a.task);
  const second = writer.write('crl', b.task);
  await tick();
  t.same(log, ['start a'], 'the second waits for the first');
  t.notOk(writer.idle);
  a.land();
  await first;
  await tick();
  t.same(log, ['start a', 'end a', 'start b']);
  b.land();
  await second;
  t.ok(writer.idle, 'idle once both landed');
  await writer.settled();
});

t.test(
  "a waiting write of a slot is replaced by a newer one, which goes last: behind other slots' writes asked after the older",
  async (t) => {
    const log: string[] = [];
    const writer = createStateWriter();
    const running = gated(log, 'crl-1');
    const oldBundle = gated(log, 'bundle-old');
    const credentials = gated(log, 'credentials');
    const newBundle = gated(log, 'bundle-new');
    void writer.write('crl', running.task);
    const replaced = writer.write('bundle', oldBundle.task);
    void writer.write('credentials', credentials.task);
    const newest = writer.write('bundle', newBundle.task);
    await replaced; // settles without running
    running.land();
    await tick();
    credentials.land();
    await tick();
    await tick();
    newBundle.land();
    await newest;
    t.same(log, ['start crl-1', 'end crl-1', 'start credentials', 'end credentials', 'start bundle-new', 'end bundle-new']);
    t.notOk(log.includes('start bundle-old'), 'the older bundle was never written');
  },
);

t.test('a write that fails rejects its caller and the next one still runs; a task that throws at once too', async (t) => {
  const log: string[] = [];
  const writer = createStateWriter();
  const failing = gated(log, 'a');
  const first = writer.write('crl', failing.task);
  const thrown = writer.write('bundle', () => {
    throw new Error('EROFS');
  });
  const after = gated(log, 'c');
  const third = writer.write('credentials', after.task);
  failing.fail(new Error('ENOSPC'));
  await t.rejects(first, { message: 'ENOSPC' });
  await t.rejects(thrown, { message: 'EROFS' });
  after.land();
  await third;
  t.same(log, ['start a', 'start c', 'end c']);
});

t.test('settled() waits for what is running and waiting, and is immediate when idle', async (t) => {
  const log: string[] = [];
  const writer = createStateWriter();
  let settled = false;
  await writer.settled();
  const a = gated(log, 'a');
  void writer.write('crl', a.task);
  void writer.settled().then(() => (settled = true));
  await tick();
  t.notOk(settled, 'not while a write runs');
  a.land();
  await writer.settled();
  t.ok(settled);
});

t.test('retry: a failed write is tried again until it lands, unless a newer one of its slot was asked or retries are off', async (t) => {
  const landed: [string, number][] = [];
  let allowed = true;
  const writer = createStateWriter({
    firstDelayMs: 5,
    maxDelayMs: 20,
    mayRetry: () => allowed,
    onLanded: (slot, tries) => landed.push([slot, tries]),
  });
  let failures = 2;
  const tries: string[] = [];
  await t.rejects(
    writer.write('crl', async () => {
      tries.push('crl');
      if (failures-- > 0) throw new Error('ENOSPC');
    }),
    { message: 'ENOSPC' },
    'the caller hears of the first failure',
  );
  for (let i = 0; i < 50 && landed.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  t.same(tries, ['crl', 'crl', 'crl'], 'tried again, twice, until it landed');
  t.same(landed, [['crl', 3]], 'and said so, with its tries');

  const superseded: string[] = [];
  await t.rejects(
    writer.write('bundle', () => {
      superseded.push('old');
      return Promise.reject(new Error('EIO'));
    }),
  );
  await writer.write('bundle', async () => void superseded.push('new'));
  await new Promise((r) => setTimeout(r, 40));
  t.same(superseded, ['old', 'new'], 'a failed write a newer one replaced is not tried again');

  allowed = false;
  const off: string[] = [];
  await t.rejects(
    writer.write('credentials', () => {
      off.push('x');
      return Promise.reject(new Error('EIO'));
    }),
  );
  await new Promise((r) => setTimeout(r, 40));
  t.same(off, ['x'], 'retries off (stopped, lock lost): tried once');
});
