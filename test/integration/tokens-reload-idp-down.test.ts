/**
 * A SIGHUP reload that changes `tokens` while the IdP is down: a real `warden proxy` process, a real
 * issuer (discovery + JWKS over HTTP) that is stopped before the reload. The keys and discovered
 * endpoints of an issuer whose key source did not change are carried into the rebuilt token
 * translation, so tokens signed by its cached key are still accepted (200, not 503
 * ERR_IDP_UNAVAILABLE until the IdP returns); an issuer whose key source changed starts empty (its
 * keys come from the new place, or not at all); revocations made through Warden outlive the reload.
 */
import { writeFileSync } from 'node:fs';
import t from 'tap';
import { request } from 'undici';
import { startTestBackend } from '../support/backend.js';
import { testCertificate } from '../support/certs.js';
import { fetchText, testAgent } from '../support/clients.js';
import { spawnWarden, testConfigYaml, type Teardown, type WardenProcess } from '../support/sidecar.js';
import { startForgedIssuer } from '../support/token-forge.js';

const now = () => Math.floor(Date.now() / 1000);

async function setup(t: Teardown) {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const idp = await startForgedIssuer(t);
  const config = (issuer: Record<string, unknown>, leeway: string) =>
    testConfigYaml(backend.url, {
      service: { name: 'orders' },
      log: { access: false },
      tokens: {
        issuers: [{ id: 'forge', issuer: idp.issuer, audience: ['orders-api'], jwt: { algorithms: ['ES256'] }, ...issuer }],
        leeway,
        idp: { timeouts: { connect: '300ms', response: '300ms' } },
      },
      routes: [{ id: 'orders', path: '/orders/*', scopes: { any_of: ['orders:read'] } }],
    });
  const warden = await spawnWarden(t, await config({}, '30s'));
  const agent = testAgent((await testCertificate()).certPem);
  t.teardown(() => agent.close());
  const token = () =>
    idp.sign({
      sub: 'alice',
      scope: 'orders:read',
      aud: 'orders-api',
      iss: idp.issuer,
      iat: now(),
      exp: now() + 300,
      jti: String(Math.random()),
    });
  const call = async (tok: string) =>
    (await fetchText(`${warden.url}/orders/1`, agent, { headers: { authorization: `Bearer ${tok}` } })).status;
  return { idp, warden, config, token, call };
}

async function reload(warden: WardenProcess, text: string): Promise<void> {
  const done = (l: Record<string, unknown>) => l.event === 'warden.config.reloaded' || l.event === 'warden.config.reload_failed';
  const before = warden.lines.filter(done).length;
  writeFileSync(warden.configFile, text);
  warden.child.kill('SIGHUP');
  await warden.waitFor(() => warden.lines.filter(done).length > before, 10_000);
  const last = warden.lines.filter(done).at(-1);
  if (last?.event !== 'warden.config.reloaded') throw new Error(`reload refused: ${JSON.stringify(last)}`);
}

t.test('a reload changing tokens while the IdP is down keeps the cached keys of an unchanged issuer', async (t) => {
  const { idp, warden, config, token, call } = await setup(t);
  const early = await token();
  const revoked = await token();
  t.equal(await call(early), 200, 'IdP up: accepted');
  t.equal(await call(revoked), 200, 'IdP up: the token to revoke is accepted');
  const res = await request(`${warden.adminUrl}/tokens/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: revoked }).toString(),
  });
  t.equal(res.statusCode, 200, 'revoked through Warden');
  await res.body.dump();
  const late = await token();

  await idp.close();
  t.equal(await call(late), 200, 'IdP down, no reload: a new token verifies with the cached key');

  await reload(warden, await config({}, '31s'));
  t.equal(await call(early), 200, 'after the reload: a token accepted before is still accepted');
  t.equal(await call(late), 200, 'after the reload: a token never seen, signed by the cached key, is accepted');
  t.equal(await call(await token()), 200, 'after the reload: a fresh token is accepted');
  t.equal(await call(revoked), 401, 'after the reload: the revoked token is still refused');
  const warned = warden.lines.filter((l) => /not reachable/.test(String(l.msg)));
  t.ok(warned.length >= 1, 'the failed refresh is logged');
  t.ok(
    warned.every((l) => /kept/.test(String(l.msg))),
    `and says the keys from before the reload are kept: ${JSON.stringify(warned.map((l) => l.msg))}`,
  );
});

t.test('an issuer whose key source changed does not take the old keys', async (t) => {
  const { idp, warden, config, token, call } = await setup(t);
  const tok = await token();
  t.equal(await call(tok), 200, 'IdP up: accepted');
  await idp.close();
  // The same keys at the same place, but named by jwks_uri: another key source, fetched afresh.
  await reload(warden, await config({ jwks_uri: idp.jwksUri, discovery: false }, '30s'));
  t.equal(await call(tok), 503, 'keys from a changed source are not carried: 503 until the IdP answers');
  t.ok(
    warden.lines.some((l) => /not reachable yet; tokens from it get 503/.test(String(l.msg))),
    'the reload warns that the issuer is not reachable',
  );
});
