/**
 * Review rt26 F3 through a sidecar: one form body whose only key is 9 MiB of `.a` (or `%20a`, `.]`,
 * `a.`) held the event loop 1.5–7.6 s on an OpenAPI form route with a dotted declared name and on a
 * waf-only route (name readings rewrote the whole key). The longest event-loop stall while the
 * sidecar reads such a body must stay well under that (the body's own parse, ~0.3–0.5 s for 9 MiB,
 * remains).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar } from '../support/sidecar.js';

const DOCUMENT = `
openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /form:
    post:
      parameters:
        - { name: page.size, in: query, schema: { type: integer, maximum: 100 } }
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                role: { type: string, enum: [user] }
                page.size: { type: string }
      responses: { '200': { description: ok } }
`;

const SIZE = 9 << 20;
/**
 * Before the fix, here: 4.4–5.0 s for `.a`, `.]`, `a.` and 1.5 s for `%20a` on the OpenAPI route,
 * 0.5–1.05 s on the waf-only one; after, 30–250 ms. The form's own parse stays.
 */
const BOUND_MS = 1000;

t.test('a 9 MiB form key does not hold the event loop', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const limits = { limits: { max_body_bytes: '10MiB' } };
  const validated = await startTestSidecar(t, backend.url, {
    ...limits,
    openapi: { document: openApiFile(DOCUMENT), allow_public: true, validation: { mode: 'enforce', unknown_query: 'allow' } },
  });
  const routed = await startTestSidecar(t, backend.url, { ...limits, routes: [{ id: 'form', path: '/form', methods: ['POST'] }] });
  for (const [label, sidecar] of [
    ['OpenAPI form route', validated],
    ['waf-only route', routed],
  ] as const) {
    const agent = testAgent(sidecar.ca);
    t.teardown(() => agent.close());
    // `%20a` is ` a` once decoded, as `+a` is; `+a` itself is left out: URLSearchParams alone takes
    // ~0.8 s on 4.5 M `+` (the form's parse, read by each stage, not a name reading).
    for (const unit of ['.a', '%20a', '.]', 'a.']) {
      const body = `${unit.repeat(Math.floor(SIZE / unit.length))}=1`;
      const delay = monitorEventLoopDelay({ resolution: 10 });
      delay.enable();
      const r = await fetchText(`${sidecar.url}/form`, agent, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      delay.disable();
      const stall = delay.max / 1e6;
      t.ok(stall < BOUND_MS, `${label}, ${unit}…: ${r.status}, longest stall ${stall.toFixed(0)} ms (< ${BOUND_MS})`);
    }
  }
});
