/**
 * The Warden CA over real sockets: `warden ca init|serve|token create|revoke|list` as processes, and
 * the HTTPS API in-process (enroll, renew over mTLS with undici and curl, refusals with distinct
 * codes, admin authorization, the CRL checked by OpenSSL).
 */
import t from 'tap';
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import Database from 'better-sqlite3';
import { createAdminClientFromDir } from '../../src/ca/admin-client.js';
import { runCaTokenCreate } from '../../src/cli/ca-admin.js';
import { CA_PATHS, type IssuedCredentials } from '../../src/ca/api.js';
import { initCa } from '../../src/ca/init.js';
import { x509 } from '../../src/ca/pki.js';
import { startCaServer } from '../../src/ca/server.js';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { makeCsr, ORDERS, repoRoot, serveCaProcessIn, startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { curl } from '../support/clients.js';

const WARDEN = join(repoRoot, 'bin/warden.js');

function warden(...args: string[]) {
  const r = spawnSync(process.execPath, [WARDEN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Reply {
  status: number;
  contentType: string;
  body: Record<string, unknown>;
}

async function post(url: string, body: unknown, agent?: Agent): Promise<Reply> {
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(agent ? { dispatcher: agent } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, contentType: String(res.headers['content-type']), body: JSON.parse(text) as Record<string, unknown> };
}

function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

t.test('CLI: ca init, ca serve, token create, list, revoke', async (t) => {
  const dir = join(tempDir('warden-ca-cli-'), 'ca');
  const usage = warden('ca', 'init', '--dir', dir);
  t.equal(usage.code, 2);
  t.equal(usage.stderr, 'warden ca init: missing --trust-domain DOMAIN (see warden ca init --help)\n');

  const init = warden('ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', dir);
  t.equal(init.code, 0, init.stderr);
  const rootDer = new x509.X509Certificate(readFileSync(join(dir, 'root.crt'), 'utf8')).rawData;
  const fingerprint = `sha256:${createHash('sha256').update(Buffer.from(rootDer)).digest('hex')}`;
  t.match(init.stdout, `root fingerprint: ${fingerprint}\n`);

  const again = warden('ca', 'init', '--trust-domain', TRUST_DOMAIN, '--dir', dir);
  t.equal(again.code, 2, 'an existing CA is never overwritten');
  t.equal(again.stderr.split('\n').length, 2, 'one line');
  t.match(again.stderr, new RegExp(`^warden ca init: ${dir}.*refusing to overwrite — choose an empty --dir\\n$`));
  t.equal(
    readFileSync(join(dir, 'root.crt'), 'utf8').length > 0 &&
      new x509.X509Certificate(readFileSync(join(dir, 'root.crt'), 'utf8')).rawData.byteLength,
    rootDer.byteLength,
  );

  for (const command of [
    ['ca', 'init'],
    ['ca', 'token', 'create'],
  ]) {
    const help = warden(...command, '--help');
    t.equal(help.code, 0);
    t.match(help.stdout, new RegExp(`^Usage: warden ${command.join(' ')}`));
  }

  const { port, config, child, output } = await serveCaProcessIn(t, dir);
  t.match(output(), 'warden CA listening', 'ca serve starts');

  const token = warden('ca', 'token', 'create', '--id', ORDERS, '--dns', 'orders.shop', '--ttl', '10m', '-c', config);
  t.equal(token.code, 0, token.stderr);
  t.match(token.stdout, /^[A-Za-z0-9_-]{43}\n$/, 'the token alone on stdout');
  t.match(token.stderr, `bootstrap token for ${ORDERS}`);
  const names = warden('ca', 'token', 'create', '--id', `${ORDERS}-dns`, '--dns', 'a.shop', '--dns', 'b.shop,c.shop', '-c', config);
  t.equal(names.code, 0, names.stderr);
  t.match(names.stderr, `(dns a.shop, b.shop, c.shop)`, '--dns repeated and comma lists: every name kept');

  const url = `https://127.0.0.1:${port}`;
  const bundle = readFileSync(join(dir, 'bundle.pem'), 'utf8');
  const agent = new Agent({ connect: { ca: bundle } });
  t.teardown(() => agent.close());
  const { csrPem } = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] });
  const enrolled = await post(`${url}${CA_PATHS.enroll}`, { token: token.stdout.trim(), csr: csrPem }, agent);
  t.equal(enrolled.status, 201);
  const serial = (enrolled.body as unknown as IssuedCredentials).serial;

  const list = warden('ca', 'list', '--id', ORDERS, '--url', url, '--dir', dir);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^SERIAL\s+SPIFFE ID\s+KIND\s+STATUS\s+NOT AFTER\n/);
  t.match(list.stdout, new RegExp(`${serial}\\s+${ORDERS.replace(/[/.]/g, '\\$&')}\\s+enroll\\s+valid`));

  const revoke = warden('ca', 'revoke', '--serial', serial, '--reason', 'keyCompromise', '-c', config);
  t.equal(revoke.code, 0, revoke.stderr);
  t.equal(revoke.stdout, `revoked 1: ${serial}\n`);
  const revoked = warden('ca', 'list', '--status', 'revoked', '--json', '-c', config);
  t.same(
    (JSON.parse(revoked.stdout) as { certificates: { serial: string; status: string }[] }).certificates.map((c) => [c.serial, c.status]),
    [[serial, 'revoked']],
  );
  // An ID the CA never issued (here: other case) is not "already revoked": exit 1, one line naming it.
  const typo = ORDERS.replace('/shop/', '/Shop/');
  const neverIssued = warden('ca', 'revoke', '--id', typo, '-c', config);
  t.equal(neverIssued.code, 1, 'revoke --id never issued: exit 1');
  t.equal(neverIssued.stdout, '');
  t.equal(
    neverIssued.stderr,
    `warden ca revoke: No such resource (ERR_CA_NOT_FOUND, HTTP 404): no certificate or bootstrap token of ${typo} is on record (expired ones leave the ledger after database.keep_expired)\n`,
  );
  const revokedAlready = warden('ca', 'revoke', '--id', ORDERS, '-c', config);
  t.equal(revokedAlready.code, 0, revokedAlready.stderr);
  t.equal(
    revokedAlready.stdout,
    'nothing to revoke (already revoked or expired)\nunused bootstrap tokens revoked: 0\n',
    'issued, all revoked: as before (and no token left to revoke)',
  );
  const badUsage = warden('ca', 'revoke', '-c', config);
  t.equal(badUsage.code, 2);
  t.equal(badUsage.stderr, 'warden ca revoke: give exactly one of --serial HEX or --id SPIFFE_ID\n');

  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM: exit 0');
});

