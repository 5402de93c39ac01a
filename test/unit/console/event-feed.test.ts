/**
 * The console event feed's places: 16 in all, 4 per client network, and all of loopback is one
 * network (a local user could bind 127.0.0.2..5 and hold every place). Off loopback the listener
 * takes any address; this checks the counting with stand-in requests from such addresses.
 */
import t, { type Test } from 'tap';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createEventFeed } from '../../../src/console/event-feed.js';
import { createEventBus, type EventAttributes, type EventName } from '../../../src/telemetry/events.js';

function setUp(t: Test) {
  const raised: (EventAttributes & { name: EventName })[] = [];
  const feed = createEventFeed(createEventBus([(name, _severity, attributes) => raised.push({ name, ...attributes })]));
  t.teardown(() => feed.close());
  /** A GET /console/events from `address`: the status it was answered. */
  const open = (address: string): number => {
    const req = { socket: { remoteAddress: address }, method: 'GET', on: () => req } as unknown as IncomingMessage;
    let status = 0;
    const res = {
      req,
      writableLength: 0,
      writeHead: (s: number) => void (status = s),
      write: () => true,
      end: () => undefined,
      destroy: () => undefined,
    } as unknown as ServerResponse;
    feed.serve(req, res);
    return status;
  };
  return { open, raised };
}

t.test('all of loopback is one network: 4 places, whichever loopback address', async (t) => {
  const { open, raised } = setUp(t);
  t.same(
    ['127.0.0.2', '127.0.0.3', '::1', '::ffff:127.0.0.4'].map(open),
    [200, 200, 200, 200],
    'four from loopback, each from an address of its own',
  );
  t.equal(open('127.0.0.5'), 503, 'a fifth from yet another loopback address: 503');
  t.equal(open('10.0.0.1'), 200, 'another network still has its places');
  t.match(raised, [
    { name: 'warden.traffic.shed', 'client.address': '127.0.0.5', 'warden.rule': 'console.clients', 'warden.code': 'ERR_OVERLOADED' },
  ]);
  t.equal(raised.length, 1, 'one event per refusal');
});

t.test('16 in all: four networks of four, then the 17th is refused with its event', async (t) => {
  const { open, raised } = setUp(t);
  for (let n = 1; n <= 4; n++) for (let i = 0; i < 4; i++) t.equal(open(`10.0.${n}.${i + 1}`), 200);
  t.equal(open('10.0.1.9'), 503, 'a fifth from 10.0.1.9: its own network is not full, but all 16 are taken');
  t.equal(open('2001:db8::1'), 503, 'and from an IPv6 client');
  t.match(raised, [{ 'warden.detail': /At most 16 console clients at once/ }, { 'client.address': '2001:db8::1' }]);
});
