// The registry of requests in flight that security events use to find their request's span
// (src/telemetry/open-requests.ts): records added and removed by the request that holds them,
// found by request id, over a slot array that is reused.
import t from 'tap';
import { OpenRequests, type OpenRecord } from '../../../src/telemetry/open-requests.js';

type Rec = OpenRecord & { n: number };
const rec = (requestId: string, n = 0): Rec => ({ requestId, slot: -1, n });

t.test('add, find by request id, remove', async (t) => {
  const open = new OpenRequests<Rec>(4);
  const a = rec('a', 1);
  open.add(a);
  open.add(rec('b', 2));
  t.equal(open.find('a'), a);
  t.equal(open.size, 2);
  open.remove(a);
  t.equal(open.find('a'), undefined, 'gone once its request ends');
  t.equal(open.find('b')?.n, 2, 'the others stay');
  open.remove(a);
  t.equal(open.size, 1, 'removing twice is harmless');
  t.equal(open.find('nope'), undefined);
});

t.test('a record removed twice does not free the slot of the request that took it over', async (t) => {
  const open = new OpenRequests<Rec>(1);
  const first = rec('first');
  open.add(first);
  open.remove(first);
  const second = rec('second');
  open.add(second);
  t.equal(second.slot, first.slot, 'the slot was reused');
  open.remove(first);
  t.equal(open.find('second'), second, 'still registered');
  t.equal(open.size, 1);
});

t.test('an id sent twice at once: both requests are registered, an event finds one of them', async (t) => {
  const open = new OpenRequests<Rec>(2);
  const one = rec('dup', 1);
  const two = rec('dup', 2);
  open.add(one);
  open.add(two);
  t.equal(open.size, 2);
  t.ok([one, two].includes(open.find('dup') as Rec));
  open.remove(one);
  t.equal(open.find('dup'), two, 'the one still in flight');
  open.remove(two);
  for (let i = 0; i < 10_000; i++) {
    const a = rec(`d${i}`);
    const b = rec(`d${i}`);
    open.add(a);
    open.add(b);
    open.remove(a);
    open.remove(b);
  }
  t.equal(open.slotCount, 2, 'ten thousand duplicated requests later, no slot has leaked');
  t.equal(open.size, 0);
});

t.test('more requests in flight than slots: it grows and keeps every record', async (t) => {
  const open = new OpenRequests<Rec>(4);
  const records = Array.from({ length: 1000 }, (_, i) => rec(`r${i}`, i));
  for (const r of records) open.add(r);
  t.equal(open.size, 1000);
  let right = 0;
  for (let i = 0; i < 1000; i++) if (open.find(`r${i}`)?.n === i) right++;
  t.equal(right, 1000, 'every record found after growing');
  for (let i = 0; i < 1000; i += 2) open.remove(records[i] as Rec);
  for (let i = 0; i < 500; i++) open.add(rec(`s${i}`, -i));
  t.equal(open.size, 1000, 'freed slots are reused');
  t.equal(open.slotCount, 1024, 'grown by doubling to hold the most in flight, and no further');
  t.equal(open.find('r1')?.n, 1);
  t.equal(open.find('s499')?.n, -499);
  t.equal(open.find('r0'), undefined);
});
