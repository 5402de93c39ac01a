/**
 * Per inbound HTTP/1.1 connection: how many of its pipelined requests are inside the sidecar, the
 * responses node:http never closes, and responses ended but never taken by the client.
 *
 * node:http hands every request to the handler as soon as it is parsed and answers them in order,
 * each response queued behind the one before. Three gaps, each found as a leak (docs/adversarial.md
 * defect 114):
 * - Nothing bounded how many requests one connection had inside at once: 1 500 pipelined POSTs in
 *   one write were 1 500 in-flight slots and body leases. Node stops reading only for bytes queued
 *   in responses, and a request waiting on the backend has none.
 * - A response still queued when the connection closes never emits 'close' (Node drops its
 *   queue): the handler, which gives back what a request holds on that event, never did.
 * - A response ended at once (small, taken whole from the backend) never waits on a write, so the
 *   forwarder's send timer never runs: a client that reads nothing kept it, and the connection,
 *   for good.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { linger, type LingerLimits } from './linger.js';

export interface H1ConnectionLimits {
  /**
   * limits.max_pipelined_requests: requests of this connection inside the sidecar at once (from
   * the handler until their response is written out). Later ones wait, parsed but not started,
   * and the connection is not read meanwhile; none is refused.
   */
  maxPipelined: number;
  /** limits.send_timeout: a response ended but still not written out this long after is the client's fault. */
  sendTimeoutMs: number;
  /** Told before the connection is destroyed for a response the client does not read. */
  onSendTimeout(socket: Socket): void;
  /**
   * limits.max_requests_per_connection (0: none): the Nth request's answer closes the connection,
   * and nothing parsed after it starts. node:http's own maxRequestsPerSocket answered those with a
   * bare 503 (no problem document, no access line) and left the connection open until idle_timeout.
   */
  maxRequests?: number;
  /** Closing with bytes possibly still coming from the client: in stages (linger.ts). None: destroyed at once. */
  linger?: LingerLimits;
}

type Dispatch = (req: IncomingMessage, res: ServerResponse) => void;

/** node:http internals: the response writing on the connection now (as in rescue.ts), whether a response has emitted 'close'. */
type NodeSocket = Socket & { _httpMessage?: ServerResponse | null; parser?: { incoming?: IncomingMessage | null } | null };
/** `_last`: node:http closes the connection once it is written (decided at writeHead: close-delimited, Connection: close). */
type NodeResponse = ServerResponse & { _closed?: boolean; _last?: boolean };

const CONNECTION = Symbol('warden.h1Connection');
type TrackedSocket = Socket & { [CONNECTION]?: H1Connection };

type ReadingSocket = Socket & { _handle?: { reading?: boolean; readStart(): number } | null };

/**
 * Takes node:http's parser off the socket, as node:http does for an upgrade: nothing read from now
 * on is parsed. Its 'data' listener goes; the next one added (the caller's) makes node:http
 * unconsume the socket (its parser read the TLS stream directly), and the handle is started again
 * as net does (node:http stopped it when it paused the socket, and the stream believes a read is
 * still in progress, so resume() alone read nothing more).
 */
function detachParser(this: void, socket: ReadingSocket, onData: (chunk: Buffer) => void): void {
  socket.removeAllListeners('data');
  socket.on('data', onData);
  const handle = socket._handle;
  if (handle != null && handle.reading !== true) {
    handle.reading = true;
    handle.readStart();
  }
}

/** The connection's tracker, made by trackH1Connection. */
export function h1ConnectionOf(socket: unknown): H1Connection | undefined {
  return (socket as TrackedSocket | null | undefined)?.[CONNECTION];
}

/** `res` ends its connection: through the connection's tracker when it has one (H1Connection.closeAfter). */
export function closeConnectionAfter(res: ServerResponse, socket: unknown): void {
  const connection = h1ConnectionOf(socket);
  if (connection !== undefined) connection.closeAfter(res);
  else res.shouldKeepAlive = false;
}

export function trackH1Connection(socket: Socket, limits: H1ConnectionLimits, dispatch: Dispatch): H1Connection {
  const connection = new H1Connection(socket, limits, dispatch);
  (socket as TrackedSocket)[CONNECTION] = connection;
  return connection;
}

