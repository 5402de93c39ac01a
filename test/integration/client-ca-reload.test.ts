/**
 * A reload that removes a CA from `listeners.inbound.tls.client_ca`: OpenSSL checks a client's chain
 * only at the handshake, so connections opened before (an h2 session, an HTTP/1.1 keep-alive
 * connection) and TLS sessions resumed from tickets issued before kept the removed CA's trust. They
 * are closed and refused now; callers of the remaining CA keep their connections, and a reload that
 * adds a CA closes nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect as h2Connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import t, { type Test as Tap } from 'tap';
import { resolveCaConfig } from '../../src/config/ca-load.js';
import { parseSidecarConfig } from '../../src/config/load.js';
import { initCa } from '../../src/ca/init.js';
import { startCaServer } from '../../src/ca/server.js';
import { startTestBackend } from '../support/backend.js';
import { startCaUnderTest, TRUST_DOMAIN } from '../support/ca-harness.js';
import { startTestSidecar, testConfigYaml } from '../support/sidecar.js';
import { enrollWorkload, type Workload } from '../support/workload.js';

const id = (path: string) => `spiffe://${TRUST_DOMAIN}/${path}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request on an open h2 session: its status, or the error it met (refused stream, closed session). */
function get(session: ClientHttp2Session, path = '/echo'): Promise<number | string> {
  return new Promise((resolve) => {
    let stream;
    try {
      stream = session.request({ ':path': path });
    } catch (err) {
      return resolve((err as NodeJS.ErrnoException).code ?? 'ERR');
    }
    let status: number | string = 'NO_RESPONSE';
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', (err: NodeJS.ErrnoException) => (status = err.code ?? 'ERR'));
    stream.resume();
    stream.on('close', () => resolve(status));
    stream.end();
  });
}

/** Resolves true once `emitter` emits `event`, false after `ms`. */
function within(ms: number, emitter: { once(event: string, fn: () => void): unknown }, event: string): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** alice under one CA, bob under another, each CA with a root of its own (and an intermediate, not in client_ca). */
async function twoRoots(t: Tap) {
  const { ca: caA } = await startCaUnderTest(t);
  const other = await initCa({ trustDomain: TRUST_DOMAIN, dir: join(mkdtempSync(join(tmpdir(), 'warden-ca-b-')), 'ca') });
  const caB = await startCaServer({
    config: resolveCaConfig({
      trust_domain: TRUST_DOMAIN,
      dir: other.dir,
      listen: { host: '127.0.0.1', port: 0 },
      database: { path: join(mkdtempSync(join(tmpdir(), 'warden-ca-db-')), 'ca.db') },
      log: { level: 'silent' },
    }),
    createDatabase: true,
  });
  t.teardown(() => caB.close());
  const alice = await enrollWorkload(caA, id('ns/shop/sa/alice'));
  const bob = await enrollWorkload(caB, id('ns/shop/sa/bob'));
  t.not(alice.bundlePem, bob.bundlePem, 'two roots');
  return { alice, bob };
}

