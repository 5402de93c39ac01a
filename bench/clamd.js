// A clamd for the benches: Debian's clamav-daemon with a one-line signature database (the EICAR
// test file), on a free loopback port, no freshclam and no network.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export const EICAR = Buffer.from(['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'].join(''));

function ping(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.once('connect', () => socket.write('zPING\0'));
    socket.on('data', (d) => (reply += d));
    socket.once('end', () => resolve(reply.startsWith('PONG')));
    socket.once('error', () => resolve(false));
  });
}

export async function startBenchClamd(bench, work, port) {
  const db = join(work, 'clamd-db');
  mkdirSync(db, { recursive: true });
  writeFileSync(join(db, 'bench.hdb'), `${createHash('md5').update(EICAR).digest('hex')}:${EICAR.length}:Bench.EICAR\n`);
  const conf = join(work, 'clamd.conf');
  writeFileSync(
    conf,
    [
      `DatabaseDirectory ${db}`,
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      'Foreground yes',
      'StreamMaxLength 64M',
      'AlertExceedsMax yes',
      'MaxFileSize 64M',
      'MaxScanSize 256M',
      'MaxThreads 4',
    ].join('\n') + '\n',
  );
  const bin = existsSync('/usr/sbin/clamd') ? '/usr/sbin/clamd' : 'clamd';
  const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  bench.children.add(child);
  bench.moveTo(child.pid, bench.LOAD_CPUS);
  const deadline = Date.now() + 20_000;
  while (!(await ping(port))) {
    if (Date.now() > deadline) throw new Error(`clamd did not answer on ${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

/** clamd's own time for one body: zINSTREAM from the connected socket to the verdict, in ms. */
export function clamdSession(port) {
  return {
    scan(body) {
      return new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        socket.setNoDelay(true);
        let reply = '';
        let started = 0;
        socket.once('error', reject);
        socket.on('data', (d) => (reply += d.toString('latin1')));
        socket.once('end', () => resolve({ ms: performance.now() - started, line: reply.replace(/\0+$/, '').trim() }));
        socket.once('connect', () => {
          started = performance.now();
          socket.write('zINSTREAM\0');
          for (let off = 0; off < body.length; off += 65536) {
            const part = body.subarray(off, off + 65536);
            const size = Buffer.alloc(4);
            size.writeUInt32BE(part.length);
            socket.write(size);
            socket.write(part);
          }
          socket.write(Buffer.alloc(4));
        });
      });
    },
    close: () => undefined,
  };
}
