/**
 * A real clamd for tests (Debian clamav-daemon), offline: no freshclam, a project signature
 * database instead of ClamAV's — the EICAR test file by hash (.hdb) and a test pattern matched
 * anywhere in a stream (.ndb). It can be stopped and started again to test outages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The EICAR anti-virus test file (68 bytes), built from parts so no scanner flags this source. */
export const EICAR = Buffer.from(['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'].join(''));
/** Any stream containing this is "infected" with Warden.Test.Pattern. */
export const TEST_PATTERN = 'WARDEN-TEST-MALWARE-PATTERN-7f3a';

export interface TestClamd {
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.once('connect', () => socket.write('zPING\0'));
    socket.on('data', (d: Buffer) => (reply += d.toString()));
    socket.once('end', () => resolve(reply.startsWith('PONG')));
    socket.once('error', () => resolve(false));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * `readTimeoutSeconds`: clamd's ReadTimeout (default 120 s), after which it closes an idle IDSESSION
 * connection, writing `COMMAND READ TIMED OUT` first (its IdleTimeout is the threads', not the connections').
 */
export async function startTestClamd(
  t: { teardown(fn: () => unknown): void },
  options: { readTimeoutSeconds?: number } = {},
): Promise<TestClamd> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-clamd-'));
  const db = join(dir, 'db');
  mkdirSync(db);
  writeFileSync(join(db, 'warden.hdb'), `${createHash('md5').update(EICAR).digest('hex')}:${EICAR.length}:Warden.Test.EICAR\n`);
  writeFileSync(join(db, 'warden.ndb'), `Warden.Test.Pattern:0:*:${Buffer.from(TEST_PATTERN).toString('hex')}\n`);
  const port = await freePort();
  const conf = join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    [
      `DatabaseDirectory ${db}`,
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      'Foreground yes',
      `LogFile ${join(dir, 'clamd.log')}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      'StreamMaxLength 64M',
      // As docs/threats.md requires: what clamd cannot scan whole (nested past MaxRecursion, more
      // than MaxFiles members) is a FOUND, not an OK; and a stream up to StreamMaxLength is scanned whole.
      'AlertExceedsMax yes',
      'MaxFileSize 64M',
      'MaxScanSize 256M',
      'MaxThreads 4',
      'SelfCheck 3600',
      ...(options.readTimeoutSeconds === undefined ? [] : [`ReadTimeout ${options.readTimeoutSeconds}`]),
    ].join('\n') + '\n',
  );
  // Debian installs clamd in /usr/sbin, which is not on every user's PATH.
  const bin = existsSync('/usr/sbin/clamd') ? '/usr/sbin/clamd' : 'clamd';
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`clamd did not answer on ${port} within 20 s (see ${join(dir, 'clamd.log')})`);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  t.teardown(stop);
  return { address: `tcp://127.0.0.1:${port}`, port, stop, start };
}

/** A TCP relay in front of clamd: counts connections and the bytes clamd received, and can drop them. */
export interface ClamdRelay {
  readonly port: number;
  readonly connections: number;
  readonly bytes: number;
  /** Destroys every open connection and keeps listening: a clamd restart, as its clients see it. */
  dropAll(): void;
  /** Stops listening (open connections stay until dropped or torn down). */
  stopListening(): void;
  /** Listens again on the same port: clamd back. */
  listenAgain(): Promise<void>;
}

/**
 * `replyDelayMs`: clamd's replies (and its closing) reach the sidecar that much later — a clamd slow
 * to give a verdict. `crashOn`: a stream carrying these bytes stops the relay listening and drops
 * every connection before clamd sees it — a clamd its content crashed, which a real one is not on demand.
 */
export async function startClamdRelay(
  t: { teardown(fn: () => unknown): void },
  clamdPort: number,
  options: { replyDelayMs?: number; crashOn?: string } = {},
): Promise<ClamdRelay> {
  const delay = options.replyDelayMs ?? 0;
  const later = (fn: () => void) => (delay === 0 ? fn() : setTimeout(fn, delay).unref());
  let connections = 0;
  let bytes = 0;
  const open = new Set<Socket>();
  const server = createServer((inbound) => {
    connections++;
    const outbound = connect(clamdPort, '127.0.0.1');
    for (const sock of [inbound, outbound]) {
      open.add(sock);
      sock.on('error', () => undefined);
      sock.on('close', () => open.delete(sock));
    }
    inbound.on('data', (d: Buffer) => {
      bytes += d.length;
      if (options.crashOn !== undefined && d.includes(options.crashOn)) {
        server.close();
        dropAll();
      }
    });
    // A dead clamd must look dead through the relay too.
    outbound.on('close', () => later(() => inbound.destroy()));
    inbound.on('close', () => outbound.destroy());
    inbound.pipe(outbound);
    if (delay === 0) outbound.pipe(inbound);
    else outbound.on('data', (d: Buffer) => later(() => void (inbound.destroyed || inbound.write(d))));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  function dropAll() {
    for (const sock of open) sock.destroy();
  }
  t.teardown(() => {
    dropAll();
    server.close();
  });
  return {
    port,
    get connections() {
      return connections;
    },
    get bytes() {
      return bytes;
    },
    dropAll,
    stopListening: () => server.close(),
    listenAgain: () => new Promise<void>((r) => server.listen(port, '127.0.0.1', r)),
  };
}

/**
 * A clamd that accepts a scan and then reads nothing more, as a real clamd does once its MaxQueue
 * is full: what it has not read stays in the kernel's socket buffers and, beyond them, the sidecar's.
 */
export async function startStalledClamd(t: {
  teardown(fn: () => unknown): void;
}): Promise<{ address: string; readonly connections: number }> {
  const open = new Set<Socket>();
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    open.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => open.delete(sock));
    sock.once('data', () => sock.pause());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const sock of open) sock.destroy();
    server.close();
  });
  return {
    address: `tcp://127.0.0.1:${(server.address() as { port: number }).port}`,
    get connections() {
      return connections;
    },
  };
}
