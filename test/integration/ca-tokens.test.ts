/**
 * Revoking bootstrap tokens, against `warden ca serve` as a process and the `warden ca` CLI: the
 * spare token of an identity revoked by `revoke --id` enrolled a fresh certificate for it (no way
 * to invalidate a token existed); `ca token list|revoke`; a revoked token answered as an unknown one.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { createAdminClientFromDir } from '../../src/ca/admin-client.js';
import {
  CA_PATHS,
  type CreateTokenRequest,
  type IssuedCredentials,
  type RevokeRequest,
  type RevokeTokensRequest,
} from '../../src/ca/api.js';
import { makeCsr, ORDERS, repoRoot, serveCaProcessIn, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';

const WARDEN = join(repoRoot, 'bin/warden.js');

/** The CLI as a process, run asynchronously: independent runs overlap (each costs seconds of module loading). */
function warden(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WARDEN, ...args], { timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function post(url: string, body: unknown, agent: Agent): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    dispatcher: agent,
  });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

/** `warden ca init` and `warden ca serve` as processes, on a free port; killed by the test's teardown. */
async function serveCaProcess(t: Test): Promise<{ dir: string; config: string; url: string; agent: Agent }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'warden-ca-proc-')), 'ca');
  const init = await warden('ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', dir);
  t.equal(init.code, 0, init.stderr);
  const { port, config, output } = await serveCaProcessIn(t, dir);
  t.match(output(), 'warden CA listening', 'ca serve starts');
  // No keep-alive (pipelining 0): spawnSync blocks this event loop past the CA's keep-alive, a kept
  // connection would be found closed by the next request.
  const agent = new Agent({ connect: { ca: readFileSync(join(dir, 'bundle.pem'), 'utf8') }, pipelining: 0 });
  t.teardown(() => agent.close());
  return { dir, config, url: `https://127.0.0.1:${port}`, agent };
}

