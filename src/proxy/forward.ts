/**
 * Forwarding to the backend over a pooled undici connection. Bodies stream both ways with
 * backpressure and are never buffered. Failures before the response starts become problem+json
 * (502 unreachable / 504 timeout); failures after it starts abort the client's stream, since a
 * status can no longer be sent.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { buildConnector, Client, errors, Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { RequestContext } from '../pipeline/stage.js';
import type { BodyLease } from '../traffic/body-budget.js';
import { createBackendProbe } from './backend-probe.js';
import { ClientClosedError } from './body.js';
import { downstreamResponseHeaders, type HeaderRules } from './headers.js';
import { isReplayableMethod, isStaleConnectionFailure, markingReads } from './stale-connection.js';
import { timedConnector } from './timed-connector.js';
import { closeConnectionsOnTrailer } from './trailer-connection-close.js';
import { upstreamAddressOf } from './upstream-address.js';

/** The response side the forwarder writes to: HTTP/1.1 ServerResponse or HTTP/2 H2Response (h2-exchange.ts). */
export interface DownstreamResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: IncomingHttpHeaders): unknown;
  /** node:http's: sends the head now (it otherwise waits for the first write). h2's writeHead sends it at once. */
  flushHeaders?(): void;
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(error?: Error): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

export interface ForwardOutcome {
  /**
   * Called once when the upstream exchange fails; `started` tells whether any of the response was
   * handed to the client (its head goes with the first body bytes: a body that fails before them
   * is refused as any failure before the response).
   */
  onFailure(error: WardenError, started: boolean): void;
  /**
   * Sees the response once it has been streamed to the client in full (a copy of at most
   * `maxBytes`; larger bodies are not inspected). Never delays or changes what the client gets.
   */
  inspect?: ResponseInspection | undefined;
}

export interface ResponseInspection {
  maxBytes: number;
  /**
   * The copy's bytes, from the memory budget request bodies share (limits.max_buffered_bytes): a
   * client that reads slowly keeps its response, and so the copy, in flight up to send_timeout.
   * Given back when the exchange ends, however it ends.
   */
  lease: BodyLease;
  /** Whether onComplete reads this response's body; when not, none is copied and it gets an empty one. */
  readsBody(status: number, headers: IncomingHttpHeaders): boolean;
  onComplete(status: number, headers: IncomingHttpHeaders, body: Buffer): void;
  /**
   * The copy was dropped and this response goes unchecked: the budget was short (`budget`) or the
   * body outgrew `maxBytes` (`too_large`).
   */
  onSkipped(reason: 'budget' | 'too_large'): void;
}

