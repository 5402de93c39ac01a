/**
 * One request's way through the sidecar (DESIGN §2): checks and limits, normalised target, route,
 * the route's stages, then the forwarder. The same code serves HTTP/1.1 (node:http) and HTTP/2 (the
 * core stream API behind h2-exchange.ts).
 *
 * Everything it consults comes from the `Generation` read once at the start: a reload swaps the
 * generation and requests already in flight finish on the one they started with.
 */
import { METHODS, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants as http2Constants } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import type { Readable } from 'node:stream';
import type { LimitsConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { Plan, RoutePlan } from '../pipeline/plan.js';
import { declaresBody } from '../net/declared-body.js';
import type { Rescue } from '../pipeline/rescue.js';
import { subjectOf } from '../pipeline/rescue.js';
import { runStages } from '../pipeline/run-stages.js';
import { preflightBodyRefusal } from '../pipeline/preflight.js';
import type { BodyObserver, RequestContext, StreamingStage, Verdict } from '../pipeline/stage.js';
import type { Forwarder, ForwardOutcome } from './forward.js';
import type { RequestTracing } from '../telemetry/request-tracing.js';
import {
  checkFraming,
  clientAddressOf,
  describeDecodedBody,
  dropConnectionNamed,
  upstreamRequestHeaders,
  type HeaderRules,
} from './headers.js';
import { checkOverrides } from './overrides.js';
import { checkExpectation } from './expectation.js';
import { checkCookiePairs } from './cookie-pairs.js';
import { checkBelievedForwarding } from './believed-forwarding.js';
import { isHostForm } from '../net/host-form.js';
import { generateRequestId } from './request-id.js';
import { normaliseTarget } from '../net/request-target.js';
import { loggedTarget } from '../net/url-credentials.js';
import { checkPathReadings } from './path-readings.js';
import { peerNow, peerOf, type PeerRevocations } from '../mesh/peer-identity.js';
import { clientCrlRefusal } from '../stages/peer-authz.js';
import { ClientClosedError, limitBody, readBodyThen } from './body.js';
import { takeBody } from './body-intake.js';
import { bodyBudgetExceeded, createBodyBudget, type BodyLease } from '../traffic/body-budget.js';
import type { SpooledBody } from './spooled-body.js';
import { detachedBody, H2Request, type H2Response } from './h2-exchange.js';
import { closeConnectionAfter } from './h1-connection.js';
import { contentCodings, decodeContentCodings, encodedForObservers, rangedCodedBody } from '../net/content-coding.js';
import { FORM_MEDIA_TYPE, mediaTypeOf } from '../net/media-type.js';
import { formFieldsRefusal } from '../net/form-field-count.js';
import { formAliasRefusal } from '../net/form-alias.js';
import { queryCharsetRefusal } from '../net/query-charset.js';
import { opensJsonValue } from '../net/json-opening.js';
import { openingObserver, readOpening, type OpeningOutcome } from './body-opening.js';

const NO_CODINGS: readonly string[] = Object.freeze([]);

/**
 * Sets what the body stages read, the body with its Content-Encoding undone, then goes on with the
 * body to forward: at once without codings, once decoded otherwise. A decoded body is what goes to
 * the backend, without its coding (describeDecodedBody): the bytes every check read. Forwarded as
 * sent, a backend that does not decode requests (PHP, nginx with FastCGI) parsed the coded bytes,
 * where gzip's FNAME or FCOMMENT and br's metadata blocks, skipped by decoders, held a form the
 * checks never saw (`_method=DELETE`, SQL injection, a field past its enum).
 */
function stageBody(
  ctx: RequestContext,
  codings: readonly string[],
  maxBytes: number,
  limits: LimitsConfig,
  body: Buffer,
  lease: BodyLease | undefined,
  then: (forwarded: Buffer) => void,
): void | Promise<void> {
  if (codings.length === 0) {
    ctx.body = formFieldsChecked(ctx, body, limits.max_form_fields);
    return then(body);
  }
  // The decoded body is held too, beside the body as sent until it is decoded.
  const reserve = (bytes: number) => (lease === undefined || lease.take(bytes) ? undefined : bodyBudgetExceeded(lease, bytes));
  const sentBytes = body.length;
  return decodeContentCodings(body, codings, maxBytes, reserve, limits.max_decoded_ratio).then((read) => {
    ctx.body = formFieldsChecked(ctx, read, limits.max_form_fields);
    describeDecodedBody(ctx.upstreamHeaders, read.length);
    // Nothing holds the body as sent from here on: its bytes go back to max_buffered_bytes.
    lease?.giveBack(sentBytes);
    then(read);
  });
}

/**
 * The body, unless the stages would read it as a form (its type, or none: Rack, the waf and the
 * `_method` check read an untyped body as one) and it holds more fields than `limit` (an untyped
 * body, which may be any bytes, than one in 64 bytes if that is more: form-field-count.ts): thrown,
 * as every refusal before the stages run is (the callers turn it into the answer).
 */
function formFieldsChecked(ctx: RequestContext, body: Buffer, limit: number): Buffer {
  const mime = mediaTypeOf(ctx.headers['content-type']);
  const refusal = mime === FORM_MEDIA_TYPE || mime === '' ? formFieldsRefusal(body, limit, mime === '') : undefined;
  if (refusal) throw refusal;
  return body;
}

/** Everything compiled from one configuration; replaced as a whole on reload. */
export interface Generation {
  readonly plan: Plan;
  readonly rules: HeaderRules;
  readonly forwarder: Forwarder;
  readonly limits: LimitsConfig;
  /** Paths the sidecar answers itself on the inbound listener (GET/HEAD), e.g. the minted tokens' JWKS. */
  readonly localEndpoints?: ReadonlyMap<string, (res: AnyResponse) => void> | undefined;
  /** listeners.inbound.tls.client_crl, checked for every request's client certificate (peerNow). */
  readonly clientCrl?: PeerRevocations | undefined;
}

export type AnyRequest = IncomingMessage | H2Request;
export type AnyResponse = ServerResponse | H2Response;

export interface RequestObserver<G extends Generation = Generation> {
  /**
   * Called once per request when its response is finished or abandoned, with the generation the
   * request started on (a reload since must not change how it is logged: which fields are secret).
   */
  (ctx: RequestContext, status: number, completed: boolean, gen: G): void;
}

export interface HandlerDeps<G extends Generation = Generation> {
  current(): G;
  rescue: Rescue;
  observe: RequestObserver<G>;
  /**
   * OpenTelemetry spans for the request and its upstream call, when export is configured: read
   * once per request, which keeps that instance to the end even if a reload replaces it.
   */
  tracing?: (() => RequestTracing | undefined) | undefined;
  /** Raises warden.response.invalid for a backend response that does not match the document. */
  reportResponse?: (ctx: RequestContext, status: number, violation: { pointer: string; message: string }) => void;
  /** Counts a response left unchecked: its copy did not fit (budget, too_large) or its body nests too deep (too_deep). */
  skipResponseCheck?: (reason: 'budget' | 'too_large' | 'too_deep') => void;
}

/** Responses larger than this are not copied for validation. */
const RESPONSE_INSPECT_BYTES = 1024 * 1024;
/**
 * A body declared this small (one TLS record) goes upstream as one Buffer even when no stage reads
 * it: it has as good as arrived with the headers, and undici writes a Buffer with the head in one
 * write, where streaming the request into the socket costs listeners, a writer and a promise per
 * request, and keeps the request's objects alive into old space (POSTs of a small JSON body on the
 * access pipeline: 5.6 KB promoted per request streamed, 0.1 KB read whole; bench/gc-survival.js).
 */
const COALESCED_BODY_BYTES = 16 * 1024;

/**
 * An incoming x-request-id kept when well-formed and sent by a trusted proxy or a caller with a
 * verified certificate (a mesh peer): anyone else's is replaced, or an unauthenticated caller could
 * give its refused requests the id of someone else's, and log searches by id mixed the two
 * (docs/adversarial.md 276; Envoy regenerates an external caller's id too).
 */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const NO_PARAMS = Object.freeze({});
const PENDING_ROUTE = Object.freeze({ id: '_unmatched', idJson: JSON.stringify('_unmatched') });
/** Statuses that end an HTTP/1.1 connection: malformed or oversized requests, timeouts. */
const PROTOCOL_REFUSALS = new Set([400, 408, 413, 431]);

const SHED = () =>
  new WardenError('ERR_OVERLOADED', {
    rule: 'limits.max_in_flight',
    detail: 'The service is at capacity; try again shortly.',
    headers: { 'retry-after': '1' },
  });

export function createRequestHandler<G extends Generation>(deps: HandlerDeps<G>): (req: AnyRequest, res: AnyResponse) => void {
  const { rescue, observe } = deps;
  // Requests inside the sidecar right now (in stages or upstream), for load shedding.
  let inFlight = 0;
  // Request bodies held in memory right now, over all requests (limits.max_buffered_bytes).
  const bodyBudget = createBodyBudget();

  return function handleRequest(req, res) {
    const gen = deps.current();
    // By the exchange, not the request line: llhttp takes `GET / HTTP/2.0` on an HTTP/1.1
    // connection, and read as h2 it threw (no `stream`) and ended the process (red team 29).
    const h2 = req instanceof H2Request;
    const headers = req.headers;
    const socketAddress = req.socket.remoteAddress ?? '';
    const incomingId = headers['x-request-id'];
    const peer = peerNow(peerOf(req.socket), gen.clientCrl);
    const requestId =
      typeof incomingId === 'string' &&
      REQUEST_ID.test(incomingId) &&
      (peer.verified || (gen.rules.believesRequestId && gen.rules.trustedProxies.has(socketAddress)))
        ? incomingId
        : generateRequestId();
    const authority = h2 ? ((headers[':authority'] as string | undefined) ?? headers.host) : headers.host;
    const url = req.url ?? '';
    const target = normaliseTarget(url);
    const path = target instanceof WardenError ? loggedTarget(url) : target.path;
    const clientAddress = clientAddressOf(socketAddress, headers, gen.rules);
    const upstreamHeaders = upstreamRequestHeaders(headers, socketAddress, authority, gen.rules, clientAddress);
    upstreamHeaders['x-request-id'] = requestId;

    const sentMethod = req.method ?? 'GET';
    // HTTP/1.1's parser takes registered methods only; h2 any token, which is refused below. Until
    // then, and in its refusal's span, event and access line, it is `_OTHER` (OTel's name for a
    // method it does not know): 300 made-up methods were 300 span names, and a 15 KB one was 15 KB
    // in every signal (docs/adversarial.md 183).
    const knownMethod = !h2 || KNOWN_METHODS.has(sentMethod);
    const ctx: RequestContext = {
      requestId,
      startedAt: performance.now(),
      protocol: h2 ? '2' : '1.1',
      method: knownMethod ? sentMethod : OTHER_METHOD,
      path,
      search: target instanceof WardenError ? '' : target.search,
      clientAddress,
      peer,
      connection: req.socket,
      headers,
      upstreamHeaders,
      route: PENDING_ROUTE,
      params: NO_PARAMS,
      // Declared up front so the authn stage's assignment does not change the object's shape.
      principal: undefined,
      body: undefined,
      bodyJson: undefined,
      bodyForm: undefined,
      responseHeaders: undefined,
      upstreamMs: undefined,
      traceContext: ROOT_CONTEXT,
    };

    const tracing = deps.tracing?.();
    // Sets ctx.traceContext: the IdP, clamd and Redis calls the stages make are its children.
    tracing?.start(ctx);
    handle(req, res, gen, h2, headers, ctx, target, tracing);
  };

  function handle(
    req: AnyRequest,
    res: AnyResponse,
    gen: G,
    h2: boolean,
    headers: AnyRequest['headers'],
    ctx: RequestContext,
    target: ReturnType<typeof normaliseTarget>,
    tracing: RequestTracing | undefined,
  ): void {
    let aborter: { abort(): void } | undefined;
    let lease: BodyLease | undefined;
    // The client has gone (h2 RST_STREAM, a closed connection): whatever a stage still running
    // hands on to must stop there. Without it, a request reset during an async stage took a body
    // lease nothing gave back (the budget leaked until every body got 503), was still forwarded
    // past max_in_flight and the stream limit, and its spooled body kept its file open.
    let closed = false;
    inFlight++;
    // `on`: a response closes once, and `once` would wrap the listener in a closure and a state object.
    // Over HTTP/1.1 node:http never closes a pipelined response still queued when the connection
    // closes: h1-connection.ts closes those. The guard keeps the release to once whoever closes.
    res.on('close', () => {
      if (closed) return;
      closed = true;
      inFlight--;
      // Also when the response completed: it may have been the sidecar's own refusal (a timeout)
      // while the upstream exchange was still running. A finished exchange ignores the abort.
      aborter?.abort();
      lease?.release();
      // No head went out (a connection cut by drain_timeout or the client before any answer): no
      // status reached the client, so none is recorded (0, as Envoy logs it); it was recorded as 200.
      const status = res.headersSent ? res.statusCode : 0;
      tracing?.end(ctx, status);
      observe(ctx, status, res.writableFinished, gen);
    });

    // The body's Readable: the message itself in HTTP/1.1, the stream in HTTP/2.
    const bodySource: Readable = h2 ? (req as H2Request).stream : (req as IncomingMessage);
    const hasBody = h2 ? !(req as H2Request).stream.endAfterHeaders : declaresBody(headers);

    const refuse = (error: unknown) => {
      // Nothing to answer and nothing to report: the access log records the request as aborted.
      if (error instanceof ClientClosedError) return;
      // An unread body would otherwise be drained by Node before the connection can be reused, and
      // a connection that sent a malformed request is not trusted with another one.
      if (hasBody || (error instanceof WardenError && PROTOCOL_REFUSALS.has(error.status))) keepAliveOff(ctx, res, h2);
      if (h2 && hasBody) endStreamAfterResponse(req as H2Request);
      rescue.respond(error, subjectOf(ctx), res);
    };

    // Read once: refused below under `overrides: refuse`; and an OPTIONS carrying one is no CORS preflight.
    const overrides =
      target instanceof WardenError || (!gen.rules.refuseOverrides && ctx.method !== 'OPTIONS')
        ? undefined
        : checkOverrides(headers, target.search);
    const early =
      (h2
        ? // Duplicated singletons (Authorization, Host, …) are as ambiguous in h2 as in HTTP/1.1.
          ((ctx.method === OTHER_METHOD ? unknownH2Method() : undefined) ??
          checkH2HeaderLimits(req.rawHeaders, gen.limits) ??
          checkFraming(headers, req.rawHeaders) ??
          checkH2Host(headers))
        : checkH1Request(req as IncomingMessage, gen.limits)) ??
      checkCookiePairs(headers.cookie) ??
      checkExpectation(headers.expect, !h2 && (req as IncomingMessage).httpVersionMinor === 0) ??
      checkHostForm(headers.host ?? (headers[':authority'] as string | undefined)) ??
      checkBelievedForwarding(headers, req.socket.remoteAddress ?? '', gen.rules) ??
      (target instanceof WardenError
        ? target
        : ((gen.rules.refuseOverrides ? overrides : undefined) ??
          // On every route, before any stage: what a backend reads in the Content-Type is not a matter of the stages configured.
          formAliasRefusal(headers['content-type'])));
    if (early) return refuse(early);
    // Stages then read the request as the backend gets it (headers.ts).
    if (!h2 && headers.connection !== undefined) dropConnectionNamed(headers);
    // Shed before any work: a refusal costs far less than queueing behind a saturated backend.
    if (gen.limits.max_in_flight > 0 && inFlight > gen.limits.max_in_flight) return refuse(SHED());

    const local = gen.localEndpoints?.get(ctx.path);
    if (local !== undefined && (ctx.method === 'GET' || ctx.method === 'HEAD')) return local(res);

    // A CORS preflight (routing.cors_preflight: forward) is routed by the method it announces.
    // A method override makes it no preflight (a browser sends none), whatever `overrides` says: under
    // `forward` the backend would run the overridden method under the credential-free plan.
    const asked = ctx.method === 'OPTIONS' && overrides === undefined ? gen.plan.preflightMethod(headers, ctx.search) : undefined;
    const match = gen.plan.resolve(ctx.method, ctx.path, asked);
    if (match instanceof WardenError) return refuse(match);
    const preflight = match.route.preflight;
    if (preflight !== undefined && hasBody) return refuse(preflightBodyRefusal());
    // A preflight is held to the path readings of the request it announces, as that route's.
    const aliased =
      preflight === undefined
        ? checkPathReadings(gen.plan, ctx.method, ctx.path, match)
        : checkPathReadings(gen.plan, asked as string, ctx.path, { route: preflight.of, params: match.params });
    if (aliased) return refuse(aliased);
    // Only where a stage reads the query: elsewhere a backend's reading of it is checked by nothing here.
    const queryCharset = match.route.readsQuery ? queryCharsetRefusal(headers['content-type'], ctx.search) : undefined;
    if (queryCharset) return refuse(queryCharset);
    preflight?.counted();
    ctx.route = match.route;
    ctx.params = match.params; // by the names the operation declares (plan.ts resolve)
    // A certificate client_crl revokes is refused on every route, whether or not the route uses
    // certificates (peer-authz runs only on those that do): as nginx's ssl_crl and the mesh refuse
    // one; under `require` a route without peers.allow would otherwise serve it. So is one whose
    // chain was not traced to client_ca (its revocation cannot be checked).
    const revoked = clientCrlRefusal(ctx.peer.error);
    if (revoked) return refuse(revoked);

    const declaredLength = headers['content-length'];
    const declaredBytes = declaredLength === undefined ? undefined : Number(declaredLength);
    if (declaredBytes !== undefined && declaredBytes > match.route.maxBodyBytes) {
      return refuse(
        new WardenError('ERR_BODY_TOO_LARGE', {
          rule: 'limits.max_body_bytes',
          detail: `The body may be at most ${match.route.maxBodyBytes} bytes.`,
        }),
      );
    }

    const upstreamBody = (): Readable => (h2 ? detachedBody((req as H2Request).stream) : bodySource);
    const forward = (buffered?: Buffer | AsyncIterable<Buffer>) => {
      if (closed) return;
      // A body read whole goes as one Buffer: undici writes it with the head in one write, where
      // an iterable costs a promise and a socket write per chunk (4 % of the full pipeline's CPU).
      const body =
        buffered !== undefined
          ? buffered
          : !hasBody
            ? null
            : declaredBytes !== undefined
              ? upstreamBody()
              : limitBody(upstreamBody(), match.route.maxBodyBytes);
      // A HEAD response has no body to check (the route is GET's).
      const check = ctx.method === 'HEAD' ? undefined : match.route.responseCheck;
      const outcome: ForwardOutcome = {
        inspect: check && {
          maxBytes: RESPONSE_INSPECT_BYTES,
          // The copy is held while a slow client reads: 400 stalled h2 streams held 400 MiB of
          // copies (1 MiB each) beside a 16 MiB max_buffered_bytes. It now shares that budget.
          lease: bodyBudget.lease(gen.limits.max_buffered_bytes),
          readsBody: check.readsBody,
          onComplete(status, headers, body) {
            // Run from undici's onResponseEnd, which hands a throw to onResponseError, where the
            // settled exchange ignores it: anything thrown here would vanish unreported.
            try {
              const v = check.check(status, headers, body);
              if (v === 'too_deep') deps.skipResponseCheck?.(v);
              else if (v) deps.reportResponse?.(ctx, status, v);
            } catch (err) {
              rescue.report(err, subjectOf(ctx));
            }
          },
          onSkipped(reason) {
            deps.skipResponseCheck?.(reason);
          },
        },
        onFailure(error, started) {
          if (started) {
            // With an error, so that h2 resets the stream with INTERNAL_ERROR: a truncated
            // response must never look complete (NO_ERROR would).
            res.destroy(rescue.report(error, subjectOf(ctx)));
          } else refuse(error);
        },
      };
      tracing?.upstream(ctx);
      aborter = gen.forwarder.forward(ctx, body, res, outcome, hasBody && bodyUnexpected(match.route.body, ctx.method));
      if (h2 && hasBody && buffered === undefined) {
        const deadline = bodyDeadline(bodySource, gen.limits.request_timeout, () => {
          aborter?.abort();
          refuse(
            new WardenError('ERR_REQUEST_TIMEOUT', { rule: 'limits.request_timeout', detail: 'The request body did not arrive in time.' }),
          );
        });
        // The backend may answer before it has read the body (its own 401 or 413): the rest of the
        // body then has nowhere to go, and a stream left half-open hangs the client.
        endStreamAfterResponse(req as H2Request, deadline);
      }
    };

    const route = match.route;
    // After the other stages: the body stages and the stages that watch the body arrive.
    const next = () => {
      if (closed) return;
      const codings = headers['content-encoding'] === undefined ? NO_CODINGS : contentCodings(headers['content-encoding']);
      const observers = hasBody && route.bodyObservers.length > 0 ? observersOf(route.bodyObservers, ctx) : [];
      const mime = mediaTypeOf(headers['content-type']);
      const buffer = hasBody && (route.bodyStages.length > 0 || route.bodyObservers.length > 0) && route.buffersBody(mime, ctx.method);
      // A body of a type the waf reads only when it opens like JSON: its first bytes decide (body-opening.ts).
      const opening = hasBody && !buffer ? route.jsonOpening : undefined;
      const sniff = opening !== undefined && opening.types(mime);
      // Read whole for the buffered stages (validation, the waf on JSON) or for its size alone
      // (COALESCED_BODY_BYTES): the plain read, no spool. Otherwise it streams on.
      const small = hasBody && declaredBytes !== undefined && declaredBytes <= COALESCED_BODY_BYTES;
      // What of the body will be held in memory: all of a body read whole, a spooled one up to its memory limit.
      const memoryLimit = buffer ? route.maxBodyBytes : gen.limits.body_memory_bytes;
      // The malware scan and the multipart readers see the body as it arrives, encoded: not read at all.
      if (observers.length > 0 && codings.length > 0) {
        for (const o of observers) o.abort();
        return refuse(encodedForObservers());
      }
      if (buffer && codings.length > 0 && headers['content-range'] !== undefined) return refuse(rangedCodedBody());
      if (observers.length > 0 || buffer || small) {
        lease = bodyBudget.lease(gen.limits.max_buffered_bytes);
        const held = declaredBytes === undefined ? 0 : observers.length > 0 ? Math.min(declaredBytes, memoryLimit) : declaredBytes;
        if (held > 0 && !lease.take(held)) {
          for (const o of observers) o.abort();
          return refuse(bodyBudgetExceeded(lease, held));
        }
      }
      // Every decision the headers allow is made: only now is the body worth sending (RFC 9110 §10.1.1).
      if (hasBody && headers.expect !== undefined) inviteBody(req, res, h2);
      // A declared length was taken whole above; a chunked body is taken as it arrives.
      const chunkLease = declaredBytes === undefined ? lease : undefined;
      /** A body that opens like JSON but is longer than is held: the waf's oversize policy, else it streams on. */
      const unheld = (then: () => void) => {
        const v = (opening as NonNullable<typeof opening>).unheld(ctx);
        return v === undefined ? then() : refuse(v);
      };
      /** A body read whole: staged for the body stages when they read it, else forwarded as it is. */
      const whole = (read: Buffer) => {
        // Called from the body stream's 'end': nothing may throw back into it.
        try {
          const json = sniff && opensJsonValue(read);
          if (json && read.length > gen.limits.body_memory_bytes) return unheld(() => afterBody(read));
          const staged = buffer || json ? stageBody(ctx, codings, route.maxBodyBytes, gen.limits, read, lease, afterBody) : afterBody(read);
          if (staged instanceof Promise) staged.catch((e: unknown) => refuse(e));
        } catch (e) {
          refuse(e);
        }
      };
      if (observers.length === 0) {
        if (!buffer && !small && sniff) {
          lease ??= bodyBudget.lease(gen.limits.max_buffered_bytes);
          const options = {
            maxBytes: route.maxBodyBytes,
            holdBytes: gen.limits.body_memory_bytes,
            timeoutMs: gen.limits.request_timeout,
            lease,
          };
          return readOpening(bodySource, options, (err, outcome) => {
            if (err !== undefined) return refuse(err);
            const o = outcome as OpeningOutcome;
            // Put back at the front of the body, which then streams on as it would have.
            if (o.kind === 'stream') return afterBody(undefined);
            if (o.kind === 'too-large') return unheld(() => afterBody(undefined));
            whole(o.body);
          });
        }
        if (!buffer && !small) return afterBody(undefined);
        readBodyThen(bodySource, route.maxBodyBytes, gen.limits.request_timeout, chunkLease, (err, body) =>
          err !== undefined ? refuse(err) : whole(body as Buffer),
        );
        return;
      }
      // On a scan route the body is taken in anyway: only whether it opens like JSON is watched.
      const watched = sniff ? openingObserver() : undefined;
      if (watched !== undefined) observers.push(watched);
      takeBody(bodySource, {
        maxBytes: route.maxBodyBytes,
        timeoutMs: gen.limits.request_timeout,
        // Held whole for stages that parse it; otherwise in memory up to body_memory_bytes, then on disk.
        memoryLimit,
        spoolDir: gen.limits.spool_dir,
        observers,
        lease: chunkLease,
      })
        .then((spool) => {
          if (closed) return spool.dispose();
          res.once('close', () => spool.dispose());
          return verdictsOf(observers, spool.buffer).then((v) => {
            if (v !== undefined) return refuse(v);
            // Spooled to disk past body_memory_bytes: not held for the waf to read as JSON.
            if (spool.buffer === undefined && watched?.opensJson === true) return unheld(() => afterBody(spool));
            return spool.buffer === undefined
              ? afterBody(spool)
              : stageBody(ctx, NO_CODINGS, route.maxBodyBytes, gen.limits, spool.buffer, lease, () => afterBody(spool));
          });
        })
        .catch((err: unknown) => refuse(err));
    };
    // The body stages, then the body: as it arrived (spooled), or streamed on when nothing read it.
    const afterBody = (spool: SpooledBody | Buffer | undefined) => {
      if (closed) return;
      let v: Verdict | Promise<Verdict>;
      try {
        v = runStages(route.bodyStages, ctx);
      } catch (err) {
        return refuse(err);
      }
      const go = () => forward(spool === undefined || Buffer.isBuffer(spool) ? spool : (spool.buffer ?? spool.chunks()));
      if (v === undefined) return go();
      if (v instanceof WardenError) return refuse(v);
      v.then(
        (r) => (r === undefined ? go() : refuse(r)),
        (err: unknown) => refuse(err),
      );
    };

    let verdict: Verdict | Promise<Verdict>;
    try {
      verdict = runStages(match.route.stages, ctx);
    } catch (err) {
      return refuse(err);
    }
    if (verdict === undefined) return next();
    if (verdict instanceof WardenError) return refuse(verdict);
    verdict.then(
      (v) => (v === undefined ? next() : refuse(v)),
      (err: unknown) => refuse(err),
    );
  }
}

/**
 * `100 Continue` for a client that waits for it before sending its body (`Expect: 100-continue`;
 * curl does for large uploads): sent once the request has passed every stage that reads only its head,
 * so a request refused on its headers (401, 403, 413 by Content-Length, 429) is answered at once
 * and its body never sent. The listener hands such requests over unanswered (listener.ts).
 */
function inviteBody(req: AnyRequest, res: AnyResponse, h2: boolean): void {
  // Never a 1xx to an HTTP/1.0 client (RFC 9110 §15.2); Node hands those over as plain requests.
  if (!h2) return void ((req as IncomingMessage).httpVersionMinor === 1 && (res as ServerResponse).writeContinue());
  const stream = (req as H2Request).stream;
  if (!stream.destroyed && !stream.headersSent) stream.additionalHeaders({ ':status': 100 });
}

/** The observers of this request's body (a stage may have nothing to watch, e.g. another media type). */
function observersOf(stages: readonly StreamingStage[], ctx: RequestContext): BodyObserver[] {
  const observers: BodyObserver[] = [];
  for (const stage of stages) {
    const o = stage.observe(ctx);
    if (o) observers.push(o);
  }
  return observers;
}

/** Every observer's verdict, once the body has ended; the first refusal in plan order wins. */
async function verdictsOf(observers: readonly BodyObserver[], body: Buffer | undefined): Promise<Verdict> {
  const verdicts = await Promise.all(observers.map((o) => o.end(body)));
  return verdicts.find((v) => v !== undefined);
}

/**
 * HTTP/2 has no built-in whole-request timeout (Node's requestTimeout covers HTTP/1.1 only), so a
 * slow upload gets a timer of its own, cleared when the body has arrived.
 */
function bodyDeadline(stream: Readable, ms: number, onExpired: () => void): NodeJS.Timeout {
  const timer = setTimeout(() => {
    if (!stream.readableEnded && !stream.destroyed) onExpired();
  }, ms);
  const clear = () => clearTimeout(timer);
  stream.once('end', clear);
  stream.once('close', clear);
  return timer;
}

/**
 * Methods whose content has a defined meaning, so a backend reads it: POST, PUT, PATCH (RFC 9110,
 * RFC 5789), QUERY, and WebDAV's that carry an XML body. Any other — GET, DELETE, OPTIONS, PURGE,
 * UNLOCK… (RFC 9110 §9.3: content of no defined semantics) — may leave its body unread.
 */
const BODY_METHODS: ReadonlySet<string> = new Set([
  'POST',
  'PUT',
  'PATCH',
  'QUERY',
  'PROPFIND',
  'PROPPATCH',
  'LOCK',
  'REPORT',
  'SEARCH',
  'MKCOL',
  'MKCALENDAR',
  'ACL',
]);

/**
 * Whether a request's body is one its backend may leave unread: for an operation without a
 * requestBody, or a method without body semantics on a route. Such a body, left on a kept-alive
 * connection, is parsed as the next request there (CL.0 desync): Python's http.server, for one.
 * Only asked of requests with a body.
 */
function bodyUnexpected(expected: RoutePlan['body'], method: string): boolean {
  return expected === 'none' || (expected === 'by-method' && !BODY_METHODS.has(method));
}

/**
 * An HTTP/2 request answered before its body was read (refused, or answered early by the backend):
 * once the response is out, reset the stream with NO_ERROR so the client stops sending (RFC 9113
 * §8.1) instead of leaving it half-open. The body's deadline, if any, ends with the response: a
 * request answered in full is not late.
 */
function endStreamAfterResponse(req: H2Request, deadline?: NodeJS.Timeout): void {
  const stream = req.stream;
  // 'finish' means the response was handed to nghttp2; END_STREAM goes out a turn or two later,
  // and a reset must not overtake it. A body that arrived whole needs none: the stream closes itself.
  const closeOnceSent = (attempt: number) => {
    if (stream.closed || stream.destroyed || stream.state.remoteClose) return;
    if (stream.state.localClose || attempt >= 20) stream.close(http2Constants.NGHTTP2_NO_ERROR);
    else setImmediate(closeOnceSent, attempt + 1);
  };
  stream.once('finish', () => {
    clearTimeout(deadline);
    closeOnceSent(0);
  });
}

/** The HTTP/1.1 connection ends with this answer, and nothing parsed after it is started (h1-connection.ts). */
function keepAliveOff(ctx: RequestContext, res: AnyResponse, h2: boolean): void {
  // The connection as the request started on it: node:http clears `req.socket` once the request is done with.
  if (!h2) closeConnectionAfter(res as ServerResponse, ctx.connection);
}

function checkH1Request(req: IncomingMessage, limits: LimitsConfig): WardenError | undefined {
  const raw = req.rawHeaders;
  if (raw.length > limits.max_header_count * 2) return tooManyHeaders(limits);
  // HTTP/1.0 and 1.1 only: llhttp also takes 0.9 (a request line without a version), 2.0 and 1.9.
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) {
    return new WardenError('ERR_REQUEST_MALFORMED', {
      rule: 'http1.version',
      detail: 'HTTP/1.1 connections carry HTTP/1.0 and HTTP/1.1 requests only.',
    });
  }
  if (req.headers.host === undefined && req.httpVersionMinor === 1) {
    return new WardenError('ERR_REQUEST_MALFORMED', { rule: 'http1.host_missing', detail: 'HTTP/1.1 requests need a Host header.' });
  }
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing, whatever follows.
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) {
    return new WardenError('ERR_REQUEST_AMBIGUOUS', {
      rule: 'framing.http10_te',
      detail: 'The request has Transfer-Encoding in HTTP/1.0.',
    });
  }
  return checkFraming(req.headers, raw);
}

