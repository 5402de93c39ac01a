/**
 * ufoQueryNames against a replay of ufo 1.6.4's parseQuery (h3 1.x's getQuery; red team 28, F1):
 * each `&`-separated pair split with `/([^=]+)=?(.*)/`, the name with `+` a space and
 * decodeURIComponent (kept as sent when it throws), `__proto__` and `constructor` dropped. Only the
 * pairs that start with `=` are ufoQueryNames's: every other one ufo names as URLSearchParams does.
 */
import t from 'tap';
import { ufoQueryNames } from '../../../src/net/ufo-query-names.js';

function ufoNamesOfEqualsPairs(query: string): string[] {
  const names: string[] = [];
  for (const parameter of query.split('&')) {
    if (!parameter.startsWith('=')) continue;
    const s = /([^=]+)=?(.*)/.exec(parameter);
    if (!s) continue;
    const text = (s[1] as string).replace(/\+/g, ' ');
    let key: string;
    try {
      key = decodeURIComponent(text);
    } catch {
      key = text;
    }
    if (key !== '__proto__' && key !== 'constructor') names.push(key);
  }
  return names;
}

t.test('the names ufo reads from pairs starting with "="', async (t) => {
  const table: [string, string[]][] = [
    ['=limit=1000', ['limit']],
    ['==limit=1000', ['limit']],
    ['=%6Cimit=1000', ['limit']],
    ['=limit', ['limit']],
    ['limit=5&=limit=1000', ['limit']],
    ['=a+b=1&=%41%FF=2', ['a b', '%41%FF']],
    ['=&==&&=__proto__=1&=constructor', []],
    ['limit=5&q=a=b&x==limit', []],
    ['', []],
  ];
  for (const [query, names] of table) {
    t.same(ufoQueryNames(query), names, JSON.stringify(query));
    t.same(ufoNamesOfEqualsPairs(query), names, `${JSON.stringify(query)}: the replay agrees`);
  }
});

t.test('agrees with the replay on generated queries', async (t) => {
  const alphabet = ['=', '=', '&', 'l', 'i', '+', '%', '6C', '%4', 'G', '_'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  let differ = 0;
  for (let n = 0; n < 20000; n++) {
    let q = '';
    const length = next() % 16;
    for (let i = 0; i < length; i++) q += alphabet[next() % alphabet.length];
    if (JSON.stringify(ufoQueryNames(q)) !== JSON.stringify(ufoNamesOfEqualsPairs(q))) {
      if (differ++ < 5) t.fail(`differs on ${JSON.stringify(q)}`);
    }
  }
  t.equal(differ, 0, 'no generated query read otherwise');
});
