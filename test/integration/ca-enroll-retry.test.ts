/**
 * An enrollment whose answer was lost (timeout, reset, the CA killed after its commit): the retry with
 * the same token and the same key gets the certificate the token paid for, again; any other key, other
 * names, or a certificate since revoked or expired is still ERR_CA_TOKEN_USED.
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import t from 'tap';
import type { IssuedCredentials } from '../../src/ca/api.js';
import { makeCsr, ORDERS, postToCa, startCaUnderTest } from '../support/ca-harness.js';

type Reply = { status: number; body: IssuedCredentials & { code?: string } };

const enrollAt = (url: string, ca: string, body: unknown): Promise<Reply> => postToCa<Reply['body']>(`${url}/v1/enroll`, body, { ca });

/**
 * A TCP relay to the CA that passes the request on and loses the answer: once the client has sent
 * `requestBytes` (its TLS handshake and request), whatever the CA sends back is dropped; `close`
 * cuts the client off.
 */
async function answerLosingRelay(port: number, requestBytes: number): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => void (client.bytesRead < requestBytes && client.write(d)));
    client.on('error', () => upstream.destroy()).on('close', () => upstream.destroy());
    upstream.on('error', () => client.destroy()).on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(relay.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), relay.close(() => resolve()))),
  };
}

t.test('the answer is lost after the commit: the retry with the same token and key gets that certificate again', async (t) => {
  const { ca, eventsNamed } = await startCaUnderTest(t);
  const { token } = ca.createToken({ spiffe_id: ORDERS, dns_names: ['orders.shop'] });
  const csr = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'] });
  // The JSON body alone is longer than the TLS handshake's client bytes: past it, the request is out.
  const relay = await answerLosingRelay(ca.port, JSON.stringify({ token, csr: csr.csrPem }).length);
  const lost = enrollAt(relay.url, ca.rootPem, { token, csr: csr.csrPem });
  lost.catch(() => {});
  const deadline = Date.now() + 5_000;
  while (ca.list({ spiffe_id: ORDERS }).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await relay.close();
  await t.rejects(lost, 'the first answer is lost');
  const ledger = ca.list({ spiffe_id: ORDERS });
  t.equal(ledger.length, 1, 'yet the CA committed: one certificate in the ledger');
  t.equal(ca.listTokens({ spiffe_id: ORDERS })[0]?.state, 'used', 'and the token is used');

  const retry = await enrollAt(ca.url, ca.rootPem, { token, csr: csr.csrPem });
  t.equal(retry.status, 201, 'the retry (same token, same CSR) is answered 201');
  t.equal(retry.body.serial, ledger[0]?.serial, 'with the certificate already issued');
  t.equal(retry.body.chain, ca.intermediatePem, 'its chain');
  t.equal(retry.body.bundle, ca.rootPem, 'and the bundle, as the first answer');
  t.match(retry.body.certificate, /^-----BEGIN CERTIFICATE-----/);
  t.equal(ca.list({ spiffe_id: ORDERS }).length, 1, 'nothing new issued');

  const remade = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'], keys: csr.keys });
  const again = await enrollAt(ca.url, ca.rootPem, { token, csr: remade.csrPem });
  t.match(
    again,
    { status: 201, body: { serial: retry.body.serial, certificate: retry.body.certificate } },
    'a new CSR for the same key: the same',
  );
  t.match(eventsNamed('warden.ca.enrolled').at(-1), { 'warden.cert.serial': retry.body.serial, 'warden.detail': /sent again/ });
});

t.test('a used token with another key, other names, or a certificate revoked or expired: ERR_CA_TOKEN_USED', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { token } = ca.createToken({ spiffe_id: ORDERS, dns_names: ['orders.shop'] });
  const csr = await makeCsr({ spiffeId: ORDERS });
  const first = await enrollAt(ca.url, ca.rootPem, { token, csr: csr.csrPem });
  t.equal(first.status, 201);
  const used = { status: 401, body: { code: 'ERR_CA_TOKEN_USED' } };
  t.match(await enrollAt(ca.url, ca.rootPem, { token, csr: (await makeCsr({ spiffeId: ORDERS })).csrPem }), used, 'another key');
  const moreNames = await makeCsr({ spiffeId: ORDERS, dnsNames: ['orders.shop'], keys: csr.keys });
  t.match(await enrollAt(ca.url, ca.rootPem, { token, csr: moreNames.csrPem }), used, 'the same key asking for other (granted) names');
  t.match(await enrollAt(ca.url, ca.rootPem, { token, csr: 'not a csr' }), used, 'no CSR at all');
  await ca.revoke({ serial: first.body.serial });
  t.match(await enrollAt(ca.url, ca.rootPem, { token, csr: csr.csrPem }), used, 'the same key after its certificate was revoked');

  const short = await startCaUnderTest(t, { certificates: { lifetime: '2s', backdate: '0s' } });
  const spare = short.ca.createToken({ spiffe_id: ORDERS });
  const brief = await enrollAt(short.ca.url, short.ca.rootPem, { token: spare.token, csr: csr.csrPem });
  t.equal(brief.status, 201);
  await new Promise((r) => setTimeout(r, Date.parse(brief.body.not_after) - Date.now() + 200));
  t.match(await enrollAt(short.ca.url, short.ca.rootPem, { token: spare.token, csr: csr.csrPem }), used, 'once its certificate expired');
});

t.test('two concurrent enrollments with one token and one key: one certificate, both answered with it', async (t) => {
  const { ca } = await startCaUnderTest(t);
  const { token } = ca.createToken({ spiffe_id: ORDERS });
  const csr = await makeCsr({ spiffeId: ORDERS });
  const replies = await Promise.all([1, 2, 3].map(() => enrollAt(ca.url, ca.rootPem, { token, csr: csr.csrPem })));
  t.same(
    replies.map((r) => r.status),
    [201, 201, 201],
  );
  t.equal(new Set(replies.map((r) => r.body.serial)).size, 1, 'the same serial');
  t.equal(ca.list({ spiffe_id: ORDERS }).length, 1, 'one certificate in the ledger');
});
