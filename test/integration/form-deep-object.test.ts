/**
 * A form body property declared `encoding: {address: {style: deepObject, explode: true}}`, sent as
 * qs.stringify sends it (axios with qs, superagent `.type('form')`, jQuery `$.param`), through a
 * spawned sidecar (red team 28, F2): it reaches the backend, its entries are checked at
 * `/body/address/…`, and a property not declared deepObject still refuses `billing[city]`. An
 * encoding style Warden does not honour is a warning at load naming the document's field.
 */
import t from 'tap';
import { Agent } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText } from '../support/clients.js';
import { openApiFile } from '../support/openapi-file.js';
import { spawnWarden, testConfigYaml } from '../support/sidecar.js';

const DOC = `openapi: 3.1.0
info: { title: t, version: '1' }
security: []
paths:
  /profile:
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                nickname: { type: string }
                address: { $ref: '#/components/schemas/Address' }
                billing: { $ref: '#/components/schemas/Address' }
                tags: { type: array, items: { type: string, enum: [a, b] } }
            encoding:
              address: { style: deepObject, explode: true }
              tags: { style: pipeDelimited }
      responses: { '200': { description: ok } }
components:
  schemas:
    Address:
      type: object
      additionalProperties: false
      properties:
        city: { type: string, pattern: '^[^<>]*$' }
        zip: { type: string, pattern: '^[0-9]{5}$' }
`;

t.test('a deepObject form property passes as qs sends it, and is checked at its path', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const cert = await testCertificate();
  const sidecar = await spawnWarden(t, await testConfigYaml(backend.url, { openapi: { document: openApiFile(DOC), allow_public: true } }));
  const agent = new Agent({ connect: { ca: cert.certPem, servername: 'localhost' } });
  t.teardown(() => agent.close());
  const post = (body: string) =>
    fetchText(`${sidecar.url}/profile`, agent, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });

  const qsBody = 'nickname=eve&address%5Bcity%5D=Paris&address%5Bzip%5D=75001';
  const before = backend.requests.length;
  const ok = await post(qsBody);
  t.equal(ok.status, 200, `qs.stringify's body: ${ok.status} ${ok.text.slice(0, 200)}`);
  t.equal(backend.requests.length, before + 1, 'it reached the backend');
  t.equal(backend.requests.at(-1)?.bodyBytes, qsBody.length, 'whole');

  const refused: [body: string, pointer: string, what: string][] = [
    ['address%5Bzip%5D=7500', '/body/address/zip', 'a property past its pattern'],
    ['address%5Bcity%5D=%3Cscript%3E', '/body/address/city', 'markup in a property'],
    ['address%5BisAdmin%5D=1', '/body/address', 'an undeclared property (additionalProperties: false)'],
    ['address%5Bzip%5D=75001&address%5Bzip%5D=7', '/body/address/zip', 'given twice'],
    ['address%5Bgeo%5D%5Blat%5D=1', '/body/address[geo][lat]', 'nested deeper than deepObject'],
    ['billing%5Bcity%5D=Paris', '/body/billing[city]', 'a property not declared deepObject'],
    ['address%5Bcity%5D=Paris&address=x', '/body/address', 'the bare name beside'],
  ];
  for (const [body, pointer, what] of refused) {
    const r = await post(body);
    t.equal(r.status, 400, `${what}: ${r.status}`);
    t.match(r.text, `"pointer":"${pointer}"`, `${what}: at ${pointer}`);
  }
  const warning = sidecar.lines.find((l) => /encoding\/tags: style "pipeDelimited" is not honoured/.test(String(l.msg)));
  t.ok(warning, 'a style not honoured is a warning at load');
  t.notOk(
    sidecar.lines.some((l) => /encoding\/address/.test(String(l.msg))),
    'deepObject is no warning',
  );
});
