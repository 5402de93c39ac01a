/**
 * One HTTP/2 request and its response over Node's core stream API, with the members the request
 * handler, the forwarder and rescue use (the same names as node:http's, so one handler serves both).
 *
 * Why not Node's compatibility API (`Http2ServerRequest` / `Http2ServerResponse`): per stream it
 * builds a Readable that copies the stream's data into a second buffer, a Stream for the response,
 * a Proxy for `socket`, 13 listeners, and asks every response for trailers (`waitForTrailers`: one
 * more callback and an empty DATA frame). The full pipeline over h2, loaded at once against the
 * build on the compat API: 1.13× the requests at 0.89× the CPU per request
 * (bench/results/builds-2026-11-30T07-05-19.json).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { constants, type ServerHttp2Stream } from 'node:http2';
import { PassThrough, type Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { bodyStreamError, ClientClosedError } from './body.js';

const { NGHTTP2_NO_ERROR } = constants;

/** The request side: headers and the stream, which is also the body's Readable. */
export class H2Request {
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly method: string;
  readonly url: string;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    readonly rawHeaders: string[],
    /** The connection's TLS socket (not the core API's Proxy of it). */
    readonly socket: TLSSocket,
  ) {
    this.method = headers[':method'] as string;
    this.url = headers[':path'] as string;
  }
}

/**
 * Set on every stream as it arrives. A stream the client resets emits 'error' (unheard, an uncaught
 * exception) and first 'aborted', after which Node still ends its readable side as it destroys it:
 * an 'end' that would pass a truncated body for a whole one. Destroyed at 'aborted' with
 * ClientClosedError instead, so every reader of the body (read whole, spooled or streamed on) sees
 * the client leave and none sees an end.
 */
export function guardStream(stream: ServerHttp2Stream): void {
  stream.on('error', ignoreStreamError);
  stream.once('aborted', destroyAsClosed);
}

const ignoreStreamError = (): void => undefined;

function destroyAsClosed(this: ServerHttp2Stream): void {
  this.destroy(new ClientClosedError());
}

/**
 * The request body as a Readable of its own, for a body streamed upstream: undici destroys a body
 * stream once it has sent it (or failed to), and so does an async iterator left early; done to the
 * h2 stream itself, that would reset the exchange before its response. The stream's error (the
 * client left: guardStream) fails the copy, unless the body had already arrived whole.
 */
export function detachedBody(stream: ServerHttp2Stream): Readable {
  const body = new PassThrough();
  // Whoever reads the body gets its error; nobody may: undici takes its listener off a request that
  // was cancelled while queued for a backend connection, and the error the client's reset then put
  // on the body was uncaught, ending the process (docs/adversarial.md 198).
  body.on('error', () => undefined);
  stream.once('error', (err: Error) => {
    if (!body.writableEnded) body.destroy(bodyStreamError(err));
  });
  return stream.pipe(body);
}

function endLater(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.writableEnded) stream.end();
}

/** The response side, written to the stream: HEADERS with `respond`, then DATA. */
export class H2Response {
  statusCode = 200;
  private ended = false;

  constructor(private readonly stream: ServerHttp2Stream) {}

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get writableEnded(): boolean {
    return this.ended;
  }

  /**
   * The response went out whole: ended here, and the stream closed without a reset. Not the stream's
   * own writableFinished alone: a stream that `respond` ended (no body) never emits 'finish', nor
   * does one whose END_STREAM went out before its last write reported back (see `end`); either
   * would make an answered request read as aborted.
   */
  get writableFinished(): boolean {
    const stream = this.stream;
    return stream.writableFinished || (this.ended && stream.closed && stream.rstCode === NGHTTP2_NO_ERROR);
  }

  /**
   * Sends the status and headers. Takes the `headers` object over (adds `:status` to it). Throws
   * as `respond` does on headers h2 forbids (connection-specific ones) or when already sent; does
   * nothing on a stream the client has reset.
   */
  writeHead(status: number, headers: OutgoingHttpHeaders): this {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    this.statusCode = status;
    headers[':status'] = status;
    // With HEAD, 204 and 304 `respond` ends the stream itself: no DATA may follow.
    stream.respond(headers);
    return this;
  }

  write(chunk: Buffer): boolean {
    const stream = this.stream;
    if (!stream.headersSent) this.writeHead(this.statusCode, {});
    // Ended by respond (HEAD, 204, 304) or reset by the client: the chunk has nowhere to go.
    if (stream.writableEnded || stream.destroyed) return true;
    return stream.write(chunk);
  }

  end(body?: string | Buffer): this {
    if (this.ended) return this;
    this.ended = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return this;
    if (!stream.headersSent) {
      if (body === undefined) {
        stream.respond({ ':status': this.statusCode }, { endStream: true });
        return this;
      }
      this.writeHead(this.statusCode, {});
    }
    if (stream.writableEnded) return this;
    if (body !== undefined) stream.write(body);
    // A write still on its way (the backend's last chunk, or `body`): ended on a later tick. Ended
    // in the same tick, Node sends END_STREAM with that chunk and closes the stream before the write
    // reports back, and the late report builds an ERR_STREAM_DESTROYED (stack trace included) for
    // every response. Ended later, END_STREAM goes in an empty DATA frame after the write: 1.04 and
    // 1.09 × the throughput over h2 (bench/results/builds-2026-11-30T12-59-52.json, …T13-00-37.json).
    if (stream.writableLength > 0) process.nextTick(endLater, stream);
    else stream.end();
    return this;
  }

  /** With an error the stream is reset with INTERNAL_ERROR, so a cut response never looks complete. */
  destroy(error?: Error): void {
    this.stream.destroy(error);
  }

  /** 'close' when the stream is done or reset, 'drain' when it takes more data. */
  once(event: 'close' | 'drain' | 'finish', listener: () => void): this {
    this.stream.once(event, listener);
    return this;
  }

  /** For events that come once anyway ('close'): no wrapper per listener, as `once` makes. */
  on(event: 'close', listener: () => void): this {
    this.stream.on(event, listener);
    return this;
  }
}