t.test('enroll: happy path, and every token refusal with its own code', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  const agent = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => agent.close());
  const enroll = (body: unknown) => post(`${ca.url}${CA_PATHS.enroll}`, body, agent);

  const { token } = ca.createToken({ spiffe_id: ORDERS, dns_names: ['orders.shop'] });
  const { csrPem } = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] });

  // Refusals for the CSR or names leave the token usable.
  const foreign = await enroll({ token, csr: (await makeCsr({ spiffeId: ORDERS, dnsNames: ['payments.shop'] })).csrPem });
  t.match(foreign, { status: 403, contentType: 'application/problem+json', body: { code: 'ERR_CA_IDENTITY_MISMATCH', status: 403 } });
  t.match(foreign.body.detail, 'CSR with a foreign SAN refused');
  const other = await enroll({ token, csr: (await makeCsr({ spiffeId: 'spiffe://example.test/ns/shop/sa/payments' })).csrPem });
  t.match(other.body, { code: 'ERR_CA_IDENTITY_MISMATCH' }, 'another SPIFFE ID');
  t.match((await enroll({ token, csr: 'not a csr' })).body, { code: 'ERR_CA_CSR_INVALID', title: 'Invalid certificate signing request' });
  t.match((await enroll({ token, csr: (await makeCsr({ key: 'rsa1024' })).csrPem })).body, { code: 'ERR_CA_KEY_REJECTED' });

  const ok = await enroll({ token, csr: csrPem });
  t.equal(ok.status, 201, 'the token survived the refused attempts');
  const issued = ok.body as unknown as IssuedCredentials;
  t.equal(issued.spiffe_id, ORDERS);
  t.equal(issued.bundle, ca.rootPem);
  t.equal(issued.chain, ca.intermediatePem);
  const leaf = new x509.X509Certificate(issued.certificate);
  t.same(
    leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => `${n.type}:${n.value}`),
    [`url:${ORDERS}`, 'dns:orders.shop'],
  );
  const dir = tempDir('warden-ca-enroll-');
  writeFileSync(join(dir, 'root.pem'), issued.bundle);
  writeFileSync(join(dir, 'chain.pem'), issued.chain);
  writeFileSync(join(dir, 'leaf.pem'), issued.certificate);
  t.match(
    execFileSync('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')], {
      encoding: 'utf8',
    }),
    /OK/,
  );
  t.equal(eventsNamed('warden.ca.enrolled').length, 1);
  t.match(eventsNamed('warden.ca.enrolled')[0], { 'warden.spiffe.id': ORDERS, 'warden.cert.serial': issued.serial });

  t.match(
    (await enroll({ token, csr: (await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] })).csrPem })).body,
    { code: 'ERR_CA_TOKEN_USED', status: 401 },
    'reused with another key',
  );
  t.match((await enroll({ token: 'A'.repeat(43), csr: csrPem })).body, { code: 'ERR_CA_TOKEN_UNKNOWN' }, 'forged');
  t.match((await enroll({ csr: csrPem })).body, { code: 'ERR_CA_TOKEN_MISSING' }, 'missing');
  const short = ca.createToken({ spiffe_id: ORDERS, ttl_seconds: 1 });
  await new Promise((r) => setTimeout(r, 1100));
  t.match((await enroll({ token: short.token, csr: csrPem })).body, { code: 'ERR_CA_TOKEN_EXPIRED' }, 'expired');

  const rejected = eventsNamed('warden.ca.token_rejected').map((e) => e['warden.code']);
  t.same(rejected, [
    'ERR_CA_IDENTITY_MISMATCH',
    'ERR_CA_IDENTITY_MISMATCH',
    'ERR_CA_TOKEN_USED',
    'ERR_CA_TOKEN_UNKNOWN',
    'ERR_CA_TOKEN_MISSING',
    'ERR_CA_TOKEN_EXPIRED',
  ]);
  t.notOk(JSON.stringify(eventsNamed('warden.ca.token_rejected')).includes(token), 'no event carries a token');

  const big = await enroll({ token, csr: 'x'.repeat(70_000) });
  t.match(big, { status: 413, body: { code: 'ERR_BODY_TOO_LARGE' } });
  t.match((await enroll('{"token":')).body, { code: 'ERR_CA_REQUEST_INVALID' });
  const unknown = await request(`${ca.url}/v1/nope`, { dispatcher: agent });
  t.equal(unknown.statusCode, 404);
  t.notMatch(await unknown.body.text(), /at .*\.ts/, 'no stack trace');
  // A target that is no URL path ("//") is a 404 too, not an internal error.
  const noPath = await request(`${ca.url}//`, { dispatcher: agent });
  t.equal(noPath.statusCode, 404);
  t.match(await noPath.body.json(), { code: 'ERR_CA_NOT_FOUND' });
});