export interface Forwarder {
  forward(
    ctx: RequestContext,
    /** A Buffer when the body was read whole (one write with the head), a stream or iterable otherwise. */
    body: Buffer | Readable | AsyncIterable<Buffer> | Iterable<Buffer> | null,
    res: DownstreamResponse,
    outcome: ForwardOutcome,
    /**
     * Sent with `Connection: close` on a connection not reused: a body the backend may not read
     * (unexpected for the route or method) would otherwise be parsed there as the next request.
     */
    closeAfter?: boolean,
  ): Aborter;
  /**
   * True when a connection to the backend opens (and the health path answers < 500, if configured):
   * one probe at a time, its answer reused briefly, over a connection of its own (backend-probe.ts).
   */
  probe(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Lets the request side cancel the upstream exchange (client went away). */
export interface Aborter {
  abort(): void;
}

/**
 * undici runs its connect, headers and body timeouts on a timer wheel that ticks every 499 ms
 * (undici/lib/util/timers.js), so they fire late: a 300 ms headers timeout answered after ~1 s.
 * Below this bound that lateness (up to ~0.7 s) is more than 7 % of the timeout, so the forwarder
 * keeps native timers of its own and ends the exchange on time; undici's headers and body timeouts
 * stay configured behind them. Longer timeouts (the defaults are 30 s) cost no timer per request.
 */
export const EXACT_TIMEOUTS_BELOW_MS = 10_000;

/** `ms` when the forwarder times it itself, 0 when undici alone does. */
const exactMs = (ms: number): number => (ms > 0 && ms < EXACT_TIMEOUTS_BELOW_MS ? ms : 0);

/** The timeouts the forwarder keeps itself, 0 for those left to undici alone. */
interface ExactTimeouts {
  readonly headers: number;
  readonly body: number;
  /** upstream.timeouts.headers, however long: undici restarts its own timer on every 1xx. */
  readonly headersDeadline: number;
}

function exactTimeouts(cfg: UpstreamConfig): ExactTimeouts {
  return { headers: exactMs(cfg.timeouts.headers), body: exactMs(cfg.timeouts.body), headersDeadline: cfg.timeouts.headers };
}

/** What the pool's connections and a retry's fresh one (stale-connection.ts) are opened with. */
function connectionOptions(cfg: UpstreamConfig): Pool.Options {
  const { socketPath } = upstreamAddressOf(cfg.url);
  const address = socketPath !== undefined ? { socketPath } : {};
  // A native connect timer below EXACT_TIMEOUTS_BELOW_MS, as for headers and body; undici's beyond.
  const open =
    exactMs(cfg.timeouts.connect) > 0
      ? timedConnector(cfg.timeouts.connect, address)
      : buildConnector({ ...address, timeout: cfg.timeouts.connect });
  return {
    pipelining: 1,
    // 0 is "no reuse" (each request on a connection of its own: `reset` in createForwarder); undici
    // refuses a keep-alive timeout of 0, which made every request fail.
    keepAliveTimeout: cfg.keep_alive > 0 ? cfg.keep_alive : 1,
    headersTimeout: cfg.timeouts.headers,
    bodyTimeout: cfg.timeouts.body,
    connect: markingReads(open),
    ...address,
  };
}

export function createPool(cfg: UpstreamConfig): Pool {
  // A `Connection: close` in a response's trailers ends its connection (trailer-connection-close.ts).
  closeConnectionsOnTrailer();
  return new Pool(upstreamAddressOf(cfg.url).origin, { ...connectionOptions(cfg), connections: cfg.connections });
}

function onExactTimeout(handler: ForwardHandler): void {
  handler.timedOut();
}

function onSendTimeout(handler: ForwardHandler): void {
  handler.sendTimedOut();
}

function onQueuedTimeout(handler: ForwardHandler): void {
  handler.queuedTimedOut();
}

/** A native timer that, like undici's, does not by itself keep the process alive. */
function exactTimer(handler: ForwardHandler, ms: number): NodeJS.Timeout {
  return setTimeout(onExactTimeout, ms, handler).unref();
}

/** The media type `text/event-stream`, parameters or not; anchored, so linear on any value. */
const EVENT_STREAM = /^[ \t]*text\/event-stream[ \t]*(?:;|$)/i;

/**
 * A `text/event-stream` response (server-sent events): its head goes to the client at once, not
 * with the first event. A test, no string built: every response's type is asked.
 */
export const isEventStream = (contentType: string | string[] | undefined): boolean =>
  typeof contentType === 'string' && EVENT_STREAM.test(contentType);

/** undici / socket errors → what the client is told. */
export function upstreamError(err: unknown, timeouts = 'upstream.timeouts'): WardenError {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: `${timeouts}.connect`, cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: `${timeouts}.headers`, cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: `${timeouts}.body`, cause: err });
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new WardenError('ERR_UPSTREAM_PROTOCOL', { rule: `upstream:${code}`, cause: err });
    default: {
      const invalid = invalidResponse(err);
      if (invalid !== undefined) return new WardenError('ERR_UPSTREAM_PROTOCOL', { rule: `upstream:${invalid}`, cause: err });
      return new WardenError('ERR_UPSTREAM_UNAVAILABLE', { rule: `upstream:${code ?? 'error'}`, cause: err });
    }
  }
}

/**
 * What undici reports of a response that is not HTTP, by its error's kind rather than its code:
 * its HTTPParserError carries none (it looks llhttp's error number up in a name → number map), a
 * status below 100 fails an assertion, and an unasked-for 100 or 101 ends the socket as "bad
 * response" / "bad upgrade". All were 502 "Backend unavailable".
 */
