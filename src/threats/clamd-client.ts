/**
 * A clamd client for in-flight scanning: INSTREAM over TCP or a unix socket (chunked, within
 * clamd's StreamMaxLength), a deadline per scan, and a cap on concurrent scans so an upload burst
 * cannot open unbounded connections. Every failure is a ScannerError, so the caller applies its
 * fail-closed / fail-open policy; a verdict is only ever "clean" or "infected, signature".
 */
import { connect, type Socket } from 'node:net';

export type ScanVerdict = { clean: true } | { clean: false; signature: string };

export class ScannerError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'timeout' | 'overloaded' | 'too_large' | 'protocol',
    message: string,
  ) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // made at request rate while clamd is down
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'ScannerError';
  }
}

export interface ClamdClient {
  scan(chunks: readonly Buffer[]): Promise<ScanVerdict>;
}

export interface ClamdOptions {
  /** `tcp://host:port` or `unix:/path/clamd.sock`. */
  address: string;
  timeout: number;
  maxConcurrent: number;
}

/** INSTREAM chunks: clamd's default StreamMaxLength is 25 MB; 64 KiB frames keep memory flat. */
const FRAME = 64 * 1024;

function connectTo(address: string): Socket {
  if (address.startsWith('unix:')) return connect(address.slice('unix:'.length));
  const url = new URL(address);
  return connect(Number(url.port || 3310), url.hostname);
}

export function createClamdClient(options: ClamdOptions): ClamdClient {
  let active = 0;

  const scanOnce = (chunks: readonly Buffer[]) =>
    new Promise<ScanVerdict>((resolve, reject) => {
      const socket = connectTo(options.address);
      let reply = '';
      let settled = false;
      const finish = (err: ScannerError | undefined, verdict?: ScanVerdict) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(verdict as ScanVerdict);
      };
      const timer = setTimeout(
        () => finish(new ScannerError('timeout', `clamd gave no verdict within ${options.timeout} ms`)),
        options.timeout,
      );
      socket.once('error', (err: NodeJS.ErrnoException) =>
        finish(new ScannerError('unreachable', `cannot reach clamd at ${options.address} (${err.code ?? err.message})`)),
      );
      socket.on('data', (d: Buffer) => (reply += d.toString('latin1')));
      socket.once('end', () => {
        const line = reply.replace(/\0+$/, '').trim();
        const found = /^stream: (.+) FOUND$/.exec(line);
        if (line === 'stream: OK') finish(undefined, { clean: true });
        else if (found) finish(undefined, { clean: false, signature: (found[1] as string).slice(0, 200) });
        else if (/size limit exceeded/i.test(line)) finish(new ScannerError('too_large', 'the body exceeds clamd StreamMaxLength'));
        else finish(new ScannerError('protocol', `unexpected clamd reply: ${line.slice(0, 120) || '(none)'}`));
      });
      socket.once('connect', () => {
        socket.write('zINSTREAM\0');
        for (const chunk of chunks) {
          for (let off = 0; off < chunk.length; off += FRAME) {
            const part = chunk.subarray(off, Math.min(off + FRAME, chunk.length));
            const size = Buffer.allocUnsafe(4);
            size.writeUInt32BE(part.length);
            socket.write(size);
            socket.write(part);
          }
        }
        socket.write(Buffer.alloc(4)); // zero-length frame: end of stream
      });
    });

  return {
    async scan(chunks) {
      if (active >= options.maxConcurrent) throw new ScannerError('overloaded', `${options.maxConcurrent} scans already in flight`);
      active++;
      try {
        return await scanOnce(chunks);
      } finally {
        active--;
      }
    },
  };
}
