import t from 'tap';
import { clientNetworkOf } from '../../../src/net/client-network.js';

t.test(
  'clientNetworkOf: IPv4 as it is (also embedded in IPv6: mapped, NAT64, SIIT, compatible, Teredo, 6to4), IPv6 by its /64',
  async (t) => {
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
      ['not an address', 'not an address'],
      // IPv4-mapped in every spelling is the dotted client (they were one /64 shared by all such clients).
      ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
      ['::ffff:102:304', '1.2.3.4'],
      ['::ffff:0506:0708', '5.6.7.8'],
      ['0:0:0:0:0:FFFF:0102:0304', '1.2.3.4'],
      // NAT64/SIIT: each IPv4 client behind the translator is its own (they were one /64 shared by all).
      ['64:ff9b::192.0.2.33', '192.0.2.33'],
      ['64:ff9b::c000:221', '192.0.2.33'],
      ['[64:FF9B::6.6.6.6]:443', '6.6.6.6'],
      ['::ffff:0:1.2.3.4', '1.2.3.4'],
      ['0:0:0:0:ffff:0:102:304', '1.2.3.4'],
      ['::1.2.3.4', '1.2.3.4'],
      ['::102:304', '1.2.3.4'],
      ['::2', '0.0.0.2'],
      // Not a translator's /96: by the /64 as before (64:ff9b:1::/48 places its IPv4 by the operator's prefix length).
      ['64:ff9b:0:0:1::1.2.3.4', '64:ff9b:0:0::/64'],
      ['64:ff9b:1::1.2.3.4', '64:ff9b:1:0::/64'],
      ['::fffe:1.2.3.4', '0:0:0:0::/64'],
      // Teredo (2001:0::/32): the client's public IPv4, its bits inverted in the last 32 (RFC 4380 §4's
      // example is 192.0.2.45 behind server 65.54.227.120); all of one server's clients were one /64.
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', '192.0.2.45'],
      ['2001:0000:4136:E378:8000:63BF:3FFF:FDD2', '192.0.2.45'],
      ['[2001::4136:e378:8000:63bf:3fff:fdd2]:443', '192.0.2.45'],
      ['2001:0:4136:e378:8000:63bf:3fff:fd02', '192.0.2.253'],
      ['2001:0:4136:e378::', '255.255.255.255'],
      // Beside it, not Teredo: by the /64.
      ['2001:1:4136:e378:8000:63bf:3fff:fdd2', '2001:1:4136:e378::/64'],
      ['2001:db8:4136:e378:8000:63bf:3fff:fdd2', '2001:db8:4136:e378::/64'],
      // 6to4 (2002::/16): the site's /48 is 2002:<its IPv4>, all 65 536 /64s its host's (red team 28).
      ['2002:c000:22d::1', '192.0.2.45'],
      ['2002:c000:22d:ffff::1', '192.0.2.45'],
      ['2002:C000:022D:1:2:3:4:5', '192.0.2.45'],
      ['[2002:102:304:7::1]:443', '1.2.3.4'],
      // Beside it: by the /64.
      ['2003:c000:22d:1::1', '2003:c000:22d:1::/64'],
      // A port from a trusted proxy's X-Forwarded-For is not part of the client.
      ['1.2.3.4:5678', '1.2.3.4'],
      ['[2001:db8::1]:443', '2001:db8:0:0::/64'],
      ['[2001:db8::1]', '2001:db8:0:0::/64'],
      ['[::ffff:1.2.3.4]:80', '1.2.3.4'],
    ];
    for (const [address, network] of cases) t.equal(clientNetworkOf(address), network, address);
    t.equal(clientNetworkOf('2001:db8:1:2::a'), clientNetworkOf('2001:db8:1:2:dead:beef::1'), 'one /64, one client');
    t.not(clientNetworkOf('2001:db8:1:2::a'), clientNetworkOf('2001:db8:1:3::a'), 'the next /64 is another');
    t.not(clientNetworkOf('64:ff9b::6.6.6.6'), clientNetworkOf('64:ff9b::1.2.3.4'), 'two IPv4 clients behind NAT64 are two');
    t.equal(clientNetworkOf('64:ff9b::1.2.3.4'), clientNetworkOf('1.2.3.4'), 'and each is the IPv4 client it translates');
    t.not(
      clientNetworkOf('2001:0:4136:e378:8000:63bf:3fff:fdd2'),
      clientNetworkOf('2001:0:4136:e378:8000:63bf:3fff:fd02'),
      'two Teredo clients of one server are two',
    );
    t.equal(clientNetworkOf('2001:0:4136:e378:8000:63bf:3fff:fdd2'), clientNetworkOf('192.0.2.45'), 'and each is its IPv4 client');
    t.equal(clientNetworkOf('2002:c000:22d:1::1'), clientNetworkOf('2002:c000:22d:2::1'), 'two /64s of one 6to4 site are one client');
    t.not(clientNetworkOf('2002:c000:22d:1::1'), clientNetworkOf('2002:c000:22e:1::1'), 'two 6to4 sites are two');
  },
);
