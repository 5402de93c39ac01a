/**
 * Path parameters named with characters the router ends a name at (`{user-id}`: Microsoft Graph's
 * and many generated documents, `{api.version}`) made the sidecar refuse the whole document at load.
 * They are routed under a router-safe name and validated, inspected and reported under the
 * declared one; names no path segment's parameter can have are still refused.
 */
import t from 'tap';
import { openApiFile } from '../support/openapi-file.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';

const ok = "responses: { '200': { description: ok } }";

const document = () =>
  openApiFile(`openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  /users/{user-id}:
    parameters:
      - { name: user-id, in: path, required: true, schema: { type: string, pattern: '^[a-z0-9]+$', maxLength: 8 } }
    get: { operationId: getUser, ${ok} }
  /v/{api.version}/x:
    get:
      operationId: versioned
      parameters: [{ name: api.version, in: path, required: true, schema: { enum: ['1.0', '2.0'] } }]
      ${ok}
  /t/{a-b}/{a_b}:
    get:
      operationId: both
      parameters:
        - { name: a-b, in: path, required: true, schema: { type: integer } }
        - { name: a_b, in: path, required: true, schema: { type: string, pattern: '^[a-z]+$' } }
      ${ok}
  /notes/{note-id}:
    get: { operationId: note, parameters: [{ name: note-id, in: path, required: true, schema: { type: string } }], ${ok} }
  /memos/{memo-id}:
    get: { operationId: memo, parameters: [{ name: memo-id, in: path, required: true, schema: { type: string } }], ${ok} }
`);

type Problem = { code?: string; detail?: string; errors?: { pointer: string; message: string }[] };

t.test('{user-id}, {api.version}, {a-b} beside {a_b}: routed, validated under the declared name, forwarded', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, { openapi: { document: document(), allow_public: true } });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const get = async (path: string) => {
    const res = await fetchText(`${s.url}${path}`, agent);
    return { status: res.status, ...(res.status === 200 ? {} : res.json<Problem>()) };
  };

  t.equal((await get('/users/abc42')).status, 200, 'a good user-id reaches the backend');
  t.equal(backend.requests.at(-1)?.url, '/users/abc42', 'the path as sent');
  for (const [path, message] of [
    ['/users/ABC', 'must match pattern "^[a-z0-9]+$"'],
    ['/users/abcdefghij', 'must NOT have more than 8 characters'],
  ] as const)
    t.match(
      await get(path),
      { status: 400, code: 'ERR_REQUEST_INVALID', errors: [{ pointer: '/path/user-id', message }] },
      `${path}: refused, naming /path/user-id`,
    );

  t.equal((await get('/v/2.0/x')).status, 200, '{api.version}: a listed value passes');
  t.match(await get('/v/3.0/x'), { status: 400, errors: [{ pointer: '/path/api.version' }] }, '{api.version}: another is refused');

  t.equal((await get('/t/5/q')).status, 200, '{a-b} and {a_b}: each its own value');
  t.match(await get('/t/x/q'), { status: 400, errors: [{ pointer: '/path/a-b', message: 'must be integer' }] });
  t.match(await get('/t/5/Q'), { status: 400, errors: [{ pointer: '/path/a_b', message: /must match pattern/ }] });
  t.match(await get('/t/q/5'), { status: 400, errors: [{ pointer: '/path/a-b' }] }, 'the values are not crossed');

  t.equal(backend.requests.length, 3, 'only the three good requests reached the backend');
  t.same(
    s.events.filter((e) => e.name === 'warden.input.invalid').map((e) => e['warden.rule']),
    Array(6).fill('openapi.path'),
    'each refusal: warden.input.invalid, rule openapi.path',
  );
});

t.test('the waf inspects them as /path_params/<declared name>: an exclusion names the declared name', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url, {
    openapi: { document: document(), allow_public: true },
    threats: {
      waf: {
        budget: '2s',
        exclusions: [
          // The decoded path is excluded too: what is left is the parameter's own entry.
          { route: 'note', parameters: ['/path', '/path_params/note-id'] },
          { route: 'memo', parameters: ['/path', '/path_params/memo_id'] },
        ],
      },
    },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const xss = encodeURIComponent('<img src=x onerror=alert(1)>');
  t.equal((await fetchText(`${s.url}/notes/${xss}`, agent)).status, 200, 'excluded by its declared name: not inspected');
  t.equal((await fetchText(`${s.url}/memos/${xss}`, agent)).status, 403, 'the router-safe name is no parameter: still inspected');
  t.equal((await fetchText(`${s.url}/notes/plain`, agent)).status, 200);
});

t.test('names no path segment can carry still stop the sidecar, naming the parameter', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  for (const [template, message] of [
    ['/a/{}', /path parameter "\{\}" has no name/],
    ['/a/{user id}', /path parameter "\{user id\}": a name cannot hold white space or a control character/],
    ['/a/{a/b}', /path parameter "\{a\/b\}": a name cannot hold "\/"/],
    ['/a/{a{b}', /a "\{" that opens no parameter/],
  ] as const) {
    const doc = openApiFile(`openapi: 3.1.0
info: { title: t, version: '1' }
paths:
  ${JSON.stringify(template)}: { get: { ${ok} } }
`);
    await t.rejects(startTestSidecar(t, backend.url, { openapi: { document: doc, allow_public: true } }), { message }, template);
  }
});