function invalidResponse(err: unknown): string | undefined {
  if (err instanceof errors.HTTPParserError) return 'http_parser';
  const e = err as { code?: string; message?: string };
  if (e.code === 'ERR_ASSERTION') return 'invalid_status';
  if (e.code === 'UND_ERR_SOCKET' && (e.message === 'bad response' || e.message === 'bad upgrade')) return e.message.replace(' ', '_');
  return undefined;
}

const LENGTH_MISMATCH = 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';

/**
 * The fields Node's HTTP/2 layer sends at most once (kSingleValueHeaders in its
 * lib/internal/http2/util.js; `respond` throws ERR_HTTP2_HEADER_SINGLE_VALUE on a repeat). A
 * backend response repeating one is ambiguous (which Location does a client follow?), so it is
 * refused over HTTP/1.1 too: the same 502 on both protocols. List fields (Set-Cookie, Vary, …) pass.
 */
const SINGLE_VALUE_FIELDS: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

type Answerer = 'upstream' | 'egress';
const whose = (from: Answerer) => (from === 'egress' ? 'destination' : 'backend');

/** 502 for the first single-value field the response repeats (undici gives a repeated field as an array). */
function repeatedSingleValue(headers: IncomingHttpHeaders, from: Answerer): WardenError | undefined {
  for (const name in headers) {
    const value = headers[name];
    if (Array.isArray(value) && value.length > 1 && SINGLE_VALUE_FIELDS.has(name)) {
      return new WardenError('ERR_UPSTREAM_PROTOCOL', {
        rule: `${from}.duplicate_${name.replace(/-/g, '_')}`,
        detail: `The ${whose(from)}'s response has more than one ${name} header.`,
      });
    }
  }
  return undefined;
}

/**
 * 502 for a response in a transfer coding besides chunked (`Transfer-Encoding: gzip, chunked`).
 * undici takes off the chunked framing only and the field is hop-by-hop (dropped), so the caller
 * got the still-encoded bytes as the content, with nothing saying so. Warden sends no TE, so a
 * backend may use no other coding (RFC 9112 §6.1); the common `chunked` costs one comparison.
 */
function transferCodingError(headers: IncomingHttpHeaders, from: Answerer): WardenError | undefined {
  const te = headers['transfer-encoding'];
  if (te === undefined || te === 'chunked' || (typeof te === 'string' && te.trim().toLowerCase() === 'chunked')) return undefined;
  return new WardenError('ERR_UPSTREAM_PROTOCOL', {
    rule: `${from}.transfer_coding`,
    detail: `The ${whose(from)} answered in a transfer coding other than chunked.`,
  });
}

/**
 * A status outside 100–599 (RFC 9110 §15): undici reads any three digits and node:http writes
 * them, while node:http2 cannot send one (its `respond` throws, a 502 there). Refused on both, and
 * from an egress destination (`from: 'egress'`) too: the backend has no class for it either.
 */
function statusError(statusCode: number, from: Answerer): WardenError | undefined {
  if (statusCode <= 599) return undefined;
  return new WardenError('ERR_UPSTREAM_PROTOCOL', {
    rule: `${from}.status`,
    detail: `The ${whose(from)} answered with status ${statusCode}, outside 100–599.`,
  });
}

/**
 * What makes a response unfit to pass on (502): a status outside 100–599, a transfer coding besides
 * chunked, a single-value field repeated (`out`: the fields that would be passed on). From the
 * backend, and from an egress destination to the backend: its HTTP client is as misled.
 */
export function responseProblem(
  statusCode: number,
  headers: IncomingHttpHeaders,
  out: IncomingHttpHeaders,
  from: Answerer,
): WardenError | undefined {
  return statusError(statusCode, from) ?? transferCodingError(headers, from) ?? repeatedSingleValue(out, from);
}

/** Sends a request again on a connection of its own (the forwarder's, one for all requests). */
type SendFresh = (options: Dispatcher.DispatchOptions, handler: ForwardHandler) => void;

