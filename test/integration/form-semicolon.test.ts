/**
 * An unencoded ";" in a form body: python-multipart's QuerystringParser (Starlette's
 * `request.form()`, so every FastAPI `Form()` parameter) splits fields at it as at "&", so
 * `name=eve;role=admin` is one field `name` to URLSearchParams, which every stage here reads forms
 * with, and `role=admin` to FastAPI. Run by hand against FastAPI 0.92 / Starlette 0.26 /
 * python-multipart 0.0.5 (Debian's; not test prerequisites) behind a sidecar: each shape below
 * reached its handler past the enum, the waf, the malware scan of form values or the `_method`
 * check (docs/adversarial.md 423). Replayed here against the test backend, over h1 and h2.
 */
import t from 'tap';
import type { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { EICAR, startTestClamd } from '../support/clamd.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /users:
    put:
      operationId: replaceUser
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                name: { type: string }
                role: { type: string, enum: [user] }
      responses: { '200': { description: ok } }
`;

t.test('a ";" in a form body is refused by every stage that reads the form', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  // Validation alone; the waf alone; the malware scan alone; the _method check of every POST runs on each.
  const validating = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  const inspecting = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'search', path: '/search', methods: ['PUT', 'POST'] }],
  });
  const scanning = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '10s' } },
    routes: [{ id: 'upload', path: '/upload', methods: ['PUT'], malware_scan: true }],
  });
  const sidecars = { '/users': validating, '/search': inspecting, '/upload': scanning } as const;
  const agents = new Map<string, Agent>();
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const send = (method: string, path: keyof typeof sidecars, body: string, h2: boolean) => {
    const s = sidecars[path];
    const key = `${path} ${h2}`;
    if (!agents.has(key)) agents.set(key, testAgent(s.ca, { h2 }));
    return fetchText(`${s.url}${path}`, agents.get(key) as Agent, {
      method,
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  };
  const rule = (path: keyof typeof sidecars) => sidecars[path].events.at(-1)?.['warden.rule'];

  const before = backend.requests.length;
  for (const [method, path, body, fastapi] of [
    ['PUT', '/users', 'name=eve;role=admin', 'role=admin, past the enum (validation)'],
    ['PUT', '/users', 'name=eve&role=user&x=1;role=admin', 'role=admin, the last one (validation)'],
    ['PUT', '/search', 'x=hello;q=1 AND 1=1', 'q=1 AND 1=1, which the waf refuses on its own'],
    ['PUT', '/upload', `x=1;q=${encodeURIComponent(EICAR.toString('latin1'))}`, 'q=EICAR (the scan of form values)'],
    ['POST', '/search', 'q=hi;_method=DELETE', '_method=DELETE (the _method check)'],
  ] as const) {
    for (const h2 of [false, true]) {
      const r = await send(method, path, body, h2);
      t.equal(r.status, 400, `${method} ${path} ${body.slice(0, 40)} (FastAPI: ${fastapi}; ${h2 ? 'h2' : 'h1'}): 400`);
      t.equal(r.json().code, 'ERR_REQUEST_INVALID');
      t.equal(rule(path), 'form.semicolon', `${body.slice(0, 40)}: rule form.semicolon`);
    }
  }
  t.equal(backend.requests.length, before, 'the backend saw none of them');
  // Controls: ";" sent as browsers, requests and httpx send it passes; the stages still read the form.
  for (const [method, path, body] of [
    ['PUT', '/users', 'name=a%3Bb&role=user'],
    ['PUT', '/search', 'q=a%3Bb'],
    ['PUT', '/upload', 'q=a%3Bb'],
    ['POST', '/search', 'q=a%3Bb'],
  ] as const) {
    t.equal((await send(method, path, body, false)).status, 200, `${method} ${path} ${body}: 200`);
  }
  t.equal((await send('PUT', '/users', 'name=eve&role=admin', false)).status, 400, 'the enum still holds');
});

t.test('the malware scan in detect mode reports a ";" in a form body and forwards it, as it reports malware', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const s = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '10s', mode: 'detect' } },
    routes: [{ id: 'upload', path: '/upload', methods: ['PUT'], malware_scan: true }],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const r = await fetchText(`${s.url}/upload`, agent, {
    method: 'PUT',
    body: 'x=1;q=2',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(r.status, 200, 'forwarded');
  const event = s.events.find((e) => e['warden.rule'] === 'form.semicolon');
  t.equal(event?.['warden.action'], 'detect', 'reported, action detect');
});
