/**
 * TLS abuse against an mTLS-required Warden (client_certificates: require): renegotiation, garbage
 * and truncated handshakes, and client certificates that are expired, serverAuth-only, CA:true or
 * from an unknown CA. Each row: the handshake or connection refused, nothing at the backend, the
 * sidecar healthy afterwards (a caller with a good certificate is served).
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
import { EC_P256, x509, type CryptoKeyPair } from '../../src/ca/pki.js';
import { startTestBackend } from '../support/backend.js';
import { statusOf } from '../support/clients.js';
import { startTestSidecar } from '../support/sidecar.js';
import { check, PROBE, Scoreboard, sleep, type Target } from './harness.js';

interface Issued {
  certPem: string;
  keyPem: string;
  keys: CryptoKeyPair;
  cert: x509.X509Certificate;
}

const keys = () => webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
let serial = 0x1000;

async function issue(
  subject: string,
  issuer: Issued | undefined,
  options: { ca?: boolean; eku?: string[]; days?: [number, number]; uri?: string; dns?: string[] },
): Promise<Issued> {
  const pair = await keys();
  const now = Date.now();
  const [from, to] = options.days ?? [-1, 30];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true),
    new x509.KeyUsagesExtension(
      options.ca
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature
        : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
  ];
  if (options.eku) extensions.push(new x509.ExtendedKeyUsageExtension(options.eku));
  const names = [
    ...(options.uri ? [{ type: 'url' as const, value: options.uri }] : []),
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(pair.publicKey));
  if (issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16),
    subject: `CN=${subject}`,
    issuer: issuer ? issuer.cert.subject : `CN=${subject}`,
    notBefore: new Date(now + from * 86_400_000),
    notAfter: new Date(now + to * 86_400_000),
    signingAlgorithm: EC_P256,
    publicKey: pair.publicKey,
    signingKey: issuer ? issuer.keys.privateKey : pair.privateKey,
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportPrivateKeyPem(pair.privateKey), keys: pair, cert };
}

const CLIENT = x509.ExtendedKeyUsage.clientAuth;
const SERVER = x509.ExtendedKeyUsage.serverAuth;

interface Outcome {
  status: number;
  error?: string;
  ms: number;
}

/** Handshake with `options`, then one GET; status 0 when refused. */
function attempt(port: number, options: ConnectionOptions, path = '/probe', timeoutMs = 3000): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ALPNProtocols: ['http/1.1'], ...options });
    let text = '';
    let error: string | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: statusOf(text), error, ms: Date.now() - started });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`));
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.once('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.once('close', done);
  });
}

/** Raw bytes on a TCP connection; resolves when the server closes it (or after `timeoutMs`). */
function rawTcp(port: number, chunks: Buffer[], timeoutMs = 4000): Promise<{ closed: boolean; ms: number; bytes: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1');
    let bytes = 0;
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ closed, ms: Date.now() - started, bytes });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      closed = true;
      done();
    });
    socket.once('connect', () => {
      for (const c of chunks) socket.write(c);
    });
  });
}

/** The first bytes a real client sends: its ClientHello record. */
function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    void import('node:net').then(({ createServer }) => {
      const server = createServer((s) => {
        s.once('data', (d: Buffer) => {
          resolve(d);
          s.destroy();
          server.close();
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        const c = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false });
        c.on('error', () => undefined);
      });
    });
  });
}

t.test('hostile TLS against an mTLS-required listener', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const root = await issue('adversarial root', undefined, { ca: true });
  const other = await issue('unknown root', undefined, { ca: true });
  const server = await issue('localhost', root, { eku: [SERVER], dns: ['localhost'] });
  const id = 'spiffe://example.test/ns/adv/sa/caller';
  const good = await issue('caller', root, { eku: [CLIENT], uri: id });
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-tls-'));
  const file = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const s = await startTestSidecar(t, backend.url, {
    listeners: {
      inbound: {
        tls: {
          cert: file('server.crt', server.certPem),
          key: file('server.key', server.keyPem),
          client_certificates: 'require',
          client_ca: file('ca.crt', root.certPem),
        },
      },
    },
    // Every hostile case below fails handshakes from 127.0.0.1, as the good caller's checks then come
    // from it too: more than limits.handshake_failures' default burst (20) would let them through
    // (handshake-admission.test.ts tests that limit).
    limits: { handshake_timeout: '1s', handshake_failures: { burst: 1000 } },
  });
  const as = (c: Issued): ConnectionOptions => ({ ca: root.certPem, cert: c.certPem, key: c.keyPem });

  // Health for this listener: a normal request needs the good client certificate.
  const target: Target = { port: s.port, ca: root.certPem, adminUrl: s.adminUrl };
  const board = new Scoreboard(backend, () => target);
  const healthy = async () => {
    const r = await attempt(s.port, as(good), PROBE);
    check(r.status === 200, `a good caller afterwards got ${r.status || r.error}`);
    const res = await fetch(`${s.adminUrl}/healthz`);
    check(res.status === 200, `/healthz ${res.status}`);
  };
  const run = (name: string, expected: string, attack: () => Promise<void>) =>
    board.run(
      t,
      'tls',
      name,
      expected,
      async () => {
        await attack();
        await healthy();
      },
      { health: false },
    );

  await run('control: a good client certificate', 'served (200)', async () => {
    const r = await attempt(s.port, as(good));
    check(r.status === 200, `got ${r.status || r.error}`);
    check(backend.requests.pop()?.url === '/probe', 'not forwarded');
  });

  const refusedCases: [string, () => Promise<Issued>][] = [
    ['client certificate expired', () => issue('caller', root, { eku: [CLIENT], uri: id, days: [-10, -1] })],
    ['client certificate not yet valid', () => issue('caller', root, { eku: [CLIENT], uri: id, days: [1, 10] })],
    ['client certificate with EKU serverAuth only', () => issue('caller', root, { eku: [SERVER], uri: id })],
    ['client certificate with CA:true', () => issue('caller', root, { ca: true, eku: [CLIENT], uri: id })],
    ['client certificate from an unknown CA', () => issue('caller', other, { eku: [CLIENT], uri: id })],
    ['self-signed client certificate', () => issue('caller', undefined, { eku: [CLIENT], uri: id })],
  ];
  for (const [name, make] of refusedCases) {
    const cert = await make();
    await run(name, 'handshake refused; never served', async () => {
      const r = await attempt(s.port, as(cert));
      check(r.status === 0, `served with ${r.status}`);
    });
  }
  await run('no client certificate', 'handshake refused', async () => {
    const r = await attempt(s.port, { ca: root.certPem });
    check(r.status === 0, `served with ${r.status}`);
  });
  await run('CA certificate itself as client certificate', 'handshake refused', async () => {
    const r = await attempt(s.port, as(root));
    check(r.status === 0, `served with ${r.status}`);
  });

  await run('renegotiation (TLS 1.2)', 'refused: no renegotiated handshake, connection closed', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ port: s.port, host: '127.0.0.1', servername: 'localhost', maxVersion: 'TLSv1.2', ...as(good) });
      socket.on('error', () => undefined);
      const timer = setTimeout(() => resolve('no renegotiation within 1.5 s'), 1500);
      socket.once('secureConnect', () => {
        let tries = 0;
        const again = () => {
          const ok = socket.renegotiate({ rejectUnauthorized: true }, (err) => {
            if (err) {
              clearTimeout(timer);
              socket.destroy();
              return resolve(`refused after ${tries}`);
            }
            if (++tries >= 5) {
              clearTimeout(timer);
              socket.destroy();
              return resolve('renegotiated 5 times');
            }
            again();
          });
          if (!ok) {
            clearTimeout(timer);
            resolve('refused locally');
          }
        };
        again();
      });
      socket.once('close', () => {
        clearTimeout(timer);
        resolve('closed');
      });
    });
    check(outcome !== 'renegotiated 5 times', `renegotiation: ${outcome}`);
    t.comment(`renegotiation: ${outcome}`);
  });

  const garbage: [string, Buffer[]][] = [
    ['garbage bytes as ClientHello', [Buffer.from('this is not TLS at all\r\n\r\n')]],
    ['random bytes (4 KB)', [Buffer.from(webcrypto.getRandomValues(new Uint8Array(4096)))]],
    ['plain HTTP to the TLS port', [Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')]],
    ['TLS record header claiming 16 KB, then nothing', [Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01])]],
    ['SSLv2-style ClientHello', [Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10])]],
  ];
  for (const [name, chunks] of garbage) {
    await run(name, 'connection closed within handshake_timeout (1 s) + slack', async () => {
      const r = await rawTcp(s.port, chunks);
      check(r.closed && r.ms < 3000, `closed=${r.closed} after ${r.ms} ms`);
    });
  }
  const hello = await captureClientHello();
  await run('truncated ClientHello (first half)', 'closed within handshake_timeout', async () => {
    const r = await rawTcp(s.port, [hello.subarray(0, Math.floor(hello.length / 2))]);
    check(r.closed && r.ms < 3000, `closed=${r.closed} after ${r.ms} ms`);
  });
  await run('ClientHello, then silence', 'closed within handshake_timeout', async () => {
    const r = await rawTcp(s.port, [hello]);
    check(r.closed && r.ms < 3000, `closed=${r.closed} after ${r.ms} ms`);
  });
  await run('50 half-open handshakes at once', 'all closed within handshake_timeout', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => rawTcp(s.port, [hello.subarray(0, 20)])));
    const slow = results.filter((r) => !r.closed || r.ms >= 3500);
    check(slow.length === 0, `${slow.length} stayed open`);
  });
  await sleep(10);
  t.ok(
    s.events.some((e) => e.name === 'warden.tls.handshake_failed'),
    'failed handshakes raised warden.tls.handshake_failed',
  );
  board.report(t);
});