/** The methods HTTP/1.1's parser (llhttp) accepts: upper case, registered. */
const KNOWN_METHODS = new Set(METHODS);

const OTHER_METHOD = '_OTHER';

/**
 * HTTP/2 carries any token as :method, in any case. Routes are matched on the registered upper-case
 * methods only, so `get`, `delete` or `FOO` would fall through to `routing.unmatched: passthrough`'s
 * default policy while a backend that ignores the method served the route; refused as HTTP/1.1 refuses them.
 */
function unknownH2Method(): WardenError {
  return new WardenError('ERR_REQUEST_MALFORMED', { rule: 'h2.method', detail: 'The request method is not a registered HTTP method.' });
}

/**
 * RFC 9113 §8.3.1: a Host that differs from :authority makes the request malformed. The backend is
 * sent :authority as its Host, while a framework in front of it, or a log, could read the other.
 */
function checkH2Host(headers: IncomingHttpHeaders): WardenError | undefined {
  const host = headers.host;
  const authority = headers[':authority'] as string | undefined;
  if (host === undefined || authority === undefined || host.toLowerCase() === authority.toLowerCase()) return undefined;
  return new WardenError('ERR_REQUEST_MALFORMED', { rule: 'h2.host', detail: 'The Host header differs from :authority.' });
}

