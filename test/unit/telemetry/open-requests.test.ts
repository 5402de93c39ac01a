// The registry of requests in flight that security events use to find their request's span
// (src/telemetry/open-requests.ts): Map semantics by request id, over a slot array that is reused.
import t from 'tap';
import { OpenRequests } from '../../../src/telemetry/open-requests.js';

t.test('set, get and delete by request id', async (t) => {
  const open = new OpenRequests<{ n: number }>(4);
  const a = { n: 1 };
  open.set('a', a);
  open.set('b', { n: 2 });
  t.equal(open.get('a'), a);
  t.equal(open.size, 2);
  open.delete('a');
  t.equal(open.get('a'), undefined, 'gone once its request ends');
  t.equal(open.get('b')?.n, 2, 'the others stay');
  open.delete('a');
  t.equal(open.size, 1, 'deleting twice is harmless');
  t.equal(open.get('nope'), undefined);
});

t.test('an id sent twice at once replaces the first, as a Map would, without losing a slot', async (t) => {
  const open = new OpenRequests<string>(2);
  open.set('dup', 'first');
  open.set('dup', 'second');
  t.equal(open.get('dup'), 'second');
  t.equal(open.size, 1);
  open.delete('dup');
  open.set('x', 'x');
  open.set('y', 'y');
  t.equal(open.get('x'), 'x');
  t.equal(open.get('y'), 'y');
  t.equal(open.slotCount, 2, 'both slots were free again: the duplicate did not keep one');
  for (let i = 0; i < 10_000; i++) {
    open.set(`d${i}`, 'first');
    open.set(`d${i}`, 'second');
    open.delete(`d${i}`);
  }
  t.equal(open.slotCount, 4, 'ten thousand duplicated requests later, no slot has leaked (one in flight beside x and y)');
});

t.test('more requests in flight than slots: it grows and keeps every record', async (t) => {
  const open = new OpenRequests<number>(4);
  for (let i = 0; i < 1000; i++) open.set(`r${i}`, i);
  t.equal(open.size, 1000);
  let right = 0;
  for (let i = 0; i < 1000; i++) if (open.get(`r${i}`) === i) right++;
  t.equal(right, 1000, 'every record found after growing');
  for (let i = 0; i < 1000; i += 2) open.delete(`r${i}`);
  for (let i = 0; i < 500; i++) open.set(`s${i}`, -i);
  t.equal(open.size, 1000, 'freed slots are reused');
  t.equal(open.slotCount, 1024, 'grown by doubling to hold the most in flight, and no further');
  t.equal(open.get('r1'), 1);
  t.equal(open.get('s499'), -499);
  t.equal(open.get('r0'), undefined);
});