t.test('a reload that drops a client CA closes its certificates’ open connections; adding one closes none', async (t) => {
  const backend = await startTestBackend();
  t.teardown(() => backend.close());
  const { alice, bob } = await twoRoots(t);

  const clientCa = join(mkdtempSync(join(tmpdir(), 'warden-client-ca-')), 'client-ca.pem');
  writeFileSync(clientCa, alice.bundlePem);
  const extra = { listeners: { inbound: { tls: { client_certificates: 'require', client_ca: clientCa } } } };
  const s = await startTestSidecar(t, backend.url, extra);
  const file = s.sidecar.current.loaded.file;
  const reloadWith = async (pem: string) => {
    writeFileSync(clientCa, pem);
    const text = await testConfigYaml(backend.url, extra);
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, text)), 'reloaded');
  };
  const session = (w: Workload) => {
    const h2 = h2Connect(s.url, { ca: s.ca, cert: w.certPem, key: w.keyPem });
    h2.on('error', () => undefined);
    t.teardown(() => h2.destroy());
    return h2;
  };
  /** An HTTP/1.1 connection: one request (keep-alive), then left open; `session` resumes a saved TLS session. */
  const h1 = (w: Workload, tlsSession?: Buffer, path = '/echo') =>
    new Promise<{ socket: TLSSocket; status: number; head: string; reused: boolean; ticket: () => Buffer | undefined }>((resolve) => {
      let ticket: Buffer | undefined;
      let text = '';
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: s.port,
        servername: 'localhost',
        ca: s.ca,
        cert: w.certPem,
        key: w.keyPem,
        session: tlsSession,
        ALPNProtocols: ['http/1.1'],
      });
      t.teardown(() => socket.destroy());
      const done = () =>
        resolve({
          socket,
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
          head: text.split('\r\n\r\n')[0] ?? '',
          reused: socket.isSessionReused(),
          ticket: () => ticket,
        });
      socket.on('session', (b: Buffer) => (ticket = b));
      socket.on('secureConnect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`));
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n')) setTimeout(done, 50);
      });
      socket.on('error', () => undefined);
      socket.on('close', done);
    });

  /** Requests pipelined in one write on a fresh HTTP/1.1 connection: all it reads until closed (or `ms`). */
  const pipelined = (w: Workload, requests: string, ms = 5000) =>
    new Promise<string>((resolve) => {
      let text = '';
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: s.port,
        servername: 'localhost',
        ca: s.ca,
        cert: w.certPem,
        key: w.keyPem,
        ALPNProtocols: ['http/1.1'],
      });
      t.teardown(() => socket.destroy());
      const timer = setTimeout(() => resolve(`${text}[still open after ${ms} ms]`), ms);
      socket.on('secureConnect', () => socket.write(requests));
      socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
    });

  // Adding CA B closes nothing: alice's connection stays, and bob can now connect.
  const aliceH2 = session(alice);
  t.equal(await get(aliceH2), 200, 'alice (CA A) over h2');
  await reloadWith(alice.bundlePem + bob.bundlePem);
  t.equal(await get(aliceH2), 200, 'adding a CA: alice keeps her connection');
  t.notOk(aliceH2.closed || aliceH2.destroyed, 'not closed');

  const bobH2 = session(bob);
  t.equal(await get(bobH2), 200, 'bob (CA B) over h2');
  const bobH1 = await h1(bob);
  t.equal(bobH1.status, 200, 'bob over HTTP/1.1, kept alive');
  t.ok(bobH1.ticket(), 'a TLS session ticket to resume with');
  const bobResumed = await h1(bob, bobH1.ticket());
  t.ok(bobResumed.reused && bobResumed.status === 200, 'the ticket resumes while CA B is trusted');
  const bobTicket = bobResumed.ticket() ?? bobH1.ticket();
  const bobH2Closed = within(3000, bobH2, 'close');
  const bobH1Closed = within(3000, bobH1.socket, 'close');
  // Requests in flight at the reload: answered, then their connections close.
  const bobBusyH2 = session(bob);
  t.equal(await get(bobBusyH2), 200, 'bob, a second h2 connection');
  const bobBusyH2Closed = within(4000, bobBusyH2, 'close');
  const slowH2 = get(bobBusyH2, '/slow?ms=800');
  const slowH1 = h1(bob, undefined, '/slow?ms=800');
  // Two requests pipelined: both run at the backend before the reload, so both are answered.
  const slowPipelined = pipelined(
    bob,
    'GET /slow?ms=800&n=1 HTTP/1.1\r\nHost: localhost\r\n\r\nGET /slow?ms=1000&n=2 HTTP/1.1\r\nHost: localhost\r\n\r\n',
  );
  await sleep(300);
  const requestsBefore = backend.requests.length;

  // Removing CA B: bob's open connections go, alice's stays.
  await reloadWith(alice.bundlePem);
  const afterRemoval = await get(bobH2);
  t.not(afterRemoval, 200, `bob's open h2 connection is not served any more (${afterRemoval})`);
  t.ok(await bobH2Closed, "bob's h2 connection is closed (GOAWAY)");
  t.ok(await bobH1Closed, "bob's idle HTTP/1.1 connection is closed");
  t.equal(await slowH2, 200, 'an h2 request in flight at the reload is answered');
  t.ok(await bobBusyH2Closed, '…and its connection then closed');
  const slow = await slowH1;
  t.equal(slow.status, 200, 'an HTTP/1.1 request in flight at the reload is answered');
  t.match(slow.head, /\r\nconnection: close(\r\n|$)/i, '…with Connection: close');
  t.ok(slow.socket.destroyed || (await within(2000, slow.socket, 'close')), '…and its connection closed');
  const both = await slowPipelined;
  const heads = both.match(/HTTP\/1\.1 \d{3} [A-Z]+/g);
  t.same(
    heads,
    ['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK'],
    `two pipelined requests in flight at the reload: both answered (${heads?.length ?? 0})`,
  );
  t.match(both, /\r\nconnection: close\r\n[^]*$/i, '…the last with Connection: close');
  t.notMatch(both, /still open/, '…and the connection then closed');
  const resumed = await h1(bob, bobTicket);
  t.not(resumed.status, 200, `a TLS session of bob's, resumed after the removal, is not served (reused: ${resumed.reused})`);
  const fresh = await h1(bob);
  t.not(fresh.status, 200, 'a fresh handshake with a certificate of CA B is refused');
  t.equal(backend.requests.length, requestsBefore, 'none of bob’s reached the backend');
  t.equal(await get(aliceH2), 200, 'alice (CA A, still trusted) keeps her connection');
  t.notOk(aliceH2.closed || aliceH2.destroyed, "alice's connection is still open");
  t.ok(
    s.events.some(
      (e) =>
        e.name === 'warden.tls.peer_denied' && e['error.type'] === 'WARDEN_TRUST_ANCHOR_REMOVED' && e['warden.peer.id'] === bob.spiffeId,
    ),
    'warden.tls.peer_denied WARDEN_TRUST_ANCHOR_REMOVED names the caller',
  );
  t.match(
    s.events.filter((e) => e.name === 'warden.config.reloaded').at(-1)?.['warden.detail'],
    /6 connection\(s\) of a client CA no longer trusted closed/,
    'the reload says how many connections it closed',
  );
  await sleep(50);
});

