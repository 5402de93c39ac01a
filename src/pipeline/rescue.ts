/**
 * The ONE place where a refusal becomes a response (RFC 9457 problem+json) and a security event.
 * Stages, routing, header checks and the forwarder only return or throw WardenErrors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Context } from '@opentelemetry/api';
import { WardenError, isWardenError, type ErrorCode } from '../errors.js';
import { pathAttribute } from '../telemetry/attribute-limits.js';
import type { EventBus, EventAttributes } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';
import type { RequestContext } from './stage.js';
import { presentedPeerId, verifiedPeerId } from '../mesh/peer-identity.js';
import { headerSafeRealm } from '../net/auth-challenge.js';

/** The parts of a response (HTTP/1.1 ServerResponse or HTTP/2 H2Response) rescue needs. */
export interface ProblemResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body: string): unknown;
  destroy(error?: Error): unknown;
}

export interface ProblemSubject {
  readonly clientAddress: string;
  /** Absent when the request could not be parsed. */
  readonly requestId?: string | undefined;
  readonly method?: string | undefined;
  readonly path?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly route?: string | undefined;
  /** The caller's SPIFFE ID, when a verified certificate carried one. */
  readonly peerId?: string | undefined;
  /** The SPIFFE ID an unverified certificate claims (not the caller's identity). */
  readonly presentedPeerId?: string | undefined;
  /** The request's trace context: its refusal event is correlated with the request's span. */
  readonly traceContext?: Context | undefined;
}

export interface Rescue {
  /** Answers `res` with the problem for `error` and raises its event. */
  respond(error: unknown, subject: ProblemSubject, res: ProblemResponse): void;
  /** For failures once the response has begun: the event and log only; the caller aborts the stream. */
  report(error: unknown, subject: ProblemSubject): WardenError;
  /** Answers an HTTP/1.1 parse failure on a raw socket (no request object exists). */
  clientError(error: NodeJS.ErrnoException, socket: Socket): void;
  /**
   * Answers an HTTP/1.1 CONNECT (Node hands it over as a raw socket, and without a listener closes it
   * unanswered): the sidecar opens no tunnels, so 400 ERR_PATH_INVALID like any non-origin-form target.
   */
  refuseTunnel(socket: Socket, detail: string): void;
  /**
   * Answers an HTTP/1.1 request to switch protocols (`Connection: upgrade`, `Upgrade: websocket`,
   * h2c). Node's parser stops at such a request and drops what the client sent after it, so
   * serving it as a plain request lost any request pipelined behind it: it is refused (400, rule
   * `http1.upgrade`) on the raw socket, once the responses before it have gone, and the connection closed.
   */
  refuseUpgrade(req: IncomingMessage, socket: Socket): void;
}

const TYPE_PREFIX = 'urn:warden:problem:';

/** node:http internals on an HTTP/1.1 socket: the response writing now, the parser and the request whose head it parsed last. */
type ParsedSocket = Socket & {
  _httpMessage?: ServerResponse | null;
  parser?: { incoming?: IncomingMessage | null } | null;
  [ERROR_ANSWERED]?: true;
};
/** A parse error of this connection has been dealt with. */
const ERROR_ANSWERED = Symbol('warden.clientErrorAnswered');

export function problemBody(error: WardenError, requestId: string | undefined): string {
  const body: Record<string, unknown> = {
    type: TYPE_PREFIX + error.code.slice(4).toLowerCase().replace(/_/g, '-'),
    title: error.title,
    status: error.status,
    code: error.code,
  };
  if (error.detail !== undefined) body.detail = error.detail;
  // Bounded: a hostile request cannot make the answer large.
  if (error.violations !== undefined)
    body.errors = error.violations.slice(0, 10).map((v) => ({ pointer: v.pointer.slice(0, 200), message: v.message.slice(0, 200) }));
  if (requestId !== undefined) body.request_id = requestId;
  return JSON.stringify(body);
}

