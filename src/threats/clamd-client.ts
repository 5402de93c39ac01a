/**
 * A clamd client for in-flight scanning: INSTREAM over TCP or a unix socket, streamed while the
 * body arrives (64 KiB frames, at most `streamMaxLength` bytes — clamd's StreamMaxLength), a
 * deadline for the verdict once the body has ended, a cap on concurrent scans, and a pool of
 * IDSESSION connections so a scan does not pay for a connect. A clamd that stops reading (its
 * MaxQueue full) shows in drained(), so the caller pauses the upload rather than the socket
 * buffering it, and fails the scan as a timeout if its backlog does not drain within `timeout`.
 * Every failure is a ScannerError, so the caller applies its fail-closed / fail-open policy; a
 * verdict is only "clean" or "infected". `unreachable` is only a clamd that nothing answers for
 * (nothing listens at the address): fail-open forwards on that alone (see NOT_LISTENING).
 */
import { endClientSpan, startClientSpan, type SpanParent } from '../telemetry/client-span.js';
import { connect, type Socket } from 'node:net';

/**
 * `exceeded`: clamd did not scan the stream whole — past its MaxRecursion, MaxFiles, MaxFileSize or
 * MaxScanSize (the limit's name). With `AlertExceedsMax yes` it says so as a `Heuristics.Limits.Exceeded.*`
 * FOUND; without, it answers OK for what it skipped.
 */
export type ScanVerdict = { clean: true } | { clean: false; signature: string; exceeded?: string };

/**
 * `unreachable`: nothing listens at clamd's address. `connection`: the connection failed otherwise
 * (the sidecar out of descriptors, clamd's backlog full) or closed before the verdict (clamd died
 * mid-scan, or gave up reading a slow stream).
 */
export class ScannerError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'connection' | 'timeout' | 'overloaded' | 'too_large' | 'protocol',
    message: string,
    /** A connection clamd had accepted, lost before its verdict (or a pooled one, and its resend failed). */
    readonly lostAfterConnect = false,
  ) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // made at request rate while clamd is down
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'ScannerError';
  }
}

/** One scan, fed as the body arrives. */
export interface ScanStream {
  write(chunk: Buffer): void;
  /**
   * Undefined while clamd keeps up; otherwise resolves once it has taken what was written, or the
   * scan has failed (never rejects: the failure shows at end()). The caller stops writing until then.
   */
  drained(): Promise<void> | undefined;
  /** The last byte has been written: clamd's verdict, within the client's timeout. */
  end(): Promise<ScanVerdict>;
  /** The body will not complete: drop the scan (its connection is closed, not pooled). */
  abort(): void;
}

/**
 * One of the `maxConcurrent` scans, held by a request for its scans one after another (a multipart
 * upload's files): the cap bounds requests, so an upload with many files never overloads the
 * scanner by itself.
 */
export interface ScanSlot {
  /** A scan on this slot; the one before it must have settled (its end() or abort()). */
  stream(): ScanStream;
  /** The request has no more to scan. Idempotent. */
  release(): void;
}

export interface ClamdClient {
  /**
   * Starts a scan; a ScanStream whose end() rejects when no scan can start (overloaded). `parent`:
   * the request's trace context.
   */
  stream(parent?: SpanParent): ScanStream;
  /** A slot for a request's scans, or the overload error when every slot is held. */
  slot(parent?: SpanParent): ScanSlot | ScannerError;
  /** A whole body at once (tests, tools). */
  scan(chunks: readonly Buffer[]): Promise<ScanVerdict>;
  /** Closes the pooled connections. */
  close(): void;
}

export interface ClamdOptions {
  /** `tcp://host:port` or `unix:/path/clamd.sock`. */
  address: string;
  /** For the verdict, counted from the end of the body; and for clamd to take a backlog (drained()). */
  timeout: number;
  maxConcurrent: number;
  /** clamd's StreamMaxLength: a longer stream fails here as too_large instead of at clamd. */
  streamMaxLength: number;
  /** Idle IDSESSION connections kept open (0: a connection per scan). */
  idleConnections: number;
}

const FRAME = 64 * 1024;
/**
 * Bytes written to clamd's socket but not yet sent above which drained() asks the caller to wait.
 * Without it a clamd that stopped reading left the whole body (up to StreamMaxLength) in the buffer.
 */