class ForwardHandler implements Dispatcher.DispatchHandler, Aborter {
  private controller: Dispatcher.DispatchController | undefined;
  /** The backend's response head has arrived. */
  private started = false;
  /**
   * Its head has been handed to the client's response, with the first body bytes or the end: held
   * until then, so that a body that fails before its first byte is still answered 502/504 (over
   * HTTP/1.1 node:http writes a head only with the first write, unless flushed). An event stream's
   * goes at once (onResponseStart): its client waits for it to be open, and its first event may be
   * long in coming.
   */
  private headSent = false;
  /** The head to send (downstreamResponseHeaders' own object), held from onResponseStart. */
  private head: IncomingHttpHeaders | undefined;
  private finished = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private copy: Buffer[] | undefined;
  /** Whether the copy takes the body's bytes (the check reads them), or stays empty. */
  private copyBody = false;
  private copied = 0;
  /**
   * The exact headers or body timeout running (EXACT_TIMEOUTS_BELOW_MS), if any; or, while the
   * request waits for a connection of the pool, timeouts.headers from dispatch, however long.
   */
  private timer: NodeJS.Timeout | undefined;
  /** Sent a second time (sendAgain): a deadline meanwhile is no full pool's. */
  private retried = false;
  /** performance.now() as a connection took the request (onRequestStart): how soon a stale close followed. */
  private writtenAt = 0;
  /** The client reads slower than the backend sends: the body timeout waits, as undici's does. */
  private paused = false;
  /**
   * Runs while the client reads nothing (limits.send_timeout). undici's body timeout stops while
   * the exchange is paused, so without it a client that never reads would hold this backend
   * connection for good: a few such clients held every connection of the pool (slow read).
   */
  private sendTimer: NodeJS.Timeout | undefined;
  private readonly resume = () => {
    this.paused = false;
    clearTimeout(this.sendTimer);
    this.timer?.refresh();
    this.controller?.resume();
  };

  /** performance.now() at dispatch: the start of the backend's time (ctx.upstreamMs). */
  private readonly dispatchedAt = performance.now();
  /**
   * The request may be sent again, once, if a reused connection turns out closed before any answer
   * (stale-connection.ts): set by the forwarder, cleared by any response head (1xx too) and by the retry.
   */
  retry: Dispatcher.DispatchOptions | undefined;

  constructor(
    private readonly res: DownstreamResponse,
    private readonly rules: HeaderRules,
    private readonly outcome: ForwardOutcome,
    private readonly ctx: Pick<RequestContext, 'requestId' | 'responseHeaders' | 'upstreamMs' | 'route'>,
    private readonly exact: ExactTimeouts,
    /** The whole request leaves in one write (a body read whole, or none). */
    private readonly sentAtOnce: boolean,
    private readonly sendTimeoutMs: number,
    private readonly sendFresh: SendFresh,
  ) {}

  abort(): void {
    if (this.finished) return;
    this.settle();
    this.controller?.abort(new Error('client closed the request'));
  }