export function subjectOf(ctx: RequestContext): ProblemSubject {
  return {
    requestId: ctx.requestId,
    method: ctx.method,
    path: ctx.path,
    clientAddress: ctx.clientAddress,
    userAgent: ctx.headers['user-agent'],
    route: ctx.route.id,
    peerId: verifiedPeerId(ctx.peer),
    presentedPeerId: presentedPeerId(ctx.peer),
    traceContext: ctx.traceContext,
  };
}

/** The security event's attributes for a refusal: what was refused, of whom, and why. */
function refusalAttributes(error: WardenError, subject: ProblemSubject, action: 'block' | 'detect'): EventAttributes {
  const attributes: EventAttributes = {
    'client.address': subject.clientAddress,
    'warden.code': error.code,
    'warden.action': action,
  };
  if (action === 'block') attributes['http.response.status_code'] = error.status;
  if (subject.method !== undefined) attributes['http.request.method'] = subject.method;
  if (subject.path !== undefined) attributes['url.path'] = pathAttribute(subject.path);
  if (subject.route !== undefined) attributes['http.route'] = subject.route;
  if (subject.userAgent !== undefined) attributes['user_agent.original'] = subject.userAgent.slice(0, 256);
  if (subject.peerId !== undefined) attributes['warden.peer.id'] = subject.peerId;
  if (subject.presentedPeerId !== undefined) attributes['warden.peer.presented_id'] = subject.presentedPeerId;
  if (error.rule !== undefined) attributes['warden.rule'] = error.rule;
  if (error.cause !== undefined) attributes['error.type'] = errorType(error.cause);
  if (error.attributes !== undefined) Object.assign(attributes, error.attributes);
  return attributes;
}

/**
 * A refusal a stage in `detect` mode lets through: its event, with `warden.action: detect` and the
 * same attributes a block would carry, and no response.
 */
export function reportDetected(events: EventBus | undefined, error: WardenError, ctx: RequestContext): void {
  const event = error.event;
  if (event === undefined || events === undefined) return;
  const attributes = refusalAttributes(error, subjectOf(ctx), 'detect');
  if (error.detail !== undefined) attributes['warden.detail'] ??= error.detail.slice(0, 256);
  events.emit(event, attributes, ctx);
}

/** llhttp / Node error codes on HTTP/1.1 sockets → our codes. */
const CLIENT_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'ERR_HEADERS_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'ERR_REQUEST_TIMEOUT',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'ERR_REQUEST_AMBIGUOUS',
  HPE_INVALID_CONTENT_LENGTH: 'ERR_REQUEST_AMBIGUOUS',
  HPE_INVALID_TRANSFER_ENCODING: 'ERR_REQUEST_AMBIGUOUS',
  HPE_INVALID_CHUNK_SIZE: 'ERR_REQUEST_AMBIGUOUS',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'ERR_REQUEST_AMBIGUOUS',
};

/**
 * RFC 6750 §3 challenges for refused tokens: no error code when credentials were missing,
 * invalid_request for malformed ones, invalid_token for the rest. (insufficient_scope carries its
 * own challenge, naming the scopes, from the authz-scopes stage.)
 */
const BEARER_ERRORS: Partial<Record<ErrorCode, string>> = {
  ERR_AUTHN_TOKEN_MISSING: '',
  ERR_AUTHN_TOKEN_MALFORMED: 'invalid_request',
  ERR_AUTHN_TOKEN_INVALID: 'invalid_token',
  ERR_AUTHN_TOKEN_INACTIVE: 'invalid_token',
  ERR_AUTHN_TOKEN_EXPIRED: 'invalid_token',
  ERR_AUTHN_TOKEN_UNBOUND: 'invalid_token', // certificate-bound; DPoP refusals carry a DPoP challenge of their own
};

export function bearerChallenge(error: WardenError, realm: string): string | undefined {
  const code = BEARER_ERRORS[error.code];
  if (code === undefined) return undefined;
  if (code === '') return `Bearer realm="${realm}"`;
  return `Bearer realm="${realm}", error="${code}", error_description="${error.title}"`;
}

