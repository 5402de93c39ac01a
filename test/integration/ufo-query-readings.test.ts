/**
 * Query pairs that start with `=`, as ufo reads them (red team 28, F1): h3 1.x's `getQuery` — the
 * server layer of Nitro 2, Nuxt 3, Vinxi and SolidStart — is ufo's `parseQuery`, which splits each
 * pair with the unanchored `/([^=]+)=?(.*)/` and so skips its leading `=` signs. `?=limit=1000` was
 * `{limit: '1000'}` to h3 and an empty name holding `limit=1000` here (URLSearchParams), an unknown
 * key let through under `unknown_query: allow`: past `maximum: 100`, past an enum, past the
 * duplicate check (`?limit=5&=limit=1000`), and `?=_method=DELETE` past the override check.
 *
 * `ufoParseQuery` below replays ufo 1.6.4's `parseQuery` (dist/index.mjs: split at `&`, that regular
 * expression, `+` a space, decodeURIComponent kept as sent when it throws, `__proto__` and
 * `constructor` dropped) so the table is anchored in the reader's rule: each hostile query is one
 * ufo reads a declared name from, each ordinary one reaches the backend.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

/** ufo 1.6.4's parseQuery, names only (and how many pairs each name has). */
function ufoParseQuery(search: string): Map<string, number> {
  const names = new Map<string, number>();
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      return text.replace(/\+/g, ' ');
    }
  };
  for (const parameter of (search.startsWith('?') ? search.slice(1) : search).split('&')) {
    const s = /([^=]+)=?(.*)/.exec(parameter);
    if (!s) continue;
    const key = decode(s[1] as string);
    if (key === '__proto__' || key === 'constructor') continue;
    names.set(key, (names.get(key) ?? 0) + 1);
  }
  return names;
}

const pairsNamed = (names: Map<string, number>, name: string) => names.get(name) ?? 0;

const DOCUMENT = `
openapi: 3.0.3
info: { title: t, version: '1' }
security: []
paths:
  /v1/items:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
        - { name: sort, in: query, schema: { type: string, enum: [asc, desc] } }
        - name: filter
          in: query
          style: deepObject
          explode: true
          schema: { type: object, properties: { color: { type: string, enum: [red, black] } } }
      responses: { '200': { description: ok } }
`;

/** Queries ufo reads a declared parameter from, where URLSearchParams reads an empty name: [query, the name ufo reads]. */
const HOSTILE: [string, string][] = [
  ['?=limit=1000', 'limit'],
  ['?==limit=1000', 'limit'],
  ['?=%6Cimit=1000', 'limit'],
  ['?=limit', 'limit'],
  ['?=sort=zzz', 'sort'],
  ['?=filter[color]=green', 'filter[color]'],
  ['?limit=5&=limit=1000', 'limit'],
  ['?sort=asc&=+=x&===limit=1000', 'limit'],
];

t.test('a pair starting with "=" is read as ufo (h3 1.x, Nitro 2, Nuxt 3) reads it', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const validated = await startTestSidecar(t, backend.url, {
    openapi: { document: openApiFile(DOCUMENT), allow_public: true, validation: { mode: 'enforce', unknown_query: 'allow' } },
  });
  const routed = await startTestSidecar(t, backend.url, { routes: [{ id: 'items', path: '/v1/items', methods: ['GET', 'POST'] }] });
  const agents = new Map([validated, routed].map((s) => [s, testAgent(s.ca)]));
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const get = (s: typeof validated, path: string) => fetchText(`${s.url}${path}`, agents.get(s) as ReturnType<typeof testAgent>);

  await t.test('a declared parameter so read is refused', async (t) => {
    const before = backend.requests.length;
    for (const [search, name] of HOSTILE) {
      t.ok(
        pairsNamed(ufoParseQuery(search), name) > new URLSearchParams(search).getAll(name).length,
        `${search}: ufo reads ${name} more often`,
      );
      const r = await get(validated, `/v1/items${search}`);
      t.equal(r.status, 400, `${search}: 400`);
      t.match(r.json(), { code: 'ERR_REQUEST_INVALID', detail: /by ufo/ }, search);
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
  });

  await t.test('a _method so read is an override, on every route', async (t) => {
    const before = backend.requests.length;
    for (const search of ['?=_method=DELETE', '?==%5Fmethod=DELETE', '?x=1&=_method', '?=X-HTTP-Method-Override=DELETE']) {
      t.ok(
        [...ufoParseQuery(search).keys()].some((k) => /^(_method|x-http-method-override)$/i.test(k)),
        `${search}: ufo reads an override name`,
      );
      for (const s of [validated, routed]) {
        const r = await get(s, `/v1/items${search}`);
        t.match(r.json(), { code: 'ERR_REQUEST_OVERRIDE' }, `${search}: ERR_REQUEST_OVERRIDE`);
      }
    }
    t.equal(backend.requests.length, before, 'the backend saw none of them');
  });

  await t.test('ordinary queries, and "=" pairs naming nothing declared, pass', async (t) => {
    const before = backend.requests.length;
    const passing = [
      '?limit=5&sort=asc',
      '?=',
      '?==',
      '?=&limit=5',
      '?q=a=b',
      '?x==limit=1000',
      '?=x=1',
      '?=%25limit=1',
      '?filter[color]=red',
    ];
    for (const search of passing) {
      for (const name of ['limit', 'sort', 'filter[color]'])
        t.equal(pairsNamed(ufoParseQuery(search), name), new URLSearchParams(search).getAll(name).length, `${search}: ${name} read alike`);
      const r = await get(validated, `/v1/items${search}`);
      t.equal(r.status, 200, `${search}: 200`);
    }
    t.equal(backend.requests.length, before + passing.length, 'each reached the backend');
  });
});