t.test('revoked as keyCompromise by serial: what was renewed from it goes too, and the key is refused again (defect 185)', async (t) => {
  const { ca, dbPath } = await startCaUnderTest(t);
  const anonymous = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => anonymous.close());
  const enroll = async () => {
    const csr = await makeCsr({ spiffeId: ORDERS });
    const body = (
      await post(`${ca.url}${CA_PATHS.enroll}`, { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: csr.csrPem }, anonymous)
    ).body as unknown as IssuedCredentials;
    return { serial: body.serial, certificate: body.certificate, keyPem: csr.keyPem, keys: csr.keys };
  };
  const agents: Agent[] = [];
  t.teardown(() => Promise.all(agents.map((a) => a.close())));
  const renewWith = async (holder: { certificate: string; keyPem: string }, csr?: Awaited<ReturnType<typeof makeCsr>>) => {
    const agent = new Agent({ connect: { ca: ca.rootPem, cert: holder.certificate, key: holder.keyPem } });
    agents.push(agent);
    const next = csr ?? (await makeCsr({ spiffeId: ORDERS }));
    const reply = await post(`${ca.url}${CA_PATHS.renew}`, { csr: next.csrPem }, agent);
    const body = reply.body as unknown as IssuedCredentials & { code?: string };
    return { status: reply.status, code: body.code, serial: body.serial, certificate: body.certificate, keyPem: next.keyPem };
  };
  const leaked = await enroll();
  const sibling = await enroll(); // another replica of the identity, enrolled on its own
  const thief = await renewWith(leaked); // renewed by whoever holds the leaked key
  const workload = await renewWith(leaked); // and by the workload itself: the CA cannot tell them apart
  const thiefAgain = await renewWith(thief);
  t.same([thief.status, workload.status, thiefAgain.status], [201, 201, 201]);

  const result = await ca.revoke({ serial: leaked.serial, reason: 'keyCompromise' });
  t.same(
    [...result.revoked].sort(),
    [leaked.serial, thief.serial, workload.serial, thiefAgain.serial].sort(),
    'the leaked certificate and every certificate renewed from it, on down',
  );
  t.equal(ca.list({ spiffe_id: ORDERS }).find((c) => c.serial === sibling.serial)?.status, 'valid', 'not the sibling');
  t.match(await renewWith(thiefAgain), { status: 403, code: 'ERR_CA_CERT_REVOKED' }, 'the thief’s line renews no more');
  t.match(
    await renewWith(sibling, await makeCsr({ spiffeId: ORDERS, keys: leaked.keys })),
    { status: 400, code: 'ERR_CA_KEY_REJECTED' },
    'the compromised key is not certified again through a sibling',
  );
  const csrWithLeakedKey = await makeCsr({ spiffeId: ORDERS, keys: leaked.keys });
  t.match(
    (
      await post(
        `${ca.url}${CA_PATHS.enroll}`,
        { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: csrWithLeakedKey.csrPem },
        anonymous,
      )
    ).body,
    { code: 'ERR_CA_KEY_REJECTED' },
    'nor with a token',
  );
  const db = new Database(dbPath, { readonly: true });
  t.teardown(() => db.close());
  const renewRows = db.prepare<[], { detail: string }>(`SELECT detail FROM audit WHERE action = 'renew'`).all();
  t.ok(
    renewRows.some((r) => r.detail.includes(`serial ${thiefAgain.serial}, renewed from ${thief.serial}`)),
    'the audit says which certificate a renewal came from',
  );
});

