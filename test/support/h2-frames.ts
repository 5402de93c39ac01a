/**
 * A raw HTTP/2 client for tests that must break the rules a real client library enforces (more
 * streams than the server allows, and later: resets, floods, oversized frames). Frames are built
 * by hand (RFC 9113 §4); header blocks use HPACK literals without Huffman coding (RFC 7541 §6.2.2).
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  value -= max;
  while (value >= 128) {
    bytes.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

/** A header block of "literal without indexing, new name" entries. */
export function headerBlock(headers: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0x00]), hpackInt(n.length, 7, 0), n, hpackInt(v.length, 7, 0), v);
  }
  return Buffer.concat(parts);
}

export function requestHeaders(path: string, extra: [string, string][] = [], method = 'GET'): [string, string][] {
  return [[':method', method], [':scheme', 'https'], [':authority', 'localhost'], [':path', path], ...extra];
}

export function parseFrames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let offset = 0;
  while (buffer.length - offset >= 9) {
    const length = buffer.readUIntBE(offset, 3);
    if (buffer.length - offset < 9 + length) break;
    frames.push({
      type: buffer[offset + 3] as number,
      flags: buffer[offset + 4] as number,
      streamId: buffer.readUInt32BE(offset + 5) & 0x7fffffff,
      payload: buffer.subarray(offset + 9, offset + 9 + length),
    });
    offset += 9 + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

export interface RawH2 {
  socket: TLSSocket;
  frames: Frame[];
  send(...frames: Buffer[]): void;
  /** Resolves once `predicate` holds for the frames received so far, or after `timeoutMs`. */
  waitFor(predicate: (frames: Frame[]) => boolean, timeoutMs?: number): Promise<boolean>;
  closed: Promise<void>;
}

/** Opens TLS with ALPN h2, sends the preface and an empty SETTINGS, and ACKs the server's SETTINGS. */
export function rawH2(port: number, ca: string): Promise<RawH2> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', servername: 'localhost', ca, ALPNProtocols: ['h2'] });
    const frames: Frame[] = [];
    let pending: Buffer = Buffer.alloc(0);
    const listeners = new Set<() => void>();
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      const parsed = parseFrames(Buffer.concat([pending, chunk]));
      pending = parsed.rest;
      for (const f of parsed.frames) {
        frames.push(f);
        if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      }
      for (const l of listeners) l();
    });
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN gave ${String(socket.alpnProtocol)}`));
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
      resolve({
        socket,
        frames,
        send: (...fs) => socket.write(Buffer.concat(fs)),
        waitFor(predicate, timeoutMs = 3000) {
          return new Promise((done) => {
            if (predicate(frames)) return done(true);
            const check = () => {
              if (predicate(frames)) finish(true);
            };
            const finish = (ok: boolean) => {
              clearTimeout(timer);
              listeners.delete(check);
              done(ok);
            };
            const timer = setTimeout(() => finish(predicate(frames)), timeoutMs);
            listeners.add(check);
            void closed.then(() => finish(predicate(frames)));
          });
        },
        closed,
      });
    });
    socket.once('error', reject);
  });
}

export const ERROR_CODE = { NO_ERROR: 0, PROTOCOL_ERROR: 1, REFUSED_STREAM: 7, ENHANCE_YOUR_CALM: 0xb } as const;

export function rstCode(f: Frame): number {
  return f.payload.readUInt32BE(0);
}
