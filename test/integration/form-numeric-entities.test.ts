/**
 * Numeric character references in a form's values: qs, under Express 5's and NestJS's
 * body-parser 2 with its documented `urlencoded({ extended: true, charsetSentinel: true,
 * interpretNumericEntities: true })`, decodes `&#60;` to `<` in every value once the form is
 * ISO-8859-1 — by the Content-Type's `charset=iso-8859-1`, or, whatever the header says, by a
 * `utf8=%26%2310003%3B` field (`utf8=&#10003;`, the sentinel a browser on a Latin-1 page sends).
 * Decimal only (`&#x3c;` stays), values only (names stay), any number of digits (`&#1114172;` is
 * `<` too: String.fromCharCode keeps the low 16 bits). Run by hand against NestJS 12 / Express 5 /
 * body-parser 2.4.0 / qs 6.17.1 behind a sidecar: `bio=&#60;script&#62;…` passed the pattern
 * `^[^<>]*$` and the waf in block mode, and the handler read `<script>…`. Replayed here against the
 * test backend, over h1 and h2: each stage that reads the form's values reads them both ways.
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
                bio: { type: string, pattern: '^[^<>]*$' }
      responses: { '200': { description: ok } }
`;

/** `&#N;` for every character, percent-encoded as a form value: what qs reads as `s` in ISO-8859-1 mode. */
const asReferences = (s: string) => encodeURIComponent([...s].map((c) => `&#${c.codePointAt(0)};`).join(''));
const ISO = 'application/x-www-form-urlencoded; charset=iso-8859-1';
const FORM = 'application/x-www-form-urlencoded';
const SENTINEL = 'utf8=%26%2310003%3B';

t.test('numeric character references in form values are read decoded too, as qs reads them', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const clamd = await startTestClamd(t);
  const validating = await startTestSidecar(t, backend.url, { openapi: { document: openApiFile(DOCUMENT), allow_public: true } });
  const inspecting = await startTestSidecar(t, backend.url, {
    threats: { waf: { mode: 'block', budget: '2s' } },
    routes: [{ id: 'search', path: '/search', methods: ['PUT'] }],
  });
  const scanning = await startTestSidecar(t, backend.url, {
    threats: { malware: { clamd: clamd.address, timeout: '10s' } },
    routes: [{ id: 'upload', path: '/upload', methods: ['PUT'], malware_scan: true }],
  });
  const sidecars = { '/users': validating, '/search': inspecting, '/upload': scanning } as const;
  const agents = new Map<string, Agent>();
  t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())));
  const send = (path: keyof typeof sidecars, body: string, contentType: string, h2: boolean) => {
    const s = sidecars[path];
    const key = `${path} ${h2}`;
    if (!agents.has(key)) agents.set(key, testAgent(s.ca, { h2 }));
    return fetchText(`${s.url}${path}`, agents.get(key) as Agent, { method: 'PUT', body, headers: { 'content-type': contentType } });
  };

  const script = '%26%2360%3Bscript%26%2362%3Balert(document.cookie)%26%2360%3B/script%26%2362%3B';
  const before = backend.requests.length;
  for (const [path, body, contentType, status, nest] of [
    ['/users', `name=eve&bio=${script}`, ISO, 400, 'bio "<script>alert(document.cookie)</script>", past the pattern'],
    ['/users', `${SENTINEL}&name=eve&bio=${script}`, FORM, 400, 'the same by the sentinel, with no charset'],
    ['/users', `name=eve&bio=%26#60%3Bb%26#62%3B&${SENTINEL}`, FORM, 400, 'bio "<b>": "#" unencoded, the sentinel last'],
    ['/users', 'name=eve&bio=%26%231114172%3B', ISO, 400, 'bio "<" (0x11003C, its low 16 bits)'],
    ['/search', `q=${script}`, ISO, 403, 'q "<script>alert(document.cookie)</script>", past the waf'],
    ['/search', 'q=1%26%2339%3B%20OR%20%26%2339%3B1%26%2339%3B%3D%26%2339%3B1', ISO, 403, `q "1' OR '1'='1", past the waf`],
    ['/upload', `name=eve&q=${asReferences(EICAR.toString('latin1'))}`, ISO, 422, 'q EICAR, past the scan of form values'],
  ] as const) {
    for (const h2 of [false, true]) {
      const r = await send(path, body, contentType, h2);
      t.equal(r.status, status, `${path} ${body.slice(0, 48)} (NestJS: ${nest}; ${h2 ? 'h2' : 'h1'}): ${status}`);
    }
  }
  t.equal(backend.requests.length, before, 'the backend saw none of them');
  t.match(validating.events.at(-1)?.['warden.rule'], /^openapi\.body/, 'validation refused them as its schema');

  // Controls: what qs leaves as sent, and references to characters Latin-1 lacks (a browser on a
  // Latin-1 page sends `&#8364;` for "€"), still pass.
  for (const [path, body, contentType] of [
    ['/users', 'name=eve&bio=%26%23x3c%3Bb%26%23x3e%3B', ISO], // hex: not a reference to qs
    ['/users', 'name=eve&bio=%26%2360b%26%2362', ISO], // no ";"
    ['/users', 'name%26%2360%3B=eve', ISO], // a name: qs leaves it
    ['/users', `${SENTINEL}&name=eve&bio=caf%E9%20%26%238364%3B5`, FORM],
    ['/search', `${SENTINEL}&q=caf%E9%20%26%238364%3B5`, FORM],
    ['/upload', `${SENTINEL}&q=caf%E9%20%26%238364%3B5`, FORM],
  ] as const) {
    t.equal((await send(path, body, contentType, false)).status, 200, `${path} ${body}: 200`);
  }
  t.equal((await send('/users', 'name=eve&bio=<b>', FORM, false)).status, 400, 'the pattern still holds');
});