/**
 * What rescue asks of the listener's HTTP/1.1 connection tracking (src/proxy/h1-connection.ts),
 * handed in by its creator. Without it: `Connection: close` alone, and no queued response found.
 */
export interface TrackedConnections {
  /** `res` ends its connection, and no request parsed after it is started. */
  closeAfter(res: ServerResponse, socket: unknown): void;
  /** The response of a request this connection holds (started or queued), if any. */
  responseTo(socket: unknown, req: IncomingMessage): ServerResponse | undefined;
}

const UNTRACKED: TrackedConnections = {
  closeAfter: (res) => void (res.shouldKeepAlive = false),
  responseTo: () => undefined,
};

/** node:http's parse error as the refusal it answers or records, rule `http1:<its code>`. */
function clientErrorProblem(error: NodeJS.ErrnoException): WardenError {
  const code = CLIENT_ERROR_CODES[error.code ?? ''] ?? 'ERR_REQUEST_MALFORMED';
  return new WardenError(code, { rule: `http1:${error.code ?? 'unknown'}`, cause: error });
}

export function createRescue(deps: { events: EventBus; logger: Logger; realm?: string; connections?: TrackedConnections }): Rescue {
  const connections = deps.connections ?? UNTRACKED;
  const { events, logger } = deps;
  const realm = headerSafeRealm(deps.realm ?? 'warden');

  function toWardenError(error: unknown): WardenError {
    if (isWardenError(error)) return error;
    logger.error({ err: error }, 'unexpected error on the request path');
    return new WardenError('ERR_INTERNAL', { cause: error });
  }

  function raise(error: WardenError, subject: ProblemSubject): void {
    const event = error.event;
    if (event !== undefined) events.emit(event, refusalAttributes(error, subject, 'block'), subject);
  }

  const respond: Rescue['respond'] = (error, subject, res) => {
    const problem = toWardenError(error);
    raise(problem, subject);
    if (res.headersSent) {
      // With the error: h2 then resets with INTERNAL_ERROR, so the cut is visible as one.
      res.destroy(problem);
      return;
    }
    const body = problemBody(problem, subject.requestId);
    const headers: Record<string, string | number> = {
      'content-type': 'application/problem+json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      ...problem.headers,
    };
    if (subject.requestId !== undefined) headers['x-request-id'] = subject.requestId;
    if (problem.status === 401 && headers['www-authenticate'] === undefined) {
      const challenge = bearerChallenge(problem, realm);
      if (challenge !== undefined) headers['www-authenticate'] = challenge;
    }
    try {
      res.writeHead(problem.status, headers);
      res.end(body);
    } catch (err) {
      res.destroy(err as Error);
    }
  };

  return {
    respond,
    report(error, subject) {
      const problem = toWardenError(error);
      raise(problem, subject);
      return problem;
    },
    clientError(error, socket) {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) return void socket.destroy();
      // The parser stays failed and reports again on every later read (and on the client's FIN).
      const s = socket as ParsedSocket;
      if (s[ERROR_ANSWERED] === true) return;
      s[ERROR_ANSWERED] = true;
      // The response writing now: that of the first request still owed an answer, not necessarily
      // the one that failed. Answering every error through it gave a valid request's answer (run
      // at the backend) to the malformed one pipelined after it.
      const inProgress = s._httpMessage ?? undefined;
      // The request the error is in, if its head was parsed (a slow or malformed body): it has a response of its own.
      const parsing = s.parser?.incoming;
      const own =
        parsing == null || parsing.complete
          ? undefined
          : inProgress?.req === parsing
            ? inProgress
            : connections.responseTo(socket, parsing);
      if (own === undefined && parsing != null && !parsing.complete) return void socket.destroy(); // its response not found (untracked)
      if (own?.headersSent) {
        // Refused already (at dispatch, its body unread) and queued whole behind earlier answers:
        // it goes out after them and the connection closes; ending the connection now dropped
        // those answers, whose requests had run. The one writing now is cut: its client has it part-sent.
        if (own === inProgress || !own.writableEnded) return void socket.destroy();
        connections.closeAfter(own, socket);
        socket.pause(); // what the failed parser would read is thrown away: not read at all (as afterResponses)
        return raise(clientErrorProblem(error), { clientAddress: socket.remoteAddress ?? '' });
      }
      if (own === undefined && error.code === 'HPE_CLOSED_CONNECTION') {
        // Bytes after a request that closes the connection (`Connection: close`, HTTP/1.0): that
        // request gets its own answer, and nothing after it is read (RFC 9112 §9.6).
        if (inProgress === undefined) socket.destroy();
        else socket.pause();
        return;
      }
      const problem = clientErrorProblem(error);
      const subject = { clientAddress: socket.remoteAddress ?? '' };
      if (own !== undefined) {
        // Answer through the response object so the request's own bookkeeping sees the status.
        connections.closeAfter(own, socket);
        respond(problem, subject, own);
        if (own === inProgress) socket.setTimeout(1000, () => socket.destroy());
        // Node detaches the request from the connection once this response is finished, so the
        // connection closing no longer ends it: a body still being read (a chunk size the parser
        // refused) would wait for request_timeout, holding what had arrived. End it with the connection.
        socket.once('close', () => own.req?.destroy());
        return;
      }
      raise(problem, subject);
      if (inProgress === undefined) return answerOnSocket(problem, socket);
      // A request whose head did not parse, behind requests still owed their answers: those go out
      // whole first (their requests were complete and may have run at the backend), then the refusal.
      socket.pause();
      afterResponses(socket, () => answerOnSocket(problem, socket));
    },
    refuseTunnel(socket, detail) {
      const problem = tunnelRefused(detail);
      raise(problem, { clientAddress: socket.remoteAddress ?? '', method: 'CONNECT' });
      // After the answers owed before it, as for an upgrade: written at once, it took their place.
      afterResponses(socket, () => answerOnSocket(problem, socket));
    },
    refuseUpgrade(req, socket) {
      const problem = new WardenError('ERR_REQUEST_MALFORMED', {
        rule: 'http1.upgrade',
        detail: 'No protocol switch here (WebSocket, h2c): send the request without "Connection: upgrade".',
      });
      const userAgent = req.headers['user-agent'];
      raise(problem, {
        clientAddress: socket.remoteAddress ?? '',
        method: req.method,
        path: (req.url ?? '').split('?', 1)[0],
        userAgent: typeof userAgent === 'string' ? userAgent : undefined,
      });
      afterResponses(socket, () => answerOnSocket(problem, socket));
    },
  };
}

