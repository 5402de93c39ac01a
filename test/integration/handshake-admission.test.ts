/**
 * limits.handshake_failures: a client network that keeps failing TLS handshakes against a listener
 * that asks for client certificates is refused new connections before any TLS processing (a
 * fabricated certificate chain costs OpenSSL one signature check per certificate, ~170 ms of CPU
 * for 60 of them, and Node cannot bound it). Real sockets: failures from 127.0.0.1, a good caller
 * from 127.0.0.2, which the same listener tells apart.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import t from 'tap';
import { exportPrivateKeyPem } from '../../src/ca/keys.js';
import { EC_P256, x509 } from '../../src/ca/pki.js';
import { startTestBackend } from '../support/backend.js';
import { statusOf } from '../support/clients.js';
import { fakeClientChain } from '../support/fake-chain.js';
import { startTestSidecar, type TestSidecar } from '../support/sidecar.js';

interface Issued {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  privateKey: webcrypto.CryptoKey;
}

async function issue(subject: string, issuer: Issued | undefined, kind: 'ca' | 'server' | 'client'): Promise<Issued> {
  const pair = await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const usage = kind === 'ca' ? x509.KeyUsageFlags.keyCertSign : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(kind === 'ca', undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    await x509.SubjectKeyIdentifierExtension.create(pair.publicKey),
  ];
  if (kind === 'server') {
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]));
    extensions.push(new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }]));
  }
  if (kind === 'client') extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]));
  if (issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: webcrypto.getRandomValues(new Uint8Array(8)).reduce((s, b) => s + (b | 0x10).toString(16), ''),
    subject: `CN=${subject}`,
    issuer: issuer ? issuer.cert.subject : `CN=${subject}`,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 30 * 86_400_000),
    signingAlgorithm: EC_P256,
    publicKey: pair.publicKey,
    signingKey: issuer ? issuer.privateKey : pair.privateKey,
    extensions,
  });
  return { certPem: `${cert.toString('pem')}\n`, keyPem: await exportPrivateKeyPem(pair.privateKey), cert, privateKey: pair.privateKey };
}

/** A CA, the sidecar's certificate, a client certificate it trusts and a self-signed one it does not. */
async function pki() {
  const root = await issue('admission root', undefined, 'ca');
  const server = await issue('localhost', root, 'server');
  const good = await issue('good caller', root, 'client');
  const stranger = await issue('stranger', undefined, 'client');
  const dir = mkdtempSync(join(tmpdir(), 'warden-admission-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  return {
    root,
    good,
    stranger,
    tls: { cert: file('server.crt', server.certPem), key: file('server.key', server.keyPem), client_ca: file('ca.crt', root.certPem) },
  };
}

interface Outcome {
  /** The client completed its side of the handshake. */
  secure: boolean;
  /** HTTP status of GET /probe, 0 when there was none. */
  status: number;
  /** Bytes the server sent on the TCP connection (a ServerHello is some). */
  bytesReceived: number;
  error: string | undefined;
}

/** A TLS connection from `localAddress` presenting `options`, then one GET. */
function connectFrom(localAddress: string, port: number, options: ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const tcp = netConnect({ port, host: '127.0.0.1', localAddress });
    const socket = tlsConnect({ socket: tcp, servername: 'localhost', ALPNProtocols: ['http/1.1'], ...options });
    let secure = false;
    let text = '';
    let error: string | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ secure, status: statusOf(text), bytesReceived: tcp.bytesRead, error });
    };
    const timer = setTimeout(done, 5000);
    socket.once('secureConnect', () => {
      secure = true;
      socket.write('GET /probe HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.once('close', done);
  });
}

const throttledEvents = (s: TestSidecar) => s.events.filter((e) => e.name === 'warden.tls.handshake_throttled');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Connects from 127.0.0.1 with `options` every 200 ms until served (at most `tries` times). */
async function admittedAgain(port: number, options: ConnectionOptions, tries = 40): Promise<Outcome> {
  let last = await connectFrom('127.0.0.1', port, options);
  for (let i = 1; i < tries && last.status !== 200; i++) {
    await sleep(200);
    last = await connectFrom('127.0.0.1', port, options);
  }
  return last;
}

