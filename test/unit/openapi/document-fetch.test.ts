/**
 * A document fetched by URL (openapi.document: http://…) is read within one deadline and a size
 * cap: a server trickling it a byte every few seconds never finished (the reload neither applied
 * nor failed, and held the reloads behind it), and an endless one filled memory.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadOpenApiDocument } from '../../../src/openapi/document.js';
import { repoRoot } from '../../support/sidecar.js';

const petstore = readFileSync(join(repoRoot, 'test/fixtures/openapi/petstore-3.0.yaml'));

t.test('a URL document: one deadline for the whole fetch, a size cap, the status checked first', async (t) => {
  const open = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    open.add(res);
    res.once('close', () => open.delete(res));
    if (req.url === '/trickle') {
      res.writeHead(200, { 'content-type': 'application/yaml' });
      let i = 0;
      // One byte every 100 ms: no pause reaches the undici timeouts, the whole takes minutes.
      const timer = setInterval(() => (i < petstore.length ? res.write(petstore.subarray(i, ++i)) : res.end()), 100);
      timers.add(timer);
      res.once('close', () => clearInterval(timer));
    } else if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'application/yaml' });
      const line = Buffer.from(`# ${'x'.repeat(1021)}\n`);
      const pump = () => {
        while (!res.destroyed && res.write(line));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    } else if (req.url === '/missing') {
      res.writeHead(404);
      res.end('not here');
    } else res.end(petstore);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const timer of timers) clearInterval(timer);
    for (const res of open) res.destroy();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const failure = (path: string, timeoutMs = 10_000) =>
    loadOpenApiDocument(`${base}${path}`, timeoutMs).then(
      () => 'loaded',
      (err: Error) => err.message,
    );

  t.equal(await failure('/whole'), 'loaded', 'a document served whole loads');
  t.match(await failure('/trickle', 800), /cannot read .*\/trickle \(was not read whole within 0\.8 s\)/);
  t.match(await failure('/endless'), /cannot read .*\/endless \(is larger than 16 MiB\)/);
  t.match(await failure('/missing'), /cannot read .*\/missing \(answered 404\)/);
});
