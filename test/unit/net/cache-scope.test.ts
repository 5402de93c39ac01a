/** net/cache-scope.ts: which Cache-Control values already decide shared storage, and Vary on the minted header. */
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { createCacheScope, decidesSharedStorage } from '../../../src/net/cache-scope.js';

t.test('directives that decide shared storage, and lookalikes that do not', async (t) => {
  for (const v of [
    'private',
    'no-store',
    'public',
    's-maxage=0',
    'max-age=1, Private',
    ' ,NO-STORE ,',
    'a="\\"", public',
    'private =x, public',
  ])
    t.ok(decidesSharedStorage(v), `${v} decides`);
  for (const v of [
    '',
    'max-age=60',
    'must-revalidate',
    'no-cache',
    'private="set-cookie"',
    'private = "x"',
    'no-cache="private, no-store"',
    'x="\\", public',
    'publicx',
    'no-stor',
    'x=public',
  ])
    t.notOk(decidesSharedStorage(v), `${JSON.stringify(v)} does not`);
});

t.test('mark: Cache-Control', async (t) => {
  const scope = createCacheScope({});
  const marked = (cc: string | string[] | undefined) => {
    const h = (cc === undefined ? {} : { 'cache-control': cc }) as IncomingHttpHeaders;
    scope.mark(h);
    return h['cache-control'];
  };
  t.equal(marked(undefined), 'private');
  t.equal(marked(' '), 'private', 'an empty value is replaced');
  t.equal(marked('max-age=60'), 'max-age=60, private');
  t.equal(marked(['max-age=60', 'must-revalidate']), 'max-age=60, must-revalidate, private', 'repeated fields read as one list');
  t.same(marked(['max-age=60', 'public']), ['max-age=60', 'public'], 'public in a second field line kept as sent');
});

t.test('mark: Vary naming the minted header gains the token headers', async (t) => {
  const scope = createCacheScope({ mintHeader: 'authorization', tokenHeaders: ['authorization', 'x-api-token', 'cookie'] });
  const vary = (v: string | string[] | undefined) => {
    const h = { 'cache-control': 'public', ...(v === undefined ? {} : { vary: v }) } as IncomingHttpHeaders;
    scope.mark(h);
    return h.vary;
  };
  t.equal(vary('Authorization'), 'Authorization, x-api-token, cookie');
  t.equal(vary('accept ,AUTHORIZATION , Cookie'), 'accept ,AUTHORIZATION , Cookie, x-api-token', 'listed ones not added again');
  t.equal(vary(['Accept', 'Authorization']), 'Accept, Authorization, x-api-token, cookie', 'repeated fields read as one list');
  t.equal(vary('Accept, X-Authorization'), 'Accept, X-Authorization', 'without the minted header: unchanged');
  t.equal(vary('*, Authorization'), '*, Authorization', '* varies on everything already');
  t.equal(vary(undefined), undefined, 'no Vary: none added');
  const sameHeader = createCacheScope({ mintHeader: 'authorization', tokenHeaders: ['authorization'] });
  const h: IncomingHttpHeaders = { vary: 'Authorization' };
  sameHeader.mark(h);
  t.equal(h.vary, 'Authorization', 'the token comes in the minted header itself: the front sees it');
  const noMint = createCacheScope({ tokenHeaders: ['x-api-token'] });
  const h2: IncomingHttpHeaders = { vary: 'Authorization' };
  noMint.mark(h2);
  t.equal(h2.vary, 'Authorization', 'no minting: Authorization is what the caller sent');
});
