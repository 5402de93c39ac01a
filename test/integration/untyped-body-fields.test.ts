/**
 * `limits.max_form_fields` and untyped bodies (review of rt27, F1). An untyped body is read as a form
 * (Rack reads an untyped POST as one, so do the `_method` check and the waf), and a 10 MiB one of
 * `a&` once held the loop seconds (adversarial row 449). But random or compressed bytes hold one
 * `&` in 256: a 3 MiB upload sent without a Content-Type (Python `requests.post(url, data=bytes)`,
 * fetch with an untyped Blob, `curl -T`) was 413 on the default configuration. An untyped body is
 * now refused only past one field in 64 bytes (form-field-count.ts); the crafted ones at that
 * density must still not hold the loop.
 *
 * Real `warden proxy` processes from dist/; the stall is the slowest answer of admin /healthz,
 * asked again and again over loopback while the body is in the sidecar.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';
import { heldRequest } from '../support/held-request.js';
import { hostSlowdown } from '../support/host-load.js';

const MiB = 1 << 20;
/** The project's stall bound for one 10 MiB body (form-body-stall.test.ts); measured values in the report. */
const BOUND_MS = 1000;

const ampersands = (b: Buffer) => b.reduce((n, c) => n + (c === 0x26 ? 1 : 0), 0);

/** Text that compresses about as prose does, gzipped until it is `size` bytes or more, then cut there. */
function gzipOfText(size: number): Buffer {
  const words = ['the', 'order', 'was', 'shipped', 'on', 'time', 'and', 'paid', 'by', 'card', 'invoice', 'customer'];
  const lines: string[] = [];
  let seed = 1;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < size / 6; i++)
    lines.push(`${next().toString(36)} ${words[next() % words.length]} ${(next() % 100000) / 100} ${randomBytes(6).toString('hex')}\n`);
  const gz = gzipSync(lines.join(''));
  return gz.subarray(0, Math.min(gz.length, size));
}

async function holdOf(url: string, adminUrl: string, agent: Agent, method: string, headers: Record<string, string>, body: Buffer) {
  const r = await heldRequest(adminUrl, url, { dispatcher: agent, method, headers, body });
  return { ...r, text: r.text.slice(0, 160) };
}

t.test('untyped uploads of random and compressed bytes pass; dense untyped forms are refused or read fast', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  const limits = { max_body_bytes: '10MiB' };
  const sidecars = {
    default: await spawnWarden(t, await testConfigYaml(backend.url, { limits })),
    detect: await spawnWarden(t, await testConfigYaml(backend.url, { limits, threats: { waf: { mode: 'detect' } } })),
    block: await spawnWarden(t, await testConfigYaml(backend.url, { limits, threats: { waf: { mode: 'block' } } })),
  };
  const agent = new Agent({ connect: { ca: cert.certPem, servername: 'localhost' } });
  t.teardown(() => agent.close());

  const uploads: [string, Buffer][] = [
    ['random 3 MiB', randomBytes(3 * MiB)],
    ['gzip of text, 9 MiB', gzipOfText(9 * MiB)],
  ];
  for (const [label, body] of uploads) {
    t.ok(ampersands(body) > 10_000, `${label}: ${ampersands(body)} '&' bytes, past the default max_form_fields`);
    for (const [where, method] of [
      ['default', 'POST'],
      ['detect', 'POST'],
      ['detect', 'PUT'],
    ] as const) {
      const s = sidecars[where];
      const before = backend.requests.length;
      const r = await holdOf(`${s.url}/upload`, s.adminUrl, agent, method, {}, body);
      t.equal(r.status, 200, `${label}, ${method} untyped on the ${where} route: ${r.status} ${r.status === 200 ? '' : r.text}`);
      t.equal(backend.requests.length, before + 1, `${label}, ${where} ${method}: the backend got it`);
      t.equal(backend.requests.at(-1)?.bodyBytes, body.length, `${label}, ${where} ${method}: whole`);
    }
  }

  // Crafted untyped bodies. Denser than one field in 64 bytes: 413. At that density (~164 k fields
  // in 10 MiB), shaped for the readers' costs: escapes that are not UTF-8 (the byte-wise fallback),
  // `+`, names all different, `method` in every name, one `=`-less field after another.
  const field = (unit: string) => unit.padEnd(63, unit.at(-1)) + '&';
  const fill = (f: (i: number) => string) => {
    const parts: string[] = [];
    let length = 0;
    for (let i = 0; length < 10 * MiB - 4096; i++) {
      const piece = f(i);
      parts.push(piece);
      length += piece.length;
    }
    return Buffer.from(parts.join(''));
  };
  const dense: [string, Buffer, 'refused' | 'read'][] = [
    ['a& (5 M fields)', Buffer.from('a&'.repeat(5 * MiB - 2048)), 'refused'],
    ['=& (5 M fields)', Buffer.from('=&'.repeat(5 * MiB - 2048)), 'refused'],
    ['a field in 32 bytes', fill(() => 'x'.repeat(31) + '&'), 'refused'],
    ['%E9 escapes, a field in 64 bytes', fill(() => field('a=%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9%E9')), 'read'],
    ['+ values, a field in 64 bytes', fill(() => field('a=+')), 'read'],
    ['distinct names, a field in 64 bytes', fill((i) => field(`n${i}=x`)), 'read'],
    ['method names, a field in 64 bytes', fill((i) => field(`method${i}=DELETE`)), 'read'],
    ['%41 names, a field in 64 bytes', fill(() => field('%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41=')), 'read'],
    ['SQL-ish values, a field in 64 bytes', fill((i) => field(`q${i}=1' or '1'='1' union select `)), 'read'],
  ];
  // Refused shapes on the default route (the count comes before any stage); read ones where the
  // waf reads the body too (detect PUT, which the `_method` check reads as well since it reads any
  // method's held body; block POST: every stage), to keep the file's time down (each is a 10 MiB request).
  const routes = {
    refused: [['default', 'POST']],
    read: [
      ['detect', 'PUT'],
      ['block', 'POST'],
    ],
  } as const;
  for (const [label, body, expected] of dense)
    for (const [where, method] of routes[expected]) {
      const s = sidecars[where];
      const r = await holdOf(`${s.url}/upload`, s.adminUrl, agent, method, {}, body);
      t.comment(`${label}, ${where} ${method}: ${r.status}, slowest /healthz ${r.slowest.toFixed(0)} ms`);
      if (expected === 'refused') t.equal(r.status, 413, `${label}, ${where} ${method}: 413 (${r.text})`);
      const bound = BOUND_MS * hostSlowdown();
      t.ok(r.slowest < bound, `${label}, ${where} ${method}: /healthz within ${r.slowest.toFixed(0)} ms (< ${bound.toFixed(0)})`);
    }

  // A form-typed body keeps the plain bound: one `&` in 256 bytes of a 3 MiB form is too many.
  const s = sidecars.default;
  const form = await holdOf(
    `${s.url}/upload`,
    s.adminUrl,
    agent,
    'POST',
    { 'content-type': 'application/x-www-form-urlencoded' },
    Buffer.from(field('a=b').repeat(12_000)),
  );
  t.equal(form.status, 413, `a form body of 12 000 fields: 413 (${form.text})`);
});