t.test(
  'a reload that drops one client CA keeps the resumed sessions of another: their path is found through the intermediates remembered',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const { alice, bob } = await twoRoots(t);
    const clientCa = join(mkdtempSync(join(tmpdir(), 'warden-client-ca-')), 'client-ca.pem');
    writeFileSync(clientCa, alice.bundlePem + bob.bundlePem);
    const extra = { listeners: { inbound: { tls: { client_certificates: 'require', client_ca: clientCa } } } };
    const s = await startTestSidecar(t, backend.url, extra);
    /** A kept-alive HTTP/1.1 connection (resuming `session` if given): whether it was resumed, and a way to send on it again. */
    const open = (w: Workload, session?: Buffer) =>
      new Promise<{ socket: TLSSocket; reused: boolean; ticket: () => Buffer | undefined; send: () => Promise<number | string> }>(
        (resolve) => {
          let ticket: Buffer | undefined;
          let text = '';
          let answer: ((status: number | string) => void) | undefined;
          const socket = tlsConnect({
            host: '127.0.0.1',
            port: s.port,
            servername: 'localhost',
            ca: s.ca,
            cert: w.certPem,
            key: w.keyPem,
            session,
            ALPNProtocols: ['http/1.1'],
          });
          t.teardown(() => socket.destroy());
          const settle = (status: number | string) => {
            const a = answer;
            answer = undefined;
            text = '';
            a?.(status);
          };
          socket.on('session', (b: Buffer) => (ticket = b));
          socket.on('data', (d: Buffer) => {
            text += d.toString('latin1');
            if (text.includes('\r\n\r\n')) setTimeout(() => settle(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)), 50);
          });
          socket.on('error', () => undefined);
          socket.on('close', () => settle('closed'));
          const send = () =>
            new Promise<number | string>((r) => {
              if (socket.destroyed) return r('closed');
              answer = r;
              socket.write('GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n');
            });
          socket.on('secureConnect', () => resolve({ socket, reused: socket.isSessionReused(), ticket: () => ticket, send }));
        },
      );
    const aliceFull = await open(alice);
    t.equal(await aliceFull.send(), 200, 'alice (CA A), full handshake');
    const aliceResumed = await open(alice, aliceFull.ticket());
    t.ok(aliceResumed.reused, 'alice, a second connection resuming her TLS session');
    t.equal(await aliceResumed.send(), 200, '…served');
    const bobFull = await open(bob);
    t.equal(await bobFull.send(), 200, 'bob (CA B), full handshake');
    const bobResumed = await open(bob, bobFull.ticket());
    t.ok(bobResumed.reused, 'bob, a second connection resuming his TLS session');
    t.equal(await bobResumed.send(), 200, '…served');

    writeFileSync(clientCa, alice.bundlePem);
    const file = s.sidecar.current.loaded.file;
    const text = await testConfigYaml(backend.url, extra);
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, text)), 'reloaded without CA B');
    await sleep(200);
    t.equal(await aliceFull.send(), 200, "alice's full-handshake connection is still served");
    t.equal(await aliceResumed.send(), 200, "alice's resumed connection is still served");
    t.notOk(aliceResumed.socket.destroyed, '…and still open');
    t.not(await bobResumed.send(), 200, "bob's resumed connection is not served any more");
    t.ok(bobResumed.socket.destroyed || (await within(2000, bobResumed.socket, 'close')), '…and is closed');
    t.ok(bobFull.socket.destroyed || (await within(2000, bobFull.socket, 'close')), "bob's full-handshake connection is closed");
    const denied = s.events.filter((e) => e.name === 'warden.tls.peer_denied');
    t.same(
      denied.map((e) => e['warden.peer.id']),
      [bob.spiffeId, bob.spiffeId],
      'warden.tls.peer_denied for bob’s two connections only',
    );
  },
);