/**
 * Runs `then` once the responses to requests before this one have been written: Node hands over
 * an upgrade request while those may still be in progress, and bytes of its own between theirs
 * would corrupt them. Each response finishes or is destroyed with its connection.
 */
function afterResponses(socket: Socket, then: () => void): void {
  const inProgress = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!inProgress || inProgress.writableFinished || socket.destroyed) return then();
  // 'close' follows a finished response and a destroyed one alike; by the next turn node:http has
  // handed the socket to the next queued response, if any.
  inProgress.once('close', () => setImmediate(afterResponses, socket, then));
}

/** A CONNECT request refused: its authority-form target is not an absolute path, as with any other non-origin-form target. */
export function tunnelRefused(detail: string): WardenError {
  return new WardenError('ERR_PATH_INVALID', { rule: 'path.origin_form', detail });
}

/** The problem as a whole HTTP/1.1 response on a raw socket, which is then closed. */
function answerOnSocket(problem: WardenError, socket: Socket): void {
  // A response before it closed the connection (`Connection: close`): nothing more can be said.
  if (!socket.writable) return void socket.destroy();
  const body = problemBody(problem, undefined);
  socket.end(
    `HTTP/1.1 ${problem.status} ${problem.title}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Cache-Control: no-store\r\nConnection: close\r\n\r\n' +
      body,
  );
  // Never wait for a hostile client to read the refusal.
  socket.setTimeout(1000, () => socket.destroy());
}

function errorType(cause: unknown): string {
  const e = cause as { code?: unknown; name?: unknown };
  return typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'Error';
}