t.test('revoke --id also revokes the identity’s unused bootstrap tokens (a spare token enrolled after the revocation)', async (t) => {
  const { dir, config, url, agent } = await serveCaProcess(t);
  const SPARE = `spiffe://${TRUST_DOMAIN}/ns/demo/sa/spare`;
  const createToken = async (id: string) => {
    const r = await warden('ca', 'token', 'create', '--id', id, '--ttl', '1h', '-c', config);
    t.equal(r.code, 0, r.stderr);
    const tokenId = /, id ([0-9a-f]{16})\n$/.exec(r.stderr)?.[1];
    t.ok(tokenId, 'token create prints the token id on stderr');
    return { token: r.stdout.trim(), id: tokenId as string };
  };
  // The admin client where the CLI adds nothing (each CLI run costs seconds of module loading); a
  // client per call, for the same reason as the agent's pipelining 0.
  const admin = {
    call: async <T>(fn: (client: ReturnType<typeof createAdminClientFromDir>) => Promise<T>): Promise<T> => {
      const client = createAdminClientFromDir(url, dir);
      try {
        return await fn(client);
      } finally {
        await client.close();
      }
    },
    createToken: (r: CreateTokenRequest) => admin.call((c) => c.createToken(r)),
    revoke: (r: RevokeRequest) => admin.call((c) => c.revoke(r)),
    revokeTokens: (r: RevokeTokensRequest) => admin.call((c) => c.revokeTokens(r)),
    listCertificates: (q: { spiffe_id: string }) => admin.call((c) => c.listCertificates(q)),
  };
  const enroll = async (token: string, spiffeId: string) =>
    post(`${url}${CA_PATHS.enroll}`, { token, csr: (await makeCsr({ spiffeId })).csrPem }, agent);

  // The repro (token-after-revoke.sh): a first certificate, a spare token kept for re-enrollment.
  const [first, spare] = await Promise.all([createToken(SPARE), createToken(SPARE)]);
  const enrolled = await enroll(first.token, SPARE);
  t.equal(enrolled.status, 201);
  const serial = (enrolled.body as unknown as IssuedCredentials).serial;

  const revoke = await warden('ca', 'revoke', '--id', SPARE, '--reason', 'keyCompromise', '-c', config);
  t.equal(revoke.code, 0, revoke.stderr);
  t.equal(revoke.stdout, `revoked 1: ${serial}\nunused bootstrap tokens revoked: 1 (${spare.id})\n`);

  const after = await enroll(spare.token, SPARE);
  const forged = await enroll('B'.repeat(43), SPARE);
  t.equal(after.status, 401, 'the spare token enrolls nothing after revoke --id');
  t.same(after.body, forged.body, 'answered exactly as a token the CA never issued (no oracle)');
  t.match(after.body, { code: 'ERR_CA_TOKEN_UNKNOWN' });
  t.same(
    (await admin.listCertificates({ spiffe_id: SPARE })).map((c) => [c.serial, c.status]),
    [[serial, 'revoked']],
    'no new certificate for the revoked identity',
  );

  // ca token list: id, identity, state, dates; never the token.
  const tokens = await warden('ca', 'token', 'list', '--id', SPARE, '-c', config);
  t.equal(tokens.code, 0, tokens.stderr);
  const lines = tokens.stdout.trimEnd().split('\n');
  t.match(lines[0], /^ID\s+SPIFFE ID\s+STATE\s+CREATED\s+EXPIRES$/);
  t.same(
    lines
      .slice(1)
      .map((l) => l.split(/\s+/).slice(0, 3))
      .sort(),
    [
      [first.id, SPARE, 'used'],
      [spare.id, SPARE, 'revoked'],
    ].sort(),
  );
  t.notOk(tokens.stdout.includes(first.token) || tokens.stdout.includes(spare.token), 'no token in the listing');

  // ca token revoke: by token id, by identity; revoke --serial leaves tokens alone.
  const [one, two, three] = await Promise.all([1, 2, 3].map(() => admin.createToken({ spiffe_id: ORDERS })));
  const byTokenId = await warden('ca', 'token', 'revoke', '--token-id', one!.id, '-c', config);
  t.equal(byTokenId.code, 0, byTokenId.stderr);
  t.equal(byTokenId.stdout, `revoked 1 bootstrap token: ${one!.id}\n`);
  t.same(await admin.revokeTokens({ token_id: one!.id }), { revoked: [] }, 'again: nothing to revoke, 200');
  t.match((await enroll(one!.token, ORDERS)).body, { code: 'ERR_CA_TOKEN_UNKNOWN' }, 'a revoked token is refused');
  const ordersCert = await enroll(two!.token, ORDERS);
  t.equal(ordersCert.status, 201, 'the identity’s other tokens still enroll');
  const ordersSerial = (ordersCert.body as unknown as IssuedCredentials).serial;
  t.same(await admin.revoke({ serial: ordersSerial }), { revoked: [ordersSerial], revoked_tokens: [] }, 'by serial: tokens untouched');
  const byIdentity = await warden('ca', 'token', 'revoke', '--id', ORDERS, '-c', config);
  t.equal(byIdentity.stdout, `revoked 1 bootstrap token: ${three!.id}\n`, 'revoke --serial left the token; token revoke --id takes it');
  const json = JSON.parse((await warden('ca', 'token', 'list', '--id', ORDERS, '--json', '--url', url, '--dir', dir)).stdout) as {
    tokens: { id: string; state: string; revoked_at?: string; used_at?: string }[];
  };
  t.same(Object.fromEntries(json.tokens.map((k) => [k.id, k.state])), { [one!.id]: 'revoked', [two!.id]: 'used', [three!.id]: 'revoked' });
  t.ok(json.tokens.every((k) => (k.state === 'revoked') === (k.revoked_at !== undefined)));
  t.notOk(JSON.stringify(json).includes(three!.token), 'no token in the JSON');

  // Refusals and help: independent runs, side by side.
  const [unknown, usage, ...helps] = await Promise.all([
    warden('ca', 'token', 'revoke', '--token-id', '0123456789abcdef', '-c', config),
    warden('ca', 'token', 'revoke', '-c', config),
    warden('ca', 'token', 'list', '--help'),
    warden('ca', 'token', 'revoke', '--help'),
  ]);
  t.equal(unknown.code, 1);
  t.equal(
    unknown.stderr,
    'warden ca token revoke: No such resource (ERR_CA_NOT_FOUND, HTTP 404): no bootstrap token with id 0123456789abcdef\n',
  );
  await t.rejects(admin.revokeTokens({ spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/nobody/sa/none` }), {
    status: 404,
    code: 'ERR_CA_NOT_FOUND',
    detail: `no bootstrap token of spiffe://${TRUST_DOMAIN}/ns/nobody/sa/none is on record (expired ones leave the ledger after database.keep_expired)`,
  });
  await t.rejects(admin.revokeTokens({ token_id: 'nope' }), { status: 400, code: 'ERR_CA_REQUEST_INVALID' });
  await t.rejects(admin.revokeTokens({}), { status: 400, code: 'ERR_CA_REQUEST_INVALID' });
  t.equal(usage.code, 2);
  t.equal(usage.stderr, 'warden ca token revoke: give exactly one of --token-id ID or --id SPIFFE_ID\n');
  for (const [i, command] of ['ca token list', 'ca token revoke'].entries()) {
    t.equal(helps[i]?.code, 0);
    t.match(helps[i]?.stdout, new RegExp(`^Usage: warden ${command} `));
  }

  // Audited like the other admin operations.
  const db = new Database(join(dir, 'ca.db'), { readonly: true });
  t.teardown(() => db.close());
  const rows = db.prepare(`SELECT action, subject, outcome, detail FROM audit ORDER BY id`).all() as Record<string, string>[];
  t.match(
    rows.find((r) => r.action === 'revoke' && r.subject === SPARE),
    { outcome: 'ok', detail: `keyCompromise: ${serial}; bootstrap tokens revoked: ${spare.id}` },
  );
  t.same(
    rows.filter((r) => r.action === 'enroll' && r.outcome === 'refused').map((r) => [r.subject, r.detail]),
    [
      [SPARE, 'ERR_CA_TOKEN_UNKNOWN (ca.token.revoked)'],
      [null, 'ERR_CA_TOKEN_UNKNOWN'],
      [ORDERS, 'ERR_CA_TOKEN_UNKNOWN (ca.token.revoked)'],
    ],
    'the audit row says what the answer does not',
  );
  t.same(
    rows.filter((r) => r.action === 'token.revoke').map((r) => [r.subject, r.outcome, r.detail]),
    [
      [ORDERS, 'ok', `token ${one!.id}: ${one!.id}`],
      [ORDERS, 'ok', `token ${one!.id}: nothing to revoke`],
      [ORDERS, 'ok', `every unused token: ${three!.id}`],
      [null, 'refused', 'ERR_CA_REQUEST_INVALID'],
      [null, 'refused', 'ERR_CA_REQUEST_INVALID'],
    ],
  );
});

t.test('token revocation in-process: events, the admin-only token endpoints, methods per path', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  const agent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => agent.close());
  const { token, id } = ca.createToken({ spiffe_id: ORDERS });
  t.same(ca.revokeTokens({ token_id: id }), { revoked: [id] });
  t.match(eventsNamed('warden.ca.token_revoked'), [
    { 'warden.spiffe.id': ORDERS, 'warden.count': 1, 'warden.detail': id, 'enduser.id': 'local' },
  ]);
  const refused = await post(`${ca.url}${CA_PATHS.enroll}`, { token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem }, agent);
  t.same(refused.body, {
    type: 'urn:warden:problem:ca-token-unknown',
    title: 'Bootstrap token not recognised',
    status: 401,
    code: 'ERR_CA_TOKEN_UNKNOWN',
  });
  t.match(eventsNamed('warden.ca.token_rejected'), [
    { 'warden.code': 'ERR_CA_TOKEN_UNKNOWN', 'warden.rule': 'ca.token.revoked', 'warden.spiffe.id': ORDERS },
  ]);
  t.notOk(JSON.stringify(eventsNamed('warden.ca.token_rejected')).includes(token), 'no event carries the token');
  t.match(ca.listTokens({ spiffe_id: ORDERS }), [{ id, state: 'revoked' }]);

  // GET lists, POST creates; neither without the admin identity.
  const list = await request(`${ca.url}${CA_PATHS.adminTokens}`, { dispatcher: agent });
  t.equal(list.statusCode, 401);
  t.match(await list.body.json(), { code: 'ERR_CA_CLIENT_CERT_REQUIRED' });
  t.match((await post(`${ca.url}${CA_PATHS.adminTokenRevocations}`, { token_id: id }, agent)).body, {
    code: 'ERR_CA_CLIENT_CERT_REQUIRED',
  });
  const put = await request(`${ca.url}${CA_PATHS.adminTokens}`, { method: 'PUT', dispatcher: agent });
  t.equal(put.statusCode, 405);
  t.equal(put.headers.allow, 'POST, GET');
  await put.body.dump();
  const getEnroll = await request(`${ca.url}${CA_PATHS.enroll}`, { dispatcher: agent });
  t.equal(getEnroll.statusCode, 405);
  t.equal(getEnroll.headers.allow, 'POST', 'one method: as before');
  await getEnroll.body.dump();
});
