/**
 * The `_method` check reads any held body but multipart as Bottle reads a form (body-as-form.ts).
 * A 10 MiB JSON or text body of `method=&` is 1.3 M names holding `method`, each decoded and tested:
 * the slowest admin /healthz during one such request was ~450 ms, against ~70–130 ms for a body of
 * the same size without them (review rt27, F4). Past 10 000 such names, or one per 32 bytes of a
 * larger body (328 k in 10 MiB, ~0.1–0.2 s of reading), the body is refused as if one were an
 * override; ordinary bulk JSON (12 000 access-log records) stays under it (second review rt27, F1).
 *
 * A real `warden proxy` process from dist/, the default configuration (no waf) and the waf in block mode.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { testAgent } from '../support/clients.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { heldRequest, leastHeldRequest } from '../support/held-request.js';
import { hostSlowdown } from '../support/host-load.js';

const SIZE = (10 << 20) - 1024;
/** What a 10 MiB body of one of these shapes may add to the slowest /healthz over a plain body of that size. */
const ADDED_MS = 250;

t.test('a 10 MiB body of method-like names is answered at once', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  for (const waf of [undefined, 'block'] as const) {
    const warden = await spawnWarden(
      t,
      await testConfigYaml(backend.url, { limits: { max_body_bytes: '10MiB' }, ...(waf ? { threats: { waf: { mode: waf } } } : {}) }),
    );
    const agent = testAgent(cert.certPem);
    t.teardown(() => agent.close());
    const send = (type: string, body: string) =>
      heldRequest(warden.adminUrl, `${warden.url}/api`, { dispatcher: agent, method: 'POST', headers: { 'content-type': type }, body });
    const where = `waf ${waf ?? 'off'}`;
    // The same size without a name holding `method` (not JSON either): what any 10 MiB body costs.
    const plain = await send('application/json', 'mithod=&'.repeat(Math.floor(SIZE / 8)));
    t.comment(`${where}: a plain 10 MiB body, slowest /healthz ${plain.slowest.toFixed(0)} ms`);
    const shapes: [string, string][] = [
      ['application/json', 'method=&'],
      ['application/json', 'METHOD=&'],
      ['application/json', 'method%=&'],
      ['application/json', 'x=1;method='],
    ];
    if (waf) shapes.push(['text/plain', 'method=&']);
    for (const [type, unit] of shapes) {
      const added = ADDED_MS * hostSlowdown();
      const r = await leastHeldRequest(plain.slowest + added, warden.adminUrl, `${warden.url}/api`, {
        dispatcher: agent,
        method: 'POST',
        headers: { 'content-type': type },
        body: unit.repeat(Math.floor(SIZE / unit.length)),
      });
      t.comment(
        `${where} ${type} ${JSON.stringify(unit)}: ${r.status}, slowest /healthz ${r.slowest.toFixed(0)} ms (${r.attempts} attempt(s))`,
      );
      t.equal(r.status, 400, `${where} ${type} ${JSON.stringify(unit)} × 10 MiB: 400 (${r.text.slice(0, 100)})`);
      t.match(r.text, /ERR_REQUEST_OVERRIDE/, `${where} ${JSON.stringify(unit)}: ERR_REQUEST_OVERRIDE`);
      t.ok(
        r.slowest < plain.slowest + added,
        `${where} ${type} ${JSON.stringify(unit)}: slowest /healthz ${r.slowest.toFixed(0)} ms (< ${plain.slowest.toFixed(0)} + ${added.toFixed(0)})`,
      );
    }
    // A JSON body with a few URLs holding `&payment_method=` still passes.
    const order = JSON.stringify({
      items: Array.from({ length: 20 }, (_, i) => ({ url: `https://shop.example/pay?order=${i}&payment_method=card&shipping_method=ups` })),
    });
    const ok = await send('application/json', order);
    t.equal(ok.status, 200, `${where}: JSON with &payment_method= URLs passes (${ok.text.slice(0, 100)})`);
  }
});