export class H1Connection {
  /** Responses of requests handed to the handler and not yet closed. */
  readonly #owed = new Set<ServerResponse>();
  /** Requests parsed while `maxPipelined` were owed, in order: request, response, request, … */
  readonly #waiting: (IncomingMessage | ServerResponse)[] = [];
  /** The connection is not read while requests wait. */
  #held = false;
  #closed = false;
  /**
   * One timer per connection, not per response: each send_timeout, a response found ended and not
   * written out at the sweep before and still the one writing is the client's: the connection goes,
   * between one and two send_timeouts after that response ended (as h2-session-tracker.ts does per stream).
   */
  #sendTimer: NodeJS.Timeout | undefined;
  #unsentAtLastSweep: ServerResponse | undefined;
  /** Draining (SIGTERM): the last request known on the connection is answered with `Connection: close`. */
  #draining = false;
  /** The response marked to close the connection: requests parsed after it are never started. */
  #closesConnection: ServerResponse | undefined;
  /** Requests handed to this tracker (for maxRequests). */
  #requests = 0;
  /**
   * An HTTP/1.0 request started and not yet answered: nothing behind it starts until it is, since
   * whether its connection stays open is only known when its head is written (a response without
   * a length is close-delimited). Before, the requests pipelined behind it ran at the backend and
   * their answers were dropped with the connection (red team 28, F4).
   */
  #serial: ServerResponse | undefined;
  /** The sidecar ends the connection with the client perhaps still sending (a refusal, requests dropped): it lingers. */
  #lingerOnClose = false;
  /** A response's 'close' (`this` is the response): one function per connection, none per request. */
  readonly #onResponseClose: (this: ServerResponse) => void;

  constructor(
    private readonly socket: NodeSocket,
    private readonly limits: H1ConnectionLimits,
    private readonly dispatch: Dispatch,
  ) {
    const settle = (res: ServerResponse) => this.#settle(res);
    this.#onResponseClose = function (this: ServerResponse) {
      settle(this);
    };
    socket.once('close', () => this.#onSocketClose());
    // node:http ends the connection after its last answer with destroySoon (resOnFinish), as does closeAfter.
    if (limits.linger !== undefined) socket.destroySoon = () => this.#closeSoon();
  }