t.test(
  'red team 28 F1: a trusted root sent ahead of the intermediate ([leaf, other root, intermediate]) does not keep a connection past its real root’s removal',
  async (t) => {
    const backend = await startTestBackend();
    t.teardown(() => backend.close());
    const { alice, bob } = await twoRoots(t);
    const clientCa = join(mkdtempSync(join(tmpdir(), 'warden-client-ca-')), 'client-ca.pem');
    writeFileSync(clientCa, alice.bundlePem + bob.bundlePem);
    const extra = { listeners: { inbound: { tls: { client_certificates: 'require', client_ca: clientCa } } } };
    const s = await startTestSidecar(t, backend.url, extra);
    // OpenSSL takes alice's leaf → her intermediate → root A and passes over bob's root (root B).
    const [leaf, intermediate] = alice.certPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
    t.ok(leaf && intermediate, 'alice: leaf and intermediate');
    const decoy = `${leaf}${bob.bundlePem}${intermediate}`;

    const h2 = h2Connect(s.url, { ca: s.ca, cert: decoy, key: alice.keyPem });
    h2.on('error', () => undefined);
    t.teardown(() => h2.destroy());
    t.equal(await get(h2), 200, 'alice over h2 with [leaf, root B, intermediate]');
    const bobH2 = h2Connect(s.url, { ca: s.ca, cert: bob.certPem, key: bob.keyPem });
    bobH2.on('error', () => undefined);
    t.teardown(() => bobH2.destroy());
    t.equal(await get(bobH2), 200, 'bob (root B) over h2');

    let text = '';
    const h1 = tlsConnect({
      host: '127.0.0.1',
      port: s.port,
      servername: 'localhost',
      ca: s.ca,
      cert: decoy,
      key: alice.keyPem,
      ALPNProtocols: ['http/1.1'],
    });
    t.teardown(() => h1.destroy());
    h1.on('error', () => undefined);
    h1.on('data', (d: Buffer) => (text += d.toString('latin1')));
    const h1Closed = within(4000, h1, 'close');
    const h1Get = async (path: string) => {
      text = '';
      if (!h1.destroyed) h1.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
      for (let i = 0; i < 40 && !text.includes('\r\n\r\n') && !h1.destroyed; i++) await sleep(25);
      return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    };
    await new Promise((r) => h1.once('secureConnect', r));
    t.equal(await h1Get('/echo?n=1'), 200, 'alice over HTTP/1.1 with [leaf, root B, intermediate], kept alive');
    const h2Closed = within(4000, h2, 'close');
    const requestsBefore = backend.requests.length;

    writeFileSync(clientCa, bob.bundlePem);
    const file = s.sidecar.current.loaded.file;
    const yaml = await testConfigYaml(backend.url, extra);
    t.ok(await s.sidecar.reload(() => parseSidecarConfig(file, yaml)), 'reloaded without root A');
    await sleep(200);
    const afterH2 = await get(h2);
    t.not(afterH2, 200, `alice's h2 session is not served any more (${afterH2})`);
    t.ok(await h2Closed, '…and closed');
    const afterH1 = await h1Get('/echo?n=2');
    t.not(afterH1, 200, `alice's HTTP/1.1 connection is not served any more (${afterH1 || 'closed'})`);
    t.ok(h1.destroyed || (await h1Closed), '…and closed');
    t.equal(backend.requests.length, requestsBefore, 'nothing of alice’s reached the backend after the reload');
    t.equal(await get(bobH2), 200, 'bob (root B, still trusted) keeps his connection');
    t.same(
      s.events
        .filter((e) => e.name === 'warden.tls.peer_denied' && e['error.type'] === 'WARDEN_TRUST_ANCHOR_REMOVED')
        .map((e) => e['warden.peer.id']),
      [alice.spiffeId, alice.spiffeId],
      'warden.tls.peer_denied WARDEN_TRUST_ANCHOR_REMOVED for alice’s two connections',
    );
  },
);
