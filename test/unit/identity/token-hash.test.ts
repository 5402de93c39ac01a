import t from 'tap';
import { ConnectionTokenHashes, tokenHash } from '../../../src/identity/token-hash.js';

t.test('a connection remembers the hash of its last token, for that token and scope only', async (t) => {
  const hashes = new ConnectionTokenHashes();
  const conn = {};
  const other = {};
  const a = tokenHash('https://idp.example', 'token-a');
  t.equal(hashes.get(conn, 'demo', 'token-a'), undefined, 'nothing before the first request');
  hashes.set(conn, 'demo', 'token-a', a);
  t.equal(hashes.get(conn, 'demo', 'token-a'), a, 'the same token again on the same connection');
  // Made at run time (a literal would be the same interned string): each request parses its own headers.
  const anew = ['token', 'a'].join('-');
  t.equal(hashes.get(conn, 'demo', anew), a, 'an equal string made anew');
  t.equal(hashes.get(conn, 'demo', 'token-b'), undefined, 'another token');
  t.equal(hashes.get(conn, 'demo', 'token-a '), undefined, 'a token differing in one character');
  t.equal(hashes.get(conn, 'partner', 'token-a'), undefined, 'the same token checked for another issuer');
  t.equal(hashes.get(other, 'demo', 'token-a'), undefined, 'another connection');
  t.equal(hashes.get(undefined, 'demo', 'token-a'), undefined, 'no connection: nothing remembered');

  const b = tokenHash('https://idp.example', 'token-b');
  hashes.set(conn, 'demo', 'token-b', b);
  t.equal(hashes.get(conn, 'demo', 'token-b'), b, 'the last token replaces the one before');
  t.equal(hashes.get(conn, 'demo', 'token-a'), undefined, 'one token per connection');
  hashes.set(undefined, 'demo', 'token-a', a);
  t.equal(hashes.get(undefined, 'demo', 'token-a'), undefined, 'set without a connection keeps nothing');
});