  /**
   * The sidecar drains: the connection closes after the answer to the last request it has, which
   * says `Connection: close` if its head is not yet sent (one still waiting is marked when it
   * starts). Marking the response writing now instead lost the answers of pipelined requests
   * behind it, which the backend had already run; marking none told the caller it could reuse a
   * connection about to be closed.
   */
  drain(): void {
    this.#draining = true;
    if (this.#waiting.length > 0 || this.#closesConnection !== undefined) return;
    let last: ServerResponse | undefined;
    for (const res of this.#owed) last = res;
    if (last !== undefined && !last.headersSent) this.#markClosing(last);
  }

  /**
   * The connection ends with `res`'s answer (a refusal that trusts the connection with no further
   * request): requests parsed after it are never started, so never run at the backend (RFC 9112
   * §9.6). Only marking the response `Connection: close` left node:http to hand on every request
   * it had parsed behind it: the backend ran them, and their answers were dropped with the
   * connection: in smuggling terms the smuggled request. A response not yet started (still
   * waiting) is answered as it is. Requests started after a started one (its refusal came from a
   * stage that waited) may have reached the backend already: they are answered, and the
   * connection closes after the last of them, as drain() does.
   */
  closeAfter(res: ServerResponse): void {
    this.#lingerOnClose = true;
    if (this.#closesConnection !== undefined) return;
    const at = this.#waiting.indexOf(res);
    if (at > 0) {
      this.#waiting.length = at - 1; // its request, itself and all after it
      return this.#markClosing(res);
    }
    this.#waiting.length = 0;
    let last = res;
    if (this.#owed.has(res)) for (const owed of this.#owed) last = owed;
    if (!last.headersSent) return this.#markClosing(last);
    // Its head already says keep-alive (built while queued behind the refused one): closed once it
    // is written, or now if it is (else every later request is dropped on a connection left open).
    this.#closesConnection = last;
    if (last.writableFinished) this.#closeSoon();
    else last.once('finish', () => this.#closeSoon());
  }

  /**
   * The connection ends after the answers owed now (its trust was withdrawn): requests already
   * started may have run at the backend, so they are answered; none waiting starts. Closed now if
   * none is owed.
   */
  closeAfterStarted(): void {
    let last: ServerResponse | undefined;
    for (const res of this.#owed) last = res;
    if (last === undefined) return void this.socket.destroy();
    this.closeAfter(last);
  }

  /** The response of a request this connection knows (started or waiting), if any. */
  responseTo(req: IncomingMessage): ServerResponse | undefined {
    for (const res of this.#owed) if (res.req === req) return res;
    const at = this.#waiting.indexOf(req);
    return at >= 0 ? (this.#waiting[at + 1] as ServerResponse) : undefined;
  }

  #markClosing(res: ServerResponse): void {
    res.shouldKeepAlive = false;
    this.#closesConnection = res;
  }

  /**
   * The connection ends once what is written is sent: in stages (linger.ts) when the client may
   * still be sending (the body of the request just answered is not all in, or the sidecar ended
   * the connection before requests it had or may yet receive), else as node:http does.
   */
  #closeSoon(): void {
    const socket = this.socket;
    const incoming = socket.parser?.incoming;
    const unread = this.#lingerOnClose || this.#waiting.length > 0 || (incoming != null && !incoming.complete);
    const lingerLimits = this.limits.linger;
    if (unread && lingerLimits !== undefined && !socket.readableEnded && !socket.destroyed) {
      if (linger(socket, lingerLimits, detachParser)) return;
    }
    Socket.prototype.destroySoon.call(socket);
  }

  /** A request node:http has parsed: started now, or once fewer than `maxPipelined` are owed. */
  request(req: IncomingMessage, res: ServerResponse): void {
    // After a response that closes the connection nothing more is answered: not started, so not
    // run at the backend either (node:http drops it when the connection closes; the caller retries).
    if (this.#closesConnection !== undefined) return void (this.#lingerOnClose = true);
    this.#sendTimer ??= setTimeout(this.#sweep, this.limits.sendTimeoutMs).unref();
    // The Nth answer says Connection: close; nothing after it is started (above).
    if (++this.#requests === this.limits.maxRequests) this.#markClosing(res);
    if (this.#owed.size < this.limits.maxPipelined && this.#waiting.length === 0 && this.#serial === undefined) {
      return this.#start(req, res);
    }
    this.#waiting.push(req, res);
    if (!this.#held) {
      // The socket, not the parser: node:http's own pause of the parser (for queued response bytes)
      // fails an HTTPS connection with HPE_PAUSED when TLS hands it the rest of a read. What this
      // read has brought is still parsed, and waits here; the next is not taken. A waiting request
      // whose body is still coming resumes it once started and reading its body.
      this.#held = true;
      this.socket.pause();
    }
  }

  #start(req: IncomingMessage, res: ServerResponse): void {
    this.#owed.add(res);
    if (req.httpVersionMinor === 0) this.#serial = res;
    if (this.#draining && this.#waiting.length === 0 && this.#closesConnection === undefined) this.#markClosing(res);
    // `on`: a response closes once, and `once` would wrap the listener in a closure per request.
    res.on('close', this.#onResponseClose);
    this.dispatch(req, res);
  }

  #settle(res: ServerResponse): void {
    if (!this.#owed.delete(res) || this.#closed) return;
    if (res === this.#serial) this.#serial = undefined;
    const waiting = this.#waiting;
    // node:http closes the connection after this answer: nothing waiting is started (run at the backend, its answer dropped).
    if ((res as NodeResponse)._last === true) {
      this.#closesConnection ??= res;
      waiting.length = 0;
    }
    while (this.#owed.size < this.limits.maxPipelined && waiting.length > 0 && this.#serial === undefined) {
      const req = waiting.shift() as IncomingMessage;
      this.#start(req, waiting.shift() as ServerResponse);
    }
    if (waiting.length === 0 && this.#held) {
      this.#held = false;
      // node:http keeps it paused if it has its own reason to (its onSocketResume).
      this.socket.resume();
    }
  }

  readonly #sweep = (): void => {
    this.#sendTimer = undefined;
    const head = this.socket._httpMessage;
    const unsent = head != null && head.writableEnded && !head.writableFinished ? head : undefined;
    if (unsent !== undefined && unsent === this.#unsentAtLastSweep) {
      this.limits.onSendTimeout(this.socket);
      this.socket.destroy();
      return;
    }
    this.#unsentAtLastSweep = unsent;
    if (head != null || this.#owed.size > 0 || this.#waiting.length > 0) {
      this.#sendTimer = setTimeout(this.#sweep, this.limits.sendTimeoutMs).unref();
    }
  };

  #onSocketClose(): void {
    this.#closed = true;
    clearTimeout(this.#sendTimer);
    this.#unsentAtLastSweep = undefined;
    // Never started: node:http aborts their requests, and nothing of them is inside the sidecar.
    this.#waiting.length = 0;
    // After node:http's own 'close' of the response writing now and of those written out (a tick).
    if (this.#owed.size > 0) process.nextTick(() => this.#closeLeftovers());
  }

  /** The responses node:http dropped with its queue: closed as it closes the others, once. */
  #closeLeftovers(): void {
    for (const res of this.#owed) {
      const r = res as NodeResponse;
      if (r._closed === true) continue;
      r._closed = true;
      r.destroyed = true;
      r.emit('close');
    }
    this.#owed.clear();
  }
}