  /**
   * pool.dispatch has returned. A request no connection took at once (all `upstream.connections`
   * busy, or one being opened) waits in undici's queue, where neither undici's headers timeout nor
   * the exact one runs: behind long responses (event streams, slow downloads) it waited for good.
   * Its wait is timed from here, as egress times its calls (egress.ts), with the timer the exact
   * timeouts use; a request taken at once (the usual case) costs none.
   */
  dispatched(): void {
    if (this.controller !== undefined || this.finished || this.exact.headersDeadline <= 0) return;
    this.timer = exactTimer(this, this.exact.headersDeadline);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    this.writtenAt = performance.now();
    if (this.finished) {
      // Answered while queued (or its client left): undici checks `aborted` before it writes
      // anything (client-h1.js writeH1), so the backend never sees it.
      controller.abort(new Error('client closed the request'));
      return;
    }
    if (this.timer !== undefined) {
      // It was queued. With the body in this write the deadline from dispatch stands; a streamed
      // body starts to flow now, and the wait for headers starts after it (requestSent, or undici's).
      if (this.sentAtOnce) return;
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    // undici calls this as it writes the request: with the body in the same write, the wait for
    // the response headers starts now. A streamed body may take longer to send: see requestSent.
    if (this.exact.headers > 0 && this.sentAtOnce) this.timer = exactTimer(this, this.exact.headers);
  }

  /**
   * The last chunk of a streamed body has been handed to undici: the wait for the response
   * headers starts now, as undici's own timer restarts then (its handler API does not report it).
   */
  requestSent(): void {
    if (this.finished || this.started) return;
    clearTimeout(this.timer);
    this.timer = exactTimer(this, this.exact.headers);
  }

  /** The client has read nothing for send_timeout: its response is cut and the backend connection freed. */
  sendTimedOut(): void {
    if (this.finished || !this.paused) return;
    const error = new WardenError('ERR_SEND_TIMEOUT', {
      rule: 'limits.send_timeout',
      detail: `The client read nothing of the response for ${this.sendTimeoutMs} ms.`,
    });
    this.fail(error);
    this.controller?.abort(error);
  }

  /** The exact timer fired: no response headers, or no body data, in time. */
  timedOut(): void {
    if (this.finished) return;
    // The client holds the stream back, not the backend: the same timer again (refresh re-arms a fired one).
    if (this.started && this.paused) {
      this.timer?.refresh();
      return;
    }
    this.timer = undefined;
    if (this.controller === undefined) {
      // Still queued. The verdict waits a turn, as egress's does: after an event-loop stall past
      // this deadline and the connect one, Node may run this timer first, and a connect timeout
      // (timed-connector.ts) that expired first would be reported as a headers timeout.
      setImmediate(onQueuedTimeout, this);
      return;
    }
    this.controller.abort(this.started ? new errors.BodyTimeoutError() : new errors.HeadersTimeoutError());
  }

  /** timeouts.headers passed with the request still queued: 504, and it is never sent (onRequestStart). */
  queuedTimedOut(): void {
    if (this.finished) return;
    if (this.controller !== undefined) {
      // Taken by a connection since: with its body it has had its time; a streamed body flows, and is timed after it.
      if (this.sentAtOnce && !this.started) this.controller.abort(new errors.HeadersTimeoutError());
      return;
    }
    this.fail(
      new WardenError('ERR_UPSTREAM_TIMEOUT', {
        rule: 'upstream.timeouts.headers',
        detail: this.retried
          ? `The backend closed its connection as the request was sent, and a new one did not take it again within ${this.exact.headersDeadline} ms.`
          : `No connection to the backend took the request within ${this.exact.headersDeadline} ms (upstream.connections all busy); it was not sent.`,
      }),
    );
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // The backend has taken the request: it is never sent again.
    this.retry = undefined;
    if (statusCode < 200) {
      // Interim responses are the sidecar's own business. undici restarts its headers timer on each
      // one, so a backend sending 102 every few seconds held the request for good: the deadline
      // from dispatch is kept natively from the first one on (the exact timer, when running, is not restarted).
      if (this.timer === undefined && this.exact.headersDeadline > 0) {
        this.timer = exactTimer(this, Math.max(0, this.remainingMs()));
      }
      return;
    }
    this.ctx.upstreamMs = performance.now() - this.dispatchedAt;
    clearTimeout(this.timer);
    this.timer = this.exact.body > 0 ? exactTimer(this, this.exact.body) : undefined;
    const out = downstreamResponseHeaders(headers, this.rules);
    // No body follows a 204 or 304, whatever Content-Length the backend kept (a 304 may name the
    // 200's, RFC 9110 §8.6; a 204 must not send one): clients such as undici refuse the mismatch.
    // Nor a 205 (RFC 9110 §15.3.6), which Node's h2 `respond` ends in its HEADERS as it does a 204:
    // Express's sendStatus(205) sent "Reset Content" with its length, and h2 clients got a reset.
    if (statusCode === 204 || statusCode === 304) delete out['content-length'];
    else if (statusCode === 205) out['content-length'] = '0';
    // Warden's id, the one in its access line and events, whatever the backend sent: a backend's own
    // (or two) handed the caller ids that matched neither (red team 29).
    out['x-request-id'] = this.ctx.requestId;
    if (this.ctx.responseHeaders !== undefined) Object.assign(out, this.ctx.responseHeaders);
    // After the stages' own headers: the answer to one caller is not for a shared cache (cache-scope.ts).
    this.ctx.route.cacheScope?.mark(out);
    const refused = responseProblem(statusCode, headers, out, 'upstream');
    if (refused !== undefined) {
      this.fail(refused);
      controller.abort(refused);
      return;
    }
    this.started = true;
    this.status = statusCode;
    this.head = out;
    if (this.outcome.inspect) {
      this.headers = headers;
      this.copy = [];
      this.copyBody = this.outcome.inspect.readsBody(statusCode, headers);
    }
    // An event stream is open once its head is there (EventSource's onopen), its first event may
    // come much later: held for it, the head was late, and a first event later than
    // timeouts.body turned the 200 into 504. The body timeout still runs: heartbeats must come within it.
    if (isEventStream(out['content-type']) && this.sendHead(controller)) this.res.flushHeaders?.();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return;
    this.timer?.refresh();
    if (this.status === 205) return; // sent with Content-Length: 0 (onResponseStart)
    if (!this.headSent && !this.sendHead(controller)) return;
    const inspect = this.outcome.inspect;
    if (this.copyBody && this.copy !== undefined && inspect !== undefined) {
      this.copied += chunk.length;
      if (this.copied > inspect.maxBytes) {
        this.dropCopy();
        inspect.onSkipped('too_large');
      } else if (!inspect.lease.take(chunk.length)) {
        this.dropCopy();
        inspect.onSkipped('budget');
      } else this.copy.push(chunk);
    }
    if (!this.res.write(chunk)) {
      this.paused = true;
      controller.pause();
      this.res.once('drain', this.resume);
      this.sendTimer = setTimeout(onSendTimeout, this.sendTimeoutMs, this).unref();
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.finished) return;
    if (!this.headSent && !this.sendHead(controller)) return;
    const copy = this.copy;
    this.settle();
    this.res.end();
    if (copy !== undefined) this.outcome.inspect?.onComplete(this.status, this.headers, Buffer.concat(copy, this.copied));
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    if (this.finished) return;
    // A 204 or 304 has no body, though its Content-Length may name the 200's (RFC 9110 §8.6), and
    // undici then reports a length mismatch: the response is complete as it is.
    if (this.started && (this.status === 204 || this.status === 304) && (err as { code?: string }).code === LENGTH_MISMATCH) {
      if (!this.headSent && !this.sendHead(controller)) return;
      this.settle();
      this.res.end();
      return;
    }
    if (err instanceof ClientClosedError) {
      // The request body's client left: no failure of the backend, and no one to tell.
      this.settle();
      return;
    }
    // `retry` is cleared by any response head (onResponseStart): set, nothing of an answer came.
    if (this.retry !== undefined && isStaleConnectionFailure(err, performance.now() - this.writtenAt, this.remainingMs()))
      return this.sendAgain(this.retry);
    this.fail(err instanceof WardenError ? err : upstreamError(err));
  }

  /** What is left of timeouts.headers counted from the first dispatch (Infinity without one). */
  private remainingMs(): number {
    return this.exact.headersDeadline > 0 ? this.exact.headersDeadline - (performance.now() - this.dispatchedAt) : Infinity;
  }

  /**
   * The backend closed the reused connection as the request went out: once more, on a fresh
   * connection. The wait for its answer stays timed from the first dispatch (timeouts.headers in
   * all), and the request counts as queued until the new connection takes it (onRequestStart).
   */
  private sendAgain(options: Dispatcher.DispatchOptions): void {
    this.retry = undefined;
    this.retried = true;
    this.controller = undefined;
    clearTimeout(this.timer);
    this.timer = this.exact.headersDeadline > 0 ? exactTimer(this, Math.max(0, this.remainingMs())) : undefined;
    this.sendFresh(options, this);
  }

  /** Hands the held head to the client's response; false when it cannot be written (the exchange fails). */
  private sendHead(controller: Dispatcher.DispatchController): boolean {
    this.headSent = true;
    try {
      this.res.writeHead(this.status, this.head as IncomingHttpHeaders);
    } catch (err) {
      // Nothing of it went out: the client is answered 502.
      this.headSent = false;
      this.fail(new WardenError('ERR_UPSTREAM_PROTOCOL', { rule: 'upstream.response_headers', cause: err }));
      controller.abort(err as Error);
      return false;
    }
    this.head = undefined;
    return true;
  }

  private fail(error: WardenError): void {
    this.settle();
    this.outcome.onFailure(error, this.headSent);
  }

  /** The exchange is over: no timer of it may run on (each holds the handler, and the response, alive). */
  private settle(): void {
    this.finished = true;
    clearTimeout(this.timer);
    clearTimeout(this.sendTimer);
    this.dropCopy();
  }

  /** The copy goes, and its bytes back to the budget. */
  private dropCopy(): void {
    this.copy = undefined;
    this.outcome.inspect?.lease.release();
  }
}

export function createForwarder(cfg: UpstreamConfig, rules: HeaderRules, sendTimeoutMs: number): Forwarder {
  const pool = createPool(cfg);
  const backendProbe = createBackendProbe(cfg);
  // keep_alive 0: a connection per request (Connection: close). A backend that writes after its
  // response (a handler that answers twice) can then not hand those bytes to the next caller's
  // request on a reused connection, which HTTP/1.1 cannot otherwise tell from its answer.
  const timeouts = { headersTimeout: cfg.timeouts.headers, bodyTimeout: cfg.timeouts.body, ...(cfg.keep_alive > 0 ? {} : { reset: true }) };
  const closing = { ...timeouts, reset: true };
  const exact = exactTimeouts(cfg);
  const { origin } = upstreamAddressOf(cfg.url);
  const fresh = connectionOptions(cfg);
  // A connection of its own, not the pool's: another of its idle connections may be as stale. It
  // closes once the request is done (close() waits for it); a client gone meanwhile aborts it.
  const sendFresh: SendFresh = (options, handler) => {
    const client = new Client(origin, fresh);
    client.dispatch(options, handler);
    client.close().catch(ignore);
  };

  return {
    forward(ctx, body, res, outcome, closeAfter) {
      const streamed = body !== null && !Buffer.isBuffer(body) ? body : undefined;
      const handler = new ForwardHandler(res, rules, outcome, ctx, exact, streamed === undefined, sendTimeoutMs, sendFresh);
      const sent = streamed !== undefined && exact.headers > 0 ? announceEnd(streamed, handler) : body;
      const options: Dispatcher.DispatchOptions = {
        method: ctx.method,
        path: ctx.path + ctx.search,
        headers: ctx.upstreamHeaders,
        // undici streams async iterables too (the length-limited body); its types do not list them.
        body: sent as Buffer | Readable | null,
        ...(closeAfter === true ? closing : timeouts),
      };
      // Only a body held whole (or none) can go again as it went (stale-connection.ts).
      if (streamed === undefined && isReplayableMethod(ctx.method)) handler.retry = options;
      pool.dispatch(options, handler);
      handler.dispatched();
      return handler;
    },
    probe(timeoutMs) {
      return backendProbe.check(timeoutMs);
    },
    async close() {
      await Promise.all([pool.close(), backendProbe.close()]);
    },
  };
}

/**
 * A streamed body that tells the handler when undici has taken its last chunk. A stream ends once
 * undici's 'data' listener has written its last chunk; an iterable is wrapped, which costs a
 * promise per chunk, paid only with an exact headers timeout.
 */
function announceEnd(body: Readable | AsyncIterable<Buffer> | Iterable<Buffer>, handler: ForwardHandler): typeof body {
  if (isStream(body)) {
    body.once('end', () => handler.requestSent());
    return body;
  }
  return (async function* () {
    yield* body;
    handler.requestSent();
  })();
}

function ignore(): void {}

const isStream = (body: object): body is Readable => typeof (body as Partial<Readable>).once === 'function';
