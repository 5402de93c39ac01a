/**
 * Credentials never reach a log line: a token read from a header of the operator's choosing
 * (tokens.sources) is redacted in access lines with headers like Authorization, and the Redis URL
 * of tokens.shared is logged without its password.
 */
import t from 'tap';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

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
