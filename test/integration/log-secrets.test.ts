/**
 * Credentials never reach a log line: a token read from a header of the operator's choosing
 * (tokens.sources) is redacted in access lines with headers like Authorization, and the Redis URL
 * of tokens.shared is logged without its password.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar, testConfigYaml } from '../support/sidecar.js';
import { parseSidecarConfig } from '../../src/config/load.js';

type Json = Record<string, unknown>;
import { startForgedIssuer } from '../support/token-forge.js';
import { openApiFile } from '../support/openapi-file.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a token in a configured header is redacted in the access line', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    log: { access_headers: true },
    tokens: { sources: [{ from: 'header', name: 'X-Api-Token' }], issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', exp: Math.floor(Date.now() / 1000) + 300 });
  t.equal((await fetchText(`${s.url}/x`, agent, { headers: { 'x-api-token': token } })).status, 200);
  await sleep(400); // access lines go out in batches (line-batcher.ts)
  const line = s.logs.find((l) => l.msg === 'request');
  t.match(line?.headers, { 'x-api-token': '[redacted]' });
  t.notOk(JSON.stringify(s.logs).includes(token), 'the token is in no log line');
});

t.test('a reload while a request runs does not unredact its token: the line follows the generation it started on', async (t) => {
  // A reload dropping X-Api-Token from tokens.sources, while a request carrying it waited on the
  // backend, logged that request's token whole: redaction was decided by the generation in force
  // when the request ended.
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const section = (sources: Json[]) => ({
    log: { access_headers: true },
    tokens: { sources, issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
  });
  const s = await startTestSidecar(t, backend.url, section([{ from: 'header', name: 'X-Api-Token' }]));
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', exp: Math.floor(Date.now() / 1000) + 300 });
  const slow = fetchText(`${s.url}/slow?ms=800`, agent, { headers: { 'x-api-token': token } });
  await sleep(300);
  const text = await testConfigYaml(backend.url, section([{ from: 'authorization' }]));
  t.ok(await s.sidecar.reload(() => parseSidecarConfig('reloaded.yaml', text)), 'the reload applied while the request ran');
  t.equal((await slow).status, 200, 'the request finished on its own generation');
  await sleep(400); // access lines go out in batches (line-batcher.ts)
  const line = s.logs.find((l) => l.msg === 'request' && l['url.path'] === '/slow');
  t.match(line?.headers, { 'x-api-token': '[redacted]' }, 'its token header is redacted as when it started');
  t.notOk(JSON.stringify(s.logs).includes(token), 'the token is in no log line');
});

t.test('over h2 the query is not logged in :path; an OpenAPI apiKey header is redacted', async (t) => {
  // The access line leaves the query out (url.path), but h2's headers carry it in :path: a token in
  // ?access_token= was logged whole; and the document's own apiKey header was not counted a
  // credential (docs/adversarial.md 207, 208).
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const document = openApiFile(
    JSON.stringify({
      openapi: '3.1.0',
      info: { title: 't', version: '1' },
      components: { securitySchemes: { shopKey: { type: 'apiKey', in: 'header', name: 'X-Shop-Key' } } },
      paths: {
        '/a': { get: { operationId: 'a', security: [], responses: { '200': { description: 'ok' } } } },
        '/keyed': { get: { operationId: 'keyed', security: [{ shopKey: [] }], responses: { '200': { description: 'ok' } } } },
      },
    }),
  );
  const s = await startTestSidecar(t, backend.url, {
    log: { access_headers: true },
    openapi: { document, operations: { keyed: { authn: { mode: 'off' } } } },
    tokens: { sources: [{ from: 'query', name: 'access_token' }], issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }] },
  });
  const token = await idp.sign({ iss: idp.issuer, aud: 'api', sub: 'u', exp: Math.floor(Date.now() / 1000) + 300 });
  for (const h2 of [false, true]) {
    const agent = testAgent(s.ca, { h2 });
    t.teardown(() => agent.close());
    t.equal((await fetchText(`${s.url}/a?access_token=${token}&x=1`, agent)).status, 200, `${h2 ? 'h2' : 'h1'}: token in the query`);
    t.equal(
      (await fetchText(`${s.url}/keyed`, agent, { headers: { 'x-shop-key': 'SECRETSHOPKEY', x_shop_key: 'SECRETSHOPKEY2' } })).status,
      200,
      `${h2 ? 'h2' : 'h1'}: an API key`,
    );
  }
  await sleep(400); // access lines go out in batches (line-batcher.ts)
  const logged = JSON.stringify(s.logs);
  t.notOk(logged.includes(token), 'the query token is in no log line');
  t.notOk(logged.includes('SECRETSHOPKEY'), 'nor the API key, in either spelling');
  const h2Line = s.logs.find(
    (l) =>
      l.msg === 'request' &&
      (l.headers as Record<string, unknown> | undefined)?.[':path'] !== undefined &&
      String((l.headers as Record<string, unknown>)[':path']).startsWith('/a'),
  );
  t.equal((h2Line?.headers as Record<string, unknown> | undefined)?.[':path'], '/a?[redacted]', ':path keeps the path, not the query');
  t.ok(
    s.logs.some((l) => (l.headers as Record<string, unknown> | undefined)?.['x-shop-key'] === '[redacted]'),
    'X-Shop-Key: [redacted]',
  );
});

t.test('the shared-state Redis URL is logged without its password', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const s = await startTestSidecar(t, backend.url, {
    tokens: {
      issuers: [{ id: 'idp', issuer: idp.issuer, audience: ['api'] }],
      shared: { redis: 'redis://:S3cretRedisPw@127.0.0.1:1', key: 'k'.repeat(32) },
    },
  });
  let warned = s.logs.find((l) => /shared token state/.test(String(l.msg)));
  for (let i = 0; i < 40 && !warned; i++) {
    await sleep(50);
    warned = s.logs.find((l) => /shared token state/.test(String(l.msg)));
  }
  t.ok(warned, 'the outage is logged');
  t.notOk(JSON.stringify(s.logs).includes('S3cretRedisPw'), 'without the password');
});

t.test('an absolute-form target is logged without its user name and password', async (t) => {
  // `GET http://u:pw@host/x` is refused, and its url.path was the target whole: the password in the
  // access line, the event, the span and the console feed.
  const { connect } = await import('node:tls');
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const s = await startTestSidecar(t, backend.url);
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: s.port, ca: s.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] }, () =>
      socket.end('GET http://u:S3cretIn@localhost/api/hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
    );
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString()));
    socket.once('close', () => resolve(got));
    socket.once('error', reject);
  });
  t.match(answer, /^HTTP\/1\.1 4\d\d /, 'refused');
  await sleep(400); // access lines go out in batches (line-batcher.ts)
  t.ok(
    s.logs.some((l) => l.msg === 'request'),
    'the access line is written',
  );
  t.notOk(JSON.stringify([s.logs, s.events]).includes('S3cretIn'), 'the password is in no log line or event');
  t.ok(
    s.logs.some((l) => l['url.path'] === 'http://***@localhost/api/hello'),
    'the access line names the target without it',
  );
});