const STREAM_HIGH_WATER = 1024 * 1024;
const END_OF_STREAM = Buffer.alloc(4);
/**
 * A pooled connection can die while it sits idle (clamd restarted, its ReadTimeout, a dropped
 * link) just before a scan takes it, before its close has been seen. Such a scan is sent again
 * on a new connection, once, if it has not sent more than this: the chunks are kept until then
 * (the body is held by the request anyway; larger bodies may be on disk, so they fail as before).
 * If the new connection fails too, the scan is lost (`connection`), as one that crashed clamd.
 */
const REPLAY_BYTES = 1024 * 1024;

/**
 * What clamd writes (ending in a newline, not a NUL) as it closes a connection it timed out (its
 * ReadTimeout: an idle IDSESSION connection in the pool): a close, not a reply. A scan that took the
 * connection just before it arrived is sent again, not failed as a protocol error (a 503 either way).
 */
const READ_TIMED_OUT = 'COMMAND READ TIMED OUT';

/**
 * Connect errors that mean nothing listens at the address: clamd down, its socket file gone, its
 * host or name unknown — unless a scan's connection was lost since clamd last answered (its content
 * may have crashed clamd; see lostScanAt). Any other connect error (EMFILE, EAGAIN from
 * a full unix-socket backlog, ETIMEDOUT from a full TCP one) and a connection lost after it was
 * made can be the upload's doing — its content crashing clamd, its concurrency filling clamd — so
 * they are not `unreachable`.
 */