t.test('renew over mTLS (undici and curl); revoked certificates and admin endpoints refused', async (t) => {
  const { ca, dir } = await startCaUnderTest(t);
  const anonymous = new Agent({ connect: { ca: ca.rootPem } });
  t.teardown(() => anonymous.close());
  const first = await makeCsr({ spiffeId: ORDERS });
  const enrolled = (
    await post(`${ca.url}${CA_PATHS.enroll}`, { token: ca.createToken({ spiffe_id: ORDERS }).token, csr: first.csrPem }, anonymous)
  ).body as unknown as IssuedCredentials;
  const workload = new Agent({ connect: { ca: ca.rootPem, cert: enrolled.certificate, key: first.keyPem } });
  t.teardown(() => workload.close());
  const renewUrl = `${ca.url}${CA_PATHS.renew}`;

  t.match((await post(renewUrl, { csr: (await makeCsr()).csrPem }, anonymous)).body, { code: 'ERR_CA_CLIENT_CERT_REQUIRED', status: 401 });
  t.match(
    (await post(renewUrl, { csr: (await makeCsr({ keys: first.keys })).csrPem }, workload)).body,
    { code: 'ERR_CA_CSR_INVALID' },
    'same key refused',
  );
  t.match((await post(renewUrl, { csr: (await makeCsr({ spiffeId: 'spiffe://example.test/ns/x/sa/y' })).csrPem }, workload)).body, {
    code: 'ERR_CA_IDENTITY_MISMATCH',
  });
  const second = await makeCsr({ spiffeId: ORDERS });
  const renewed = await post(renewUrl, { csr: second.csrPem }, workload);
  t.equal(renewed.status, 201);
  const renewedCreds = renewed.body as unknown as IssuedCredentials;
  t.equal(renewedCreds.spiffe_id, ORDERS);
  t.not(renewedCreds.serial, enrolled.serial);
  t.match(ca.list({ spiffe_id: ORDERS }), [
    { serial: renewedCreds.serial, kind: 'renew' },
    { serial: enrolled.serial, kind: 'enroll' },
  ]);

  // curl renews with the renewed certificate.
  const files = tempDir('warden-ca-curl-');
  writeFileSync(join(files, 'cert.pem'), renewedCreds.certificate);
  writeFileSync(join(files, 'key.pem'), second.keyPem, { mode: 0o600 });
  writeFileSync(join(files, 'ca.pem'), ca.rootPem);
  const third = await makeCsr({ spiffeId: ORDERS });
  const viaCurl = await curl([
    '--cert',
    join(files, 'cert.pem'),
    '--key',
    join(files, 'key.pem'),
    '--cacert',
    join(files, 'ca.pem'),
    '-H',
    'content-type: application/json',
    '--data-binary',
    JSON.stringify({ csr: third.csrPem }),
    renewUrl,
  ]);
  t.equal(viaCurl.status, 201, viaCurl.stderr);
  t.equal((JSON.parse(viaCurl.body) as IssuedCredentials).spiffe_id, ORDERS);

  // A workload certificate is not an administrator.
  const adminUrl = `${ca.url}${CA_PATHS.adminTokens}`;
  t.match((await post(adminUrl, { spiffe_id: ORDERS }, workload)).body, { code: 'ERR_CA_ADMIN_REQUIRED', status: 403 });
  t.match((await post(adminUrl, { spiffe_id: ORDERS }, anonymous)).body, { code: 'ERR_CA_CLIENT_CERT_REQUIRED' });

  // Revoked: renewal refused. (Superseded: one certificate; keyCompromise reaches its renewals too, below.)
  t.same(await ca.revoke({ serial: enrolled.serial, reason: 'superseded' }), { revoked: [enrolled.serial], revoked_tokens: [] });
  t.match((await post(renewUrl, { csr: (await makeCsr()).csrPem }, workload)).body, { code: 'ERR_CA_CERT_REVOKED', status: 403 });

  // The admin identity from the CA directory can use the admin API.
  const admin = createAdminClientFromDir(ca.url, dir);
  t.teardown(() => admin.close());
  const created = await admin.createToken({ spiffe_id: 'spiffe://example.test/ns/shop/sa/cart', ttl_seconds: 60 });
  t.match(created, { spiffe_id: 'spiffe://example.test/ns/shop/sa/cart', dns_names: [] });
  await t.rejects(admin.createToken({ spiffe_id: 'spiffe://other.test/ns/a/sa/b' }), { code: 'ERR_CA_REQUEST_INVALID' });
  await t.rejects(
    admin.createToken({ spiffe_id: `spiffe://${TRUST_DOMAIN}/warden/admin` }),
    { code: 'ERR_CA_REQUEST_INVALID' },
    'reserved',
  );
  t.same(
    (await admin.listCertificates({ status: 'revoked' })).map((c) => c.serial),
    [enrolled.serial],
  );
  const byId = await admin.revoke({ spiffe_id: ORDERS });
  t.equal(byId.revoked.length, 2, 'by identity: the two still valid');
  t.same(await admin.revoke({ spiffe_id: ORDERS }), { revoked: [], revoked_tokens: [] }, 'by identity again: nothing left, 200');
  await t.rejects(
    admin.revoke({ spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/nobody/sa/none` }),
    {
      status: 404,
      code: 'ERR_CA_NOT_FOUND',
      detail: `no certificate or bootstrap token of spiffe://${TRUST_DOMAIN}/ns/nobody/sa/none is on record (expired ones leave the ledger after database.keep_expired)`,
    },
    'by an identity never issued: 404',
  );

  // The CRL lists the revoked serials, is signed by the intermediate, and OpenSSL parses it.
  const crlRes = await request(`${ca.url}${CA_PATHS.crl}`, { dispatcher: anonymous });
  t.equal(crlRes.headers['content-type'], 'application/pkix-crl');
  const der = Buffer.from(await crlRes.body.arrayBuffer());
  writeFileSync(join(files, 'crl.der'), der);
  writeFileSync(join(files, 'chain.pem'), ca.rootPem + ca.intermediatePem);
  const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', join(files, 'crl.der'), '-text', '-noout'], { encoding: 'utf8' });
  for (const serial of [enrolled.serial, ...byId.revoked]) t.match(text, `Serial Number: ${serial.toUpperCase()}`);
  t.match(text, /Superseded/);
  t.match(text, /X509v3 CRL Number:/);
  const verified = spawnSync(
    'openssl',
    ['crl', '-inform', 'DER', '-in', join(files, 'crl.der'), '-CAfile', join(files, 'chain.pem'), '-noout'],
    {
      encoding: 'utf8',
    },
  );
  t.match(verified.stderr + verified.stdout, /verify OK/);
  const crl = new x509.X509Crl(der);
  t.ok(crl.nextUpdate && crl.nextUpdate.getTime() - crl.thisUpdate.getTime() === 10 * 60_000, 'nextUpdate = thisUpdate + 10m');

  const bundle = await request(`${ca.url}${CA_PATHS.bundle}`, { dispatcher: anonymous });
  t.equal(bundle.headers['content-type'], 'application/pem-certificate-chain');
  t.equal(await bundle.body.text(), ca.rootPem);
  const signer = await request(`${ca.url}${CA_PATHS.intermediate}`, { dispatcher: anonymous });
  t.equal(signer.headers['content-type'], 'application/pem-certificate-chain');
  t.equal(await signer.body.text(), ca.intermediatePem, '/v1/intermediate: what signs the CRL');
});

t.test('closing the CA with requests in flight: they finish first, nothing writes to a closed database', async (t) => {
  const { connect } = await import('node:tls');
  const { ca } = await startCaUnderTest(t);
  const url = new URL(ca.url);
  // Half an enrollment body: the handler is reading it when the CA closes.
  const sockets = await Promise.all(
    [1, 2, 3].map(
      () =>
        new Promise<import('node:tls').TLSSocket>((resolve) => {
          const socket = connect({ host: url.hostname, port: Number(url.port), ca: ca.rootPem }, () => {
            socket.write(
              `POST ${CA_PATHS.enroll} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{"token":"`,
            );
            resolve(socket);
          });
          socket.on('error', () => undefined);
        }),
    ),
  );
  await new Promise((r) => setTimeout(r, 100));
  let uncaught: unknown;
  const onUncaught = (err: unknown) => (uncaught = err);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  await ca.close();
  await new Promise((r) => setTimeout(r, 200));
  t.equal(uncaught, undefined, 'no handler touched the closed database');
  for (const s of sockets) t.ok(s.destroyed || s.readableEnded, 'the cut-off clients were closed');
});

t.test('SPIFFE IDs are checked by the sidecar’s own parser: dot segments, percent-encoding, commas refused', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  const bad = [
    `spiffe://${TRUST_DOMAIN}/ns/../sa/x`,
    `spiffe://${TRUST_DOMAIN}/ns/%2e%2e/sa/x`,
    `spiffe://${TRUST_DOMAIN}/ns/a,b/sa/x`,
    `spiffe://${TRUST_DOMAIN}/ns/.`,
    `spiffe://${TRUST_DOMAIN}/ns//sa/x`,
    `spiffe://${TRUST_DOMAIN}/ns/shop/sa/x?q`,
    `spiffe://${TRUST_DOMAIN}/ns/../warden/ca`, // past the reserved-prefix check, were it textual
  ];
  for (const id of bad) {
    t.throws(() => ca.createToken({ spiffe_id: id }), { code: 'ERR_CA_REQUEST_INVALID' }, `token for ${id} refused`);
    await t.rejects(
      runCaTokenCreate(['--id', id, '--url', 'https://127.0.0.1:1', '--dir', '/nonexistent']),
      {
        name: 'UsageError',
        message: /--id must be a SPIFFE ID/,
      },
      `warden ca token create --id ${id}: usage error`,
    );
  }
  for (const id of [`spiffe://${TRUST_DOMAIN}/warden`, `spiffe://${TRUST_DOMAIN}/warden/ca`, `spiffe://${TRUST_DOMAIN}/warden/x/y`])
    t.throws(
      () => ca.createToken({ spiffe_id: id }),
      { code: 'ERR_CA_REQUEST_INVALID', detail: /reserved for the CA/ },
      `${id} is reserved`,
    );
  t.throws(
    () => ca.createToken({ spiffe_id: 'spiffe://other.test/ns/shop/sa/x' }),
    { code: 'ERR_CA_REQUEST_INVALID', detail: /trust domain example\.test/ },
    'another trust domain',
  );
  t.equal(eventsNamed('warden.ca.token_created').length, 0, 'no token was created');
  const ok = ca.createToken({ spiffe_id: `spiffe://${TRUST_DOMAIN}/ns/shop.v2/sa/orders_1-a` });
  t.ok(ok.token, 'dots, dashes and underscores inside segments are fine');
  await t.rejects(
    ca.revoke({ spiffe_id: bad[0]! }),
    { code: 'ERR_CA_REQUEST_INVALID' },
    'revoke by such an ID: refused (revoke by serial)',
  );
});

