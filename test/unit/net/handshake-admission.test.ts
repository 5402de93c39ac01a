/** The token buckets of failed handshakes per client network, on a clock the test moves. */
import t from 'tap';
import { createHandshakeAdmission, UNTRACKED_IN_PROGRESS, type ThrottledPeriod } from '../../../src/net/handshake-admission.js';

function setup(burst: number, perMs: number, maxNetworks?: number) {
  let clock = 1_000_000;
  const reports: ThrottledPeriod[] = [];
  const admission = createHandshakeAdmission({
    burst,
    perMs,
    ...(maxNetworks === undefined ? {} : { maxNetworks }),
    onThrottled: (r) => reports.push(r),
    now: () => clock,
  });
  t.teardown(() => admission.close());
  return { admission, reports, advance: (ms: number) => (clock += ms) };
}

t.test('burst failures, then refused until a token is back; one report per throttled period', async (t) => {
  const { admission, reports, advance } = setup(3, 1000);
  t.equal(admission.size, 0, 'nothing tracked before a failure');
  for (let i = 0; i < 3; i++) {
    t.ok(admission.admit('10.0.0.1'), `connection ${i + 1} admitted`);
    admission.failed('10.0.0.1');
    admission.ended('10.0.0.1');
  }
  let refused = 0;
  for (let i = 0; i < 5; i++) if (!admission.admit('10.0.0.1')) refused++;
  t.equal(refused, 5, 'after burst failures every new connection is refused');
  t.ok(admission.admit('10.0.0.2'), 'another network is not');
  t.equal(reports.length, 0, 'no report while the period lasts');
  advance(999);
  t.notOk(admission.admit('10.0.0.1'), 'still refused just before the token is back');
  advance(1);
  t.ok(admission.admit('10.0.0.1'), 'admitted once a token is back');
  t.same(reports, [{ network: '10.0.0.1', refused: 6, durationMs: 1000 }], 'the period is reported once, with its count');
  admission.failed('10.0.0.1');
  admission.ended('10.0.0.1');
  t.notOk(admission.admit('10.0.0.1'), 'one failure later it is refused again');
  advance(1000);
  t.ok(admission.admit('10.0.0.1'));
  t.equal(reports.length, 2, 'a second period, a second report');
});

t.test('handshakes in progress hold a token each: a wave opened together gets no more than the burst (adversarial.md 232)', async (t) => {
  const { admission, reports, advance } = setup(4, 1000);
  // A network that has not failed lately may open up to UNTRACKED_IN_PROGRESS handshakes at once.
  for (let i = 0; i < UNTRACKED_IN_PROGRESS; i++) t.ok(admission.admit('10.0.0.5'), `untracked ${i + 1}`);
  t.notOk(admission.admit('10.0.0.5'), 'one more at once: refused');
  // One failure tracks the network: its handshakes in progress then hold a token each.
  t.ok(admission.admit('10.0.0.1'));
  admission.failed('10.0.0.1');
  admission.ended('10.0.0.1');
  for (let i = 0; i < 3; i++) t.ok(admission.admit('10.0.0.1'), `connection ${i + 1} of the wave admitted`);
  t.notOk(admission.admit('10.0.0.1'), 'a 4th while 3 are in their handshakes: refused, before any has failed');
  t.ok(admission.admit('10.0.0.2'), 'another network is not');
  admission.ended('10.0.0.1'); // one handshake done: it cost no token
  t.ok(admission.admit('10.0.0.1'), 'a handshake ended well gives its place back');
  for (let i = 0; i < 3; i++) {
    admission.failed('10.0.0.1');
    admission.ended('10.0.0.1');
  }
  t.notOk(admission.admit('10.0.0.1'), 'the wave failed: refused');
  advance(1000);
  t.ok(admission.admit('10.0.0.1'), 'a token back');
  t.same(
    reports.map((r) => r.refused),
    [1, 1],
    "two throttled periods, each reported once: the wave's 4th connection, then the one after its failures",
  );
  for (let i = 0; i < 100; i++) {
    t.ok(admission.admit('10.0.0.9'), `good handshake ${i + 1}`);
    admission.ended('10.0.0.9');
  }
});

t.test('an IPv6 /64 is one network; IPv4-mapped is its IPv4 address', async (t) => {
  const { admission } = setup(2, 1000);
  admission.failed('2001:db8:1:2::1');
  admission.failed('2001:db8:1:2:ffff::9');
  t.notOk(admission.admit('2001:db8:1:2::abcd'), 'another address of the /64 is refused');
  t.ok(admission.admit('2001:db8:1:3::1'), 'the next /64 is not');
  admission.failed('::ffff:192.0.2.7');
  admission.failed('192.0.2.7');
  t.notOk(admission.admit('192.0.2.7'));
});

t.test('failures of connections admitted together go into debt', async (t) => {
  const { admission, advance } = setup(2, 1000);
  for (let i = 0; i < 5; i++) admission.failed('10.0.0.1');
  advance(3999);
  t.notOk(admission.admit('10.0.0.1'), 'five failures on a burst of two: refused for three periods more');
  advance(1);
  t.ok(admission.admit('10.0.0.1'));
});

t.test('burst 0 is off; a full bucket is forgotten', async (t) => {
  const off = setup(0, 1000);
  for (let i = 0; i < 10; i++) off.admission.failed('10.0.0.1');
  t.equal(off.admission.size, 0, 'off: nothing tracked');
  t.ok(off.admission.admit('10.0.0.1'));

  const { admission, advance } = setup(3, 1000);
  admission.failed('10.0.0.1');
  t.equal(admission.size, 1);
  advance(1000);
  t.ok(admission.admit('10.0.0.1'));
  t.equal(admission.size, 0, 'the entry is dropped once its bucket is full again');
});

t.test('at most maxNetworks tracked: the fullest of the oldest goes first', async (t) => {
  const { admission, reports } = setup(2, 60_000, 4);
  admission.failed('10.0.0.1');
  admission.failed('10.0.0.1');
  t.notOk(admission.admit('10.0.0.1'), '10.0.0.1 throttled');
  for (const n of [2, 3, 4]) admission.failed(`10.0.0.${n}`);
  t.equal(admission.size, 4);
  admission.failed('10.0.0.5');
  t.equal(admission.size, 4, 'still four');
  t.notOk(admission.admit('10.0.0.1'), 'the empty bucket was kept');
  t.ok(admission.admit('10.0.0.2'), '10.0.0.2 was dropped (or was never refusing)');
  for (let n = 6; n < 100; n++) admission.failed(`10.0.0.${n}`);
  t.equal(admission.size, 4, 'bounded under many networks');
  admission.close();
  t.equal(admission.size, 0, 'close forgets everything');
  t.ok(
    reports.some((r) => r.network === '10.0.0.1'),
    'an open period is reported when its entry goes (evicted or closed)',
  );
});