const NOT_LISTENING = new Set(['ECONNREFUSED', 'ENOENT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

function connectTo(address: string): Socket {
  if (address.startsWith('unix:')) return connect(address.slice('unix:'.length));
  const url = new URL(address);
  return connect(Number(url.port || 3310), url.hostname);
}

function frameHeader(length: number): Buffer {
  const size = Buffer.allocUnsafe(4);
  size.writeUInt32BE(length);
  return size;
}

/** clamd's name for a stream it did not scan whole (AlertExceedsMax), e.g. `Heuristics.Limits.Exceeded.MaxRecursion`. */
const LIMIT_EXCEEDED = /^Heuristics\.Limits\.Exceeded(?:\.(\w+))?/;

/** `stream: OK`, `stream: Name FOUND` — in a session prefixed with the command's id (`3: stream: OK`). */
function verdictOf(line: string): ScanVerdict | ScannerError {
  const text = line.replace(/^\d+: /, '');
  if (text === 'stream: OK') return { clean: true };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found) {
    const signature = (found[1] as string).slice(0, 200);
    const limit = LIMIT_EXCEEDED.exec(signature);
    return limit ? { clean: false, signature, exceeded: limit[1] ?? 'a limit' } : { clean: false, signature };
  }
  if (/size limit exceeded/i.test(text)) return new ScannerError('too_large', 'the body exceeds clamd StreamMaxLength');
  return new ScannerError('protocol', `unexpected clamd reply: ${text.slice(0, 120) || '(none)'}`);
}

/** A connection to clamd: in a session (reusable) or for one command. */
interface Connection {
  readonly socket: Socket;
  readonly session: boolean;
  /** Set while a scan waits for its reply. */
  onReply: ((line: string) => void) | undefined;
  onFailure: ((err: ScannerError) => void) | undefined;
  dead: boolean;
}

export function createClamdClient(options: ClamdOptions): ClamdClient {
  let active = 0;
  const idle: Connection[] = [];
  /**
   * A scan's connection was lost before its verdict, and clamd has given none since: its content may
   * have crashed clamd, and until clamd answers again nothing listening is no proof of an outage the
   * sender did not cause (a crash, then an upload while clamd restarts, was forwarded under fail-open).
   */
  let lostScanAt: number | undefined;
  /** `resend`: this connection sends again a scan whose pooled connection closed before its verdict. */
  const connectionFailure = (connected: boolean, err: NodeJS.ErrnoException | undefined, resend: boolean) => {
    const why = err?.code ?? err?.message ?? 'connection closed';
    if (connected)
      return new ScannerError('connection', `clamd at ${options.address} closed the connection before its verdict (${why})`, true);
    // The pooled connection may have died idle (then clamd listens, and this connect succeeds) or
    // while clamd scanned this very stream, which crashed it: nothing told the two apart, and a crash
    // was forwarded under fail-open as unreachable. So the scan counts as lost, whatever the connect error.
    if (resend)
      return new ScannerError(
        'connection',
        `clamd at ${options.address} lost the scan: its connection closed before the verdict, and a new one failed (${why})`,
        true,
      );
    if (err?.code !== undefined && NOT_LISTENING.has(err.code)) {
      if (lostScanAt === undefined) return new ScannerError('unreachable', `cannot reach clamd at ${options.address} (${why})`);
      const ago = Math.round((Date.now() - lostScanAt) / 1000);
      return new ScannerError('connection', `cannot reach clamd at ${options.address} (${why}) since it lost a scan ${ago} s ago`);
    }
    return new ScannerError('connection', `cannot connect to clamd at ${options.address} (${why})`);
  };

  function open(resend = false): Connection {
    const session = options.idleConnections > 0;
    const socket = connectTo(options.address);
    socket.setNoDelay(true);
    const conn: Connection = { socket, session, onReply: undefined, onFailure: undefined, dead: false };
    let connected = false;
    socket.once('connect', () => (connected = true));
    let pending = '';
    const die = (err: ScannerError) => {
      if (conn.dead) return;
      conn.dead = true;
      const i = idle.indexOf(conn);
      if (i !== -1) idle.splice(i, 1);
      socket.destroy();
      conn.onFailure?.(err);
    };
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      let nul;
      while ((nul = pending.indexOf('\0')) !== -1) {
        const line = pending.slice(0, nul).trim();
        pending = pending.slice(nul + 1);
        if (line !== READ_TIMED_OUT) conn.onReply?.(line);
      }
    });
    // `on`, not `once`: a write racing the close may report a second error, which must not throw.
    socket.on('error', (err: NodeJS.ErrnoException) => die(connectionFailure(connected, err, resend)));
    socket.once('end', () => {
      // Without a session, clamd answers and closes; a reply may end at the close without a NUL.
      const line = pending.trim();
      pending = '';
      if (line && line !== READ_TIMED_OUT) conn.onReply?.(line);
      die(connectionFailure(connected, undefined, resend));
    });
    socket.once('close', () => die(connectionFailure(connected, undefined, resend)));
    if (session) socket.write('zIDSESSION\0');
    return conn;
  }

  function release(conn: Connection): void {
    conn.onReply = undefined;
    conn.onFailure = undefined;
    if (conn.dead || !conn.session || idle.length >= options.idleConnections) {
      if (!conn.dead && conn.session) conn.socket.end('zEND\0');
      else conn.socket.destroy();
      conn.dead = true;
      return;
    }
    // An idle connection must not keep the process alive.
    conn.socket.unref();
    idle.push(conn);
  }

  function failedStream(err: ScannerError): ScanStream {
    return { write: () => undefined, drained: () => undefined, end: () => Promise.reject(err), abort: () => undefined };
  }

  function slot(parent?: SpanParent): ScanSlot | ScannerError {
    if (active >= options.maxConcurrent) return new ScannerError('overloaded', `${options.maxConcurrent} scans already in flight`);
    active++;
    let held = true;
    const release = () => {
      if (held) active--;
      held = false;
    };
    return { stream: () => scanOn(parent, undefined), release };
  }

  function stream(parent?: SpanParent): ScanStream {
    const one = slot(parent);
    if (one instanceof ScannerError) return failedStream(one);
    return scanOn(parent, () => one.release());
  }

  /** A scan on a slot already held; `settled`, when given, runs once its outcome is known. */
  function scanOn(parent: SpanParent | undefined, settled: (() => void) | undefined): ScanStream {
    const span = startClientSpan('clamd INSTREAM', { 'server.address': options.address }, parent);
    const pooled = idle.pop();
    let conn = pooled ?? open();
    conn.socket.ref();
    let sent = 0;
    /** What was sent on a pooled connection, for a resend on a new one (REPLAY_BYTES). */
    let replay: Buffer[] | undefined = pooled ? [] : undefined;
    let failure: ScannerError | undefined;
    /** The outcome, once known (clamd may answer before the end, e.g. size limit exceeded). */
    let result: ScanVerdict | ScannerError | undefined;
    let settle: ((v: ScanVerdict | ScannerError) => void) | undefined;
    /** Set while clamd's socket holds more than STREAM_HIGH_WATER: resolves at its 'drain'. */
    let backlog: { readonly drained: Promise<void>; clear(): void } | undefined;
    const finish = (v: ScanVerdict | ScannerError) => {
      if (result !== undefined) return;
      result = v;
      backlog?.clear();
      settled?.();
      span.setAttributes({ 'clamd.bytes': sent, ...(v instanceof ScannerError ? {} : { 'clamd.infected': !v.clean }) });
      endClientSpan(span, v instanceof ScannerError ? v : undefined);
      if (v instanceof ScannerError) {
        conn.dead = true;
        conn.socket.destroy();
      }
      release(conn);
      settle?.(v);
    };
    const onFailure = (err: ScannerError) => {
      if (replay !== undefined && result === undefined && failure === undefined) return resend();
      // Lost for good: clamd had the connection (or the pooled one before a resend that failed).
      if (err.lostAfterConnect && result === undefined) lostScanAt ??= Date.now();
      failure ??= err;
      // A dead socket never drains: the paused upload goes on (and fails at end()) at once.
      backlog?.clear();
      if (settle) finish(err);
    };
    /** clamd is behind: the caller waits, and a clamd that takes none of it within `timeout` fails the scan. */
    const watchBacklog = () => {
      const socket = conn.socket;
      if (backlog !== undefined || result !== undefined || socket.writableLength <= STREAM_HIGH_WATER) return;
      let resolve!: () => void;
      const drained = new Promise<void>((r) => (resolve = r));
      const timer = setTimeout(
        () => finish(new ScannerError('timeout', `clamd took no more of the stream within ${options.timeout} ms`)),
        options.timeout,
      );
      const clear = () => {
        clearTimeout(timer);
        socket.off('drain', clear);
        backlog = undefined;
        resolve();
      };
      // writableLength above the socket's high-water mark: the write that put it there returned false.
      socket.once('drain', clear);
      backlog = { drained, clear };
    };
    const onReply = (line: string) => {
      const verdict = verdictOf(line);
      if (!(verdict instanceof ScannerError)) lostScanAt = undefined; // clamd works again
      finish(verdict);
    };
    const begin = () => {
      conn.onFailure = onFailure;
      conn.onReply = onReply;
      conn.socket.write('zINSTREAM\0');
    };
    const sendFrames = (chunk: Buffer) => {
      for (let off = 0; off < chunk.length; off += FRAME) {
        const part = chunk.subarray(off, Math.min(off + FRAME, chunk.length));
        conn.socket.write(frameHeader(part.length));
        conn.socket.write(part);
      }
    };
    /**
     * The pooled connection closed before the verdict: the same scan on a new one, once. Silent
     * only if that works (a connection clamd closed idle); if it fails, the scan is lost.
     */
    const resend = () => {
      const chunks = replay ?? [];
      replay = undefined;
      backlog?.clear();
      conn = open(true);
      span.setAttribute('clamd.resent', true);
      begin();
      for (const chunk of chunks) sendFrames(chunk);
      // end() has been called (it sets settle): the end of stream goes again too.
      if (settle) conn.socket.write(END_OF_STREAM);
      watchBacklog();
    };
    begin();

    return {
      write(chunk) {
        if (result !== undefined || failure || conn.dead) return;
        sent += chunk.length;
        if (sent > options.streamMaxLength) {
          failure = new ScannerError('too_large', `the body exceeds clamd's StreamMaxLength (${options.streamMaxLength} bytes)`);
          return;
        }
        if (replay !== undefined) {
          if (sent <= REPLAY_BYTES) replay.push(chunk);
          else replay = undefined;
        }
        sendFrames(chunk);
        watchBacklog();
      },
      drained: () => (failure === undefined ? backlog?.drained : undefined),
      end() {
        if (result !== undefined) return result instanceof ScannerError ? Promise.reject(result) : Promise.resolve(result);
        return new Promise<ScanVerdict>((resolve, reject) => {
          settle = (v) => {
            clearTimeout(timer);
            if (v instanceof ScannerError) reject(v);
            else resolve(v);
          };
          const timer = setTimeout(
            () => finish(new ScannerError('timeout', `clamd gave no verdict within ${options.timeout} ms`)),
            options.timeout,
          );
          if (failure) finish(failure);
          else conn.socket.write(END_OF_STREAM);
        });
      },
      abort() {
        finish(new ScannerError('protocol', 'scan aborted'));
      },
    };
  }

  return {
    stream,
    slot,
    scan(chunks) {
      const s = stream();
      for (const chunk of chunks) s.write(chunk);
      return s.end();
    },
    close() {
      for (const conn of idle.splice(0)) {
        conn.dead = true;
        conn.socket.end('zEND\0');
      }
    },
  };
}
