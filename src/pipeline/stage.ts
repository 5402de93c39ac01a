/**
 * The contract between the pipeline and its stages (DESIGN §2).
 *
 * A stage is made once per route by its `createX(cfg, deps)` factory, which validates and
 * precomputes everything; `run` sees only the request context. Returning nothing lets the request
 * continue; returning (or throwing) a WardenError refuses it — src/pipeline/rescue.ts alone turns
 * that into the response and the security event.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Context } from '@opentelemetry/api';
import type { WardenError } from '../errors.js';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import type { Principal } from '../identity/principal.js';
import type { ParsedJson } from '../net/json-body.js';
import type { CacheScope } from '../net/cache-scope.js';

/** Dotted ids shared by config, logs, metrics and events. Later capabilities add theirs here. */
export type StageId =
  | 'access'
  | 'peer-authz'
  | 'rate-limit'
  | 'validate-request'
  | 'method-field'
  | 'waf'
  | 'malware-scan'
  | 'authn'
  | 'authn-jwt'
  | 'authn-introspect'
  | 'authz-scopes'
  | 'mint-token';

export type Verdict = void | undefined | WardenError;

export interface Stage {
  readonly id: StageId;
  run(ctx: RequestContext): Verdict | Promise<Verdict>;
}

/** A stage's view of a body as it arrives (the malware scanner streams it to clamd). */
export interface BodyObserver {
  write(chunk: Buffer): void;
  /**
   * Undefined while the observer keeps up; otherwise resolves when it can take more (clamd has read
   * its backlog): the body's source is paused until then. Never rejects.
   */
  drained?(): Promise<void> | undefined;
  /**
   * The whole body has arrived: the verdict. `body`: all of it, when it is held in memory (the
   * plan's buffersBody said so, or it was small enough); undefined when it was spooled to disk.
   */
  end(body?: Buffer): Promise<Verdict>;
  /** The body will not complete (refused, aborted, too large): release what the observer holds. */
  abort(): void;
}

/** A body stage that works on the body while it arrives instead of on the buffered whole. */
export interface StreamingStage {
  readonly id: StageId;
  /** An observer for this request's body, or undefined when the stage has nothing to do with it. */
  observe(ctx: RequestContext): BodyObserver | undefined;
}

/** The headers sent to the backend; a header set to undefined is not sent (undici skips it). */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface RouteInfo {
  /** Route id from config (`_default` for unmatched requests let through, `_unmatched` for refused ones). */
  readonly id: string;
  /** The id as a JSON string, made once with the plan: the access line writes it on every request. */
  readonly idJson?: string;
  /**
   * Marks the backend's responses private to shared caches, on a route that decides who its caller
   * is (net/cache-scope.ts); undefined on the others, whose responses pass as sent.
   */
  readonly cacheScope?: CacheScope | undefined;
}

export interface RequestContext {
  readonly requestId: string;
  /** performance.now() when the request headers were parsed. */
  readonly startedAt: number;
  readonly protocol: '1.1' | '2';
  readonly method: string;
  /** Normalised path, without the query: what routing, policy and the backend all see. */
  readonly path: string;
  /** The query string including its leading "?", or "" (authn removes a token sent as a query parameter). */
  search: string;
  /** The client's address: the socket's peer, or the nearest untrusted X-Forwarded-For hop. */
  readonly clientAddress: string;
  /** The caller's client certificate, as verified at the handshake (`presented: false` without one). */
  readonly peer: PeerIdentity;
  /** The client's connection (its socket), for what is worth remembering from one request to the next on it. */
  readonly connection?: object | undefined;
  /** Request headers as received (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /** Headers that will be sent to the backend; stages may add to them (e.g. a minted token). */
  readonly upstreamHeaders: UpstreamHeaders;
  route: RouteInfo;
  params: Readonly<Record<string, string | undefined>>;
  /** The authenticated caller, set by the authn stage (absent on public routes and optional-authn requests without a token). */
  principal?: Principal | undefined;
  /** The request body, for stages that declared they need it (undefined when none was sent). */
  body?: Buffer | undefined;
  /** The body as JSON, parsed once by the first stage that asks (`jsonBodyOf` in net/json-body.ts). */
  bodyJson?: ParsedJson | false | undefined;
  /** The body's form fields, read once by the first stage that asks (`formPairsOf` in net/form-pairs.ts). */
  bodyForm?: readonly string[] | undefined;
  /** Headers a stage adds to the backend's response on its way back (e.g. RateLimit). */
  responseHeaders?: Record<string, string> | undefined;
  /**
   * The backend's time in ms, from the request's dispatch to its response headers (Envoy's
   * upstream service time); undefined until they arrive, and for requests the sidecar answered itself.
   */
  upstreamMs?: number | undefined;
  /**
   * The request's server span context (OpenTelemetry): the parent of the calls a stage makes on
   * the request's behalf (IdP, clamd, Redis). The root context while export is off.
   */
  traceContext: Context;
}