/**
 * A Host (or :authority) is `uri-host [":" port]` (host-form.ts). Otherwise it reached the backend as
 * Host and X-Forwarded-Host, where a backend that checks Host by its prefix and builds absolute URLs
 * from it (redirects, reset links) names the other.
 */
function checkHostForm(host: string | undefined): WardenError | undefined {
  if (host === undefined || isHostForm(host)) return undefined;
  return new WardenError('ERR_REQUEST_MALFORMED', {
    rule: 'host.form',
    detail: 'The Host is not a host name or address with an optional port.',
  });
}

/**
 * HTTP/2 header limits: nghttp2's own limits are set higher, so most excess gets a clean 431. Cookie
 * crumbs (RFC 9113 §8.2.3: a client may send each pair as a field of its own, as Go's does) count
 * as the one field they are joined into, as over HTTP/1.1: 99 pairs were 200 over HTTP/1.1 and
 * 431 over h2 (docs/adversarial.md 199).
 */
function checkH2HeaderLimits(raw: readonly string[], limits: LimitsConfig): WardenError | undefined {
  let bytes = 0;
  let count = 0;
  let crumbs = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name === 'cookie' && crumbs++ > 0) {
      bytes += value.length + 2; // "; " and the pair, in the one field
      continue;
    }
    bytes += name.length + value.length + 32; // RFC 7541 §4.1 entry size
    if (name.charCodeAt(0) !== 0x3a) count++;
  }
  if (count > limits.max_header_count) return tooManyHeaders(limits);
  if (bytes > limits.max_header_bytes) {
    return new WardenError('ERR_HEADERS_TOO_LARGE', {
      rule: 'limits.max_header_bytes',
      detail: `Request headers may total at most ${limits.max_header_bytes} bytes.`,
    });
  }
  return undefined;
}

function tooManyHeaders(limits: LimitsConfig): WardenError {
  return new WardenError('ERR_HEADERS_TOO_LARGE', {
    rule: 'limits.max_header_count',
    detail: `At most ${limits.max_header_count} header fields are accepted.`,
  });
}
