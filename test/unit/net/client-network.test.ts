import t from 'tap';
import { clientNetworkOf } from '../../../src/net/client-network.js';

t.test('clientNetworkOf: IPv4 as it is, IPv6 by its /64', async (t) => {
  const cases: [string, string][] = [
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['::FFFF:10.0.0.1', '10.0.0.1'],
    ['2001:db8:1:2::a', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['::', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:db8:1::2:3:4:5', '2001:db8:1:0::/64'],
    ['64:ff9b::192.0.2.33', '64:ff9b:0:0::/64'],
    ['not an address', 'not an address'],
    // IPv4-mapped in every spelling is the dotted client (they were one /64 shared by all such clients).
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:102:304', '1.2.3.4'],
    ['::ffff:0506:0708', '5.6.7.8'],
    ['0:0:0:0:0:FFFF:0102:0304', '1.2.3.4'],
    // A port from a trusted proxy's X-Forwarded-For is not part of the client.
    ['1.2.3.4:5678', '1.2.3.4'],
    ['[2001:db8::1]:443', '2001:db8:0:0::/64'],
    ['[2001:db8::1]', '2001:db8:0:0::/64'],
    ['[::ffff:1.2.3.4]:80', '1.2.3.4'],
  ];
  for (const [address, network] of cases) t.equal(clientNetworkOf(address), network, address);
  t.equal(clientNetworkOf('2001:db8:1:2::a'), clientNetworkOf('2001:db8:1:2:dead:beef::1'), 'one /64, one client');
  t.not(clientNetworkOf('2001:db8:1:2::a'), clientNetworkOf('2001:db8:1:3::a'), 'the next /64 is another');
});