t.test(
  'an expiring intermediate: an error in the log at startup and when issuing stops; under a minute left, nothing is issued',
  async (t) => {
    const start = async (secondsLeft: number) => {
      const dir = join(tempDir('warden-ca-expiring-'), 'ca');
      await initCa({ trustDomain: TRUST_DOMAIN, dir, intermediateLifetimeDays: secondsLeft / 86_400 });
      const logs: Record<string, unknown>[] = [];
      const config = resolveCaConfig({
        trust_domain: TRUST_DOMAIN,
        dir,
        listen: { host: '127.0.0.1', port: 0 },
        log: { level: 'silent' },
      });
      const logger = createLogger({ level: 'error', destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
      return { server: () => startCaServer({ config, logger }), logs };
    };
    const soon = await start(300);
    const ca = await soon.server();
    t.teardown(() => ca.close());
    t.match(soon.logs, [{ level: 'error', msg: /issuing CA certificate expires soon/ }], 'five minutes left: an error at startup');
    // 64 s left: the CA starts; once under a minute is left it refuses to issue (and says so), instead
    // of handing out certificates that are expired on arrival.
    const late = await start(64);
    const lateCa = await late.server();
    t.teardown(() => lateCa.close());
    const end = new x509.X509Certificate(lateCa.intermediatePem).notAfter.getTime();
    await new Promise((r) => setTimeout(r, Math.max(0, end - 60_000 - Date.now()) + 200));
    const agent = new Agent({ connect: { ca: lateCa.rootPem } });
    t.teardown(() => agent.close());
    const { csrPem } = await makeCsr({ spiffeId: ORDERS });
    const refused = await post(
      `${lateCa.url}${CA_PATHS.enroll}`,
      { token: lateCa.createToken({ spiffe_id: ORDERS }).token, csr: csrPem },
      agent,
    );
    t.match(
      refused,
      { status: 503, body: { code: 'ERR_CA_ISSUER_EXPIRED', detail: /issuing CA certificate is about to expire/ } },
      'enroll refused',
    );
    const deadline = Date.now() + 5000;
    const stopped = () => late.logs.find((l) => /issuing CA certificate has expired or is about to/.test(String(l.msg)));
    while (!stopped() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.match(stopped(), { level: 'error' }, 'and logged when issuing stopped');
    await t.rejects(
      initCa({ trustDomain: TRUST_DOMAIN, dir: join(tempDir('warden-ca-expired-'), 'ca'), intermediateLifetimeDays: 2 / 86_400 }),
      {
        code: 'ERR_CA_ISSUER_EXPIRED',
      },
      'ca init with an intermediate of two seconds makes no admin certificate',
    );
  },
);
