import t from 'tap';
import { createCircuitBreaker } from '../../../src/identity/circuit-breaker.js';

function setup(failures = 3, openFor = 10_000) {
  const clock = { ms: 5_000_000 };
  const breaker = createCircuitBreaker({ failures, openFor, now: () => clock.ms });
  return { clock, breaker };
}

t.test('opens after N consecutive failures; a success in between resets the count', async (t) => {
  const { breaker } = setup(3);
  t.equal(breaker.state, 'closed');
  breaker.failure();
  breaker.failure();
  breaker.success();
  breaker.failure();
  breaker.failure();
  t.equal(breaker.state, 'closed', '2 + 2 failures separated by a success do not open it');
  t.equal(breaker.allow(), true);
  breaker.failure();
  t.equal(breaker.state, 'open', 'the third consecutive failure opens it');
});

t.test('refuses every call while open, until openFor has passed', async (t) => {
  const { clock, breaker } = setup(2, 10_000);
  breaker.failure();
  breaker.failure();
  t.equal(breaker.allow(), false);
  clock.ms += 9_999;
  t.equal(breaker.state, 'open');
  t.equal(breaker.allow(), false, 'still refused 1 ms before openFor ends');
  clock.ms += 1;
  t.equal(breaker.state, 'half-open');
});

t.test('half-open lets exactly one trial through', async (t) => {
  const { clock, breaker } = setup(1, 1000);
  breaker.failure();
  clock.ms += 1000;
  t.equal(breaker.allow(), true, 'the trial');
  t.equal(breaker.allow(), false, 'a second call while the trial is out');
  t.equal(breaker.allow(), false);
  t.equal(breaker.state, 'half-open');
});

t.test('a successful trial closes the circuit', async (t) => {
  const { clock, breaker } = setup(2, 1000);
  breaker.failure();
  breaker.failure();
  clock.ms += 1000;
  t.equal(breaker.allow(), true);
  breaker.success();
  t.equal(breaker.state, 'closed');
  t.equal(breaker.allow(), true);
  t.equal(breaker.allow(), true, 'closed: every call goes out');
  breaker.failure();
  t.equal(breaker.state, 'closed', 'the failure count started again from zero');
});

t.test('a failed trial re-opens the circuit for another openFor from the failure', async (t) => {
  const { clock, breaker } = setup(2, 1000);
  breaker.failure();
  breaker.failure();
  clock.ms += 1500;
  t.equal(breaker.allow(), true);
  clock.ms += 200; // the trial takes a while
  breaker.failure();
  t.equal(breaker.state, 'open');
  t.equal(breaker.allow(), false);
  clock.ms += 999;
  t.equal(breaker.allow(), false, 'open for the full openFor after the trial failed');
  clock.ms += 1;
  t.equal(breaker.state, 'half-open');
  t.equal(breaker.allow(), true, 'a new trial after the second openFor');
  t.equal(breaker.allow(), false);
});

t.test('neither (an IdP 429): counts neither way, and ends a half-open trial', async (t) => {
  const { clock, breaker } = setup(3, 10_000);
  for (let i = 0; i < 10; i++) breaker.neither();
  t.equal(breaker.state, 'closed', 'ten 429s in a row do not open it');
  breaker.failure();
  breaker.failure();
  breaker.neither();
  breaker.failure();
  t.equal(breaker.state, 'open', 'nor do they reset the failures around them');
  clock.ms += 10_000;
  t.equal(breaker.allow(), true, 'half-open: one trial');
  t.equal(breaker.allow(), false, 'only one');
  breaker.neither();
  t.equal(breaker.state, 'half-open', 'a trial answered 429 leaves it half-open');
  t.equal(breaker.allow(), true, 'and another trial may go');
});
