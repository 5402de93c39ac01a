/**
 * A reload that fails changes nothing in force, the DPoP replay cache included. Red-team round 19,
 * finding 1: the reload built the new token runtime, which gave the cache shared across reloads the
 * new file's `dpop.max_age` (60 s → 1 s), before the OpenAPI document failed to load. The old
 * configuration stayed in force and accepted proofs up to 60 s old, while the cache remembered them
 * 2 s: the same proof sent again 3.5 s later reached the backend.
 */
import t from 'tap';
import { parseSidecarConfig } from '../../src/config/load.js';
import { startTestBackend } from '../support/backend.js';
import { fetchText, testAgent, type SimpleResponse } from '../support/clients.js';
import { dpopClient } from '../support/dpop.js';
import { openApiFile } from '../support/openapi-file.js';
import { startTestSidecar, testConfigYaml } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);
const codeOf = (r: SimpleResponse) => (r.status === 200 ? '200' : `${r.status} ${String(r.json().code)}`);

t.test('a failed reload that changes tokens.dpop leaves the replay cache as it was', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const forged = await startForgedIssuer(t);
  const tokens = (dpop: Record<string, unknown>) => ({ issuers: [{ id: 'corp', issuer: forged.issuer, audience: ['api'] }], dpop });
  const s = await startTestSidecar(t, backend.url, {
    tokens: tokens({ max_age: '60s', clock_skew: '1s' }),
    routes: [{ id: 'x', path: '/x' }],
  });
  const agent = testAgent(s.ca);
  t.teardown(() => agent.close());
  const key = await dpopClient();
  const token = await forged.sign({
    iss: forged.issuer,
    aud: 'api',
    sub: 'alice',
    client_id: 'app',
    exp: now() + 600,
    cnf: { jkt: key.jkt },
  });
  const url = `${s.url}/x`;
  const send = async (proof: string) => codeOf(await fetchText(url, agent, { headers: { authorization: `DPoP ${token}`, dpop: proof } }));
  const file = s.sidecar.current.loaded.file;
  // A 1 s life, and one live proof per caller.
  const shorter = { max_age: '1s', clock_skew: '1s', replay_cache_entries: 10, replay_entries_per_caller: 1 };

  // The new dpop settings with an OpenAPI document that does not load: the reload fails after
  // the token runtime was built.
  const broken = openApiFile('openapi: 3.0.3\ninfo: { title: t }\npaths: { /x: { get: { responses: 7 } } }\n');
  const failing = await testConfigYaml(backend.url, { tokens: tokens(shorter), openapi: { document: broken } });
  t.equal(await s.sidecar.reload(() => parseSidecarConfig(file, failing)), false, 'the reload fails');
  t.ok(
    s.events.some((e) => e.name === 'warden.config.reload_failed'),
    'warden.config.reload_failed',
  );

  const proof = await key.proof('GET', url, { token });
  t.equal(await send(proof), '200', 'a proof is accepted');
  t.equal(await send(await key.proof('GET', url, { token })), '200', 'and another of the same caller: its share is still 500');
  await new Promise((r) => setTimeout(r, 2200)); // past the failed file's 1 s + 1 s
  t.equal(await send(proof), '401 ERR_AUTHN_DPOP_INVALID', 'the first proof sent again is refused…');
  t.equal(s.events.at(-1)?.['warden.rule'], 'dpop.replay', '…as a replay: remembered for 61 s');
  t.equal(await send(await key.proof('GET', url, { token, iat: now() - 30 })), '200', 'a proof 30 s old passes: max_age 60 s is in force');
  t.equal(backend.requests.filter((r) => r.url === '/x').length, 3, 'the replay never reached the backend');

  // The share in a file that loads: it applies when that reload commits. (A max_age of 30 s: with
  // 1 s, a fresh proof was once too old by the time a loaded host checked it, 401 in a full run.)
  const good = await testConfigYaml(backend.url, { tokens: tokens({ ...shorter, max_age: '30s' }), routes: [{ id: 'x', path: '/x' }] });
  t.equal(await s.sidecar.reload(() => parseSidecarConfig(file, good)), true, 'a reload that succeeds');
  t.equal(
    await send(await key.proof('GET', url, { token })),
    '429 ERR_DPOP_REPLAY_SHARE',
    'applies the new share (1) to the cache: the caller already holds three live proofs',
  );
});
