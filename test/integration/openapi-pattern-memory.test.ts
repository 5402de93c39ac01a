/**
 * Red team 25 F1 against a real sidecar, scaled down: JSON bodies with one string of a few MB on
 * an operation whose pattern runs on RE2 and has no maxLength. Before, each aborted RE2's fixed
 * 16 MiB memory (500) and leaked; after ~80, every RE2 pattern of the process answered 500 on
 * values of 1 KB, and /readyz still said ready. Now each is refused 400 at its pointer, naming the
 * limit, and another operation's pattern keeps its verdicts.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { readyzOf, startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /notes:
    post:
      requestBody:
        content:
          application/json:
            schema: { type: object, properties: { tag: { type: string, pattern: '^([a-z0-9]+-?)*$' } } }
      responses: { '200': { description: ok } }
  /ping:
    get:
      parameters:
        - { name: q, in: query, schema: { type: string, pattern: '^(?:[a-z]+\\s?)*$' } }
      responses: { '200': { description: ok } }
`;

t.test('large strings on one RE2 pattern: 400 at the pointer, and the other patterns keep answering', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const post = (tag: string) =>
    fetchText(`${s.url}/notes`, agent, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag }) });
  const statuses: number[] = [];
  for (const n of [4_000_000, 2_000_000, 1_000_000]) for (let i = 0; i < 3; i++) statuses.push((await post('a'.repeat(n))).status);
  t.same(statuses, Array(9).fill(400), 'every large string refused 400, none 500');
  const refused = (await post('a'.repeat(2_000_000))).json<{ errors: { pointer: string; message: string }[] }>();
  t.same(refused.errors, [{ pointer: '/body/tag', message: 'is longer than 524288 characters, the most a pattern is tested on' }]);
  t.equal((await post('a-b'.repeat(30_000))).status, 200, 'a 90 KB slug still passes');
  t.equal((await fetchText(`${s.url}/ping?q=${'ab%20'.repeat(2000)}`, agent)).status, 200, "another operation's pattern on 6 KB: 200");
  t.equal((await fetchText(`${s.url}/ping?q=${'ab1'.repeat(2000)}`, agent)).status, 400, 'and its refusal: 400');
  const ready = await readyzOf(s.adminUrl);
  t.equal(ready.status, 200);
  t.notMatch(ready.body, /pattern_engine/, 'the engine check is listed only once it has failed');
});