t.test('client_certificates: require — after burst failed handshakes the network is closed before the handshake', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { root, good, stranger, tls } = await pki();
  const s = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { ...tls, client_certificates: 'require' } } },
    limits: { handshake_failures: { burst: 3, per: '1500ms' } },
  });
  const asGood: ConnectionOptions = { ca: root.certPem, cert: good.certPem, key: good.keyPem };
  const asStranger: ConnectionOptions = { ca: root.certPem, cert: stranger.certPem, key: stranger.keyPem };
  const chain = fakeClientChain(8);
  const asFakeChain: ConnectionOptions = { ca: root.certPem, cert: chain.cert, key: chain.key };

  let served = 0;
  for (let i = 0; i < 30; i++) if ((await connectFrom('127.0.0.1', s.port, asGood)).status === 200) served++;
  t.equal(served, 30, 'a client whose handshakes succeed is never throttled (30 connections in a row)');

  for (let i = 0; i < 3; i++) {
    const r = await connectFrom('127.0.0.1', s.port, i === 2 ? asFakeChain : asStranger);
    t.equal(r.status, 0, `failed handshake ${i + 1} of the burst (${i === 2 ? 'fabricated chain' : 'unknown CA'}) is refused`);
    t.ok(r.bytesReceived > 0, `…after a real handshake attempt (the server answered ${r.bytesReceived} bytes)`);
  }
  const failedBefore = s.events.filter((e) => e.name === 'warden.tls.handshake_failed').length;
  t.equal(failedBefore, 3, 'each failure raised warden.tls.handshake_failed');
  t.ok(
    s.events.filter((e) => e.name === 'warden.tls.handshake_failed').every((e) => e['client.address'] === '127.0.0.1'),
    'with the client address, also for a certificate refused after the handshake',
  );

  const refused = await connectFrom('127.0.0.1', s.port, asFakeChain);
  t.notOk(refused.secure, 'the next connection from 127.0.0.1 never completes a handshake');
  t.equal(refused.status, 0, 'and gets no answer');
  t.equal(refused.bytesReceived, 0, 'the server sent nothing: no ServerHello, closed before any TLS processing');
  t.ok(refused.error !== undefined, `the client sees the connection reset or closed (${refused.error})`);
  const goodRefused = await connectFrom('127.0.0.1', s.port, asGood);
  t.equal(goodRefused.bytesReceived, 0, 'a good certificate from the same network is refused too while it is throttled');
  t.equal(
    s.events.filter((e) => e.name === 'warden.tls.handshake_failed').length,
    failedBefore,
    'refused connections raise no handshake_failed: no TLS socket was made for them',
  );
  t.equal(backend.requests.length, 30, 'none of the refused reached the backend');

  const other = await connectFrom('127.0.0.2', s.port, asGood);
  t.equal(other.status, 200, 'a good caller from another address (127.0.0.2) is served meanwhile');
  t.equal(throttledEvents(s).length, 0, 'no throttled event while the period lasts');

  const again = await admittedAgain(s.port, asGood);
  t.equal(again.status, 200, 'once a failure token is back, 127.0.0.1 is admitted again');
  const events = throttledEvents(s);
  t.equal(events.length, 1, 'one warden.tls.handshake_throttled for the throttled period, not one per connection');
  t.match(events[0], { 'client.address': '127.0.0.1', 'warden.rule': 'limits.handshake_failures' }, 'naming the network and the rule');
  t.ok(Number(events[0]?.['warden.count']) >= 2, `with how many connections were closed (${events[0]?.['warden.count']})`);

  served = 0;
  for (let i = 0; i < 10; i++) if ((await connectFrom('127.0.0.1', s.port, asGood)).status === 200) served++;
  t.equal(served, 10, 'successful handshakes after it cost nothing');
});

t.test('client_certificates: request — a chain that does not verify counts, though the request goes on', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { root, tls } = await pki();
  const s = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { ...tls, client_certificates: 'request' } } },
    limits: { handshake_failures: { burst: 3, per: '1500ms' } },
  });
  const anonymous: ConnectionOptions = { ca: root.certPem };
  const chain = fakeClientChain(8);
  const asFakeChain: ConnectionOptions = { ca: root.certPem, cert: chain.cert, key: chain.key };

  let served = 0;
  for (let i = 0; i < 30; i++) if ((await connectFrom('127.0.0.1', s.port, anonymous)).status === 200) served++;
  t.equal(served, 30, 'callers without a certificate are served, and never throttled (30 in a row)');

  for (let i = 0; i < 3; i++) {
    const r = await connectFrom('127.0.0.1', s.port, asFakeChain);
    t.equal(r.status, 200, `fabricated chain ${i + 1}: the connection goes on unverified (request)`);
  }
  const refused = await connectFrom('127.0.0.1', s.port, asFakeChain);
  t.notOk(refused.secure, 'after burst unverified chains the next connection gets no handshake');
  t.equal(refused.bytesReceived, 0, 'no ServerHello');
  t.equal((await connectFrom('127.0.0.1', s.port, anonymous)).bytesReceived, 0, 'nor does a caller without a certificate');
  t.equal((await connectFrom('127.0.0.2', s.port, anonymous)).status, 200, 'another address is served');

  t.equal((await admittedAgain(s.port, anonymous)).status, 200, 'admitted again once a token is back');
  t.equal(throttledEvents(s).length, 1, 'one event for the period');
  t.match(throttledEvents(s)[0], { 'client.address': '127.0.0.1', 'warden.rule': 'limits.handshake_failures' }, 'naming the network');
});

t.test('burst: 0 turns it off', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { root, stranger, good, tls } = await pki();
  const s = await startTestSidecar(t, backend.url, {
    listeners: { inbound: { tls: { ...tls, client_certificates: 'require' } } },
    limits: { handshake_failures: { burst: 0 } },
  });
  let attempted = 0;
  for (let i = 0; i < 25; i++) {
    if ((await connectFrom('127.0.0.1', s.port, { ca: root.certPem, cert: stranger.certPem, key: stranger.keyPem })).bytesReceived > 0)
      attempted++;
  }
  t.equal(attempted, 25, 'every failing client gets its handshake');
  const failed = s.events.filter((e) => e.name === 'warden.tls.handshake_failed');
  t.equal(failed.length, 25, 'each raised warden.tls.handshake_failed');
  t.same(
    failed.filter((e) => e['client.address'] !== '127.0.0.1').map((e) => e['client.address']),
    [],
    'with the client address, also for a certificate refused after the handshake (admission off)',
  );
  t.equal(
    (await connectFrom('127.0.0.1', s.port, { ca: root.certPem, cert: good.certPem, key: good.keyPem })).status,
    200,
    'and a good caller from the same address is served',
  );
  t.equal(throttledEvents(s).length, 0, 'nothing throttled');
});
