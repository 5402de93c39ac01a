/**
 * A real redis-server for tests, on a free loopback port, without persistence. It can be stopped
 * and started again on the same port to test outages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { createServer } from 'node:net';
import { connect } from 'node:net';

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that keeps its connections open but answers nothing, then wakes. */
  pause(): void;
  resume(): void;
  /** Connections the server has now, other than the one asking. */
  clients(): Promise<number>;
  /**
   * Waits until the server has at least `count` connections (other than the one asking): after a
   * restart, until the sidecars' clients have reconnected — ioredis retries with a backoff, so a
   * fixed wait is either long or a race.
   */
  waitForClients(count: number, timeoutMs?: number): Promise<void>;
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

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`redis-server did not listen on ${port} within ${timeoutMs} ms`);
}

export async function startTestRedis(t: { teardown(fn: () => unknown): void }): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      {
        stdio: 'ignore',
      },
    );
    await waitForPort(port, 5000);
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
  const clients = async () => {
    const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await probe.connect();
      const list = (await probe.client('LIST')) as string;
      return list.split('\n').filter((line) => line.trim() !== '').length - 1;
    } finally {
      probe.disconnect();
    }
  };
  const waitForClients = async (count: number, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    let seen = await clients();
    while (seen < count) {
      if (Date.now() > deadline) throw new Error(`redis-server had ${seen} client connections, not ${count}, after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
      seen = await clients();
    }
  };
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => () => void child?.kill(name);
  await start();
  // Woken first: a stopped process does not act on SIGKILL until it runs again on some systems.
  t.teardown(async () => {
    child?.kill('SIGCONT');
    await stop();
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    start,
    pause: signal('SIGSTOP'),
    resume: signal('SIGCONT'),
    clients,
    waitForClients,
  };
}
