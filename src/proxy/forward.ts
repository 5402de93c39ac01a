/**
 * Forwarding to the backend over a pooled undici connection. Bodies stream both ways with
 * backpressure and are never buffered. Failures before the response starts become problem+json
 * (502 unreachable / 504 timeout); failures after it starts abort the client's stream, since a
 * status can no longer be sent.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import type { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { RequestContext } from '../pipeline/stage.js';
import { downstreamResponseHeaders, type HeaderRules } from './headers.js';

/** The response side the forwarder writes to: HTTP/1.1 ServerResponse or HTTP/2 compat response. */
export interface DownstreamResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: IncomingHttpHeaders): unknown;
  write(chunk: Buffer): boolean;
  end(): unknown;
  destroy(error?: Error): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

export interface ForwardOutcome {
  /** Called once when the upstream exchange fails; `started` tells whether a response was already sent. */
  onFailure(error: WardenError, started: boolean): void;
  /**
   * Sees the response once it has been streamed to the client in full (a copy of at most
   * `maxBytes`; larger bodies are not inspected). Never delays or changes what the client gets.
   */
  inspect?: { maxBytes: number; onComplete(status: number, headers: IncomingHttpHeaders, body: Buffer): void } | undefined;
}

export interface Forwarder {
  forward(
    ctx: RequestContext,
    /** A Buffer when the body was read whole (one write with the head), a stream or iterable otherwise. */
    body: Buffer | Readable | AsyncIterable<Buffer> | Iterable<Buffer> | null,
    res: DownstreamResponse,
    outcome: ForwardOutcome,
  ): Aborter;
  /** True when a connection to the backend opens (and the health path answers < 500, if configured). */
  probe(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** Lets the request side cancel the upstream exchange (client went away). */
export interface Aborter {
  abort(): void;
}

export function createPool(cfg: UpstreamConfig): Pool {
  const unix = cfg.url.startsWith('unix:');
  const origin = unix ? 'http://localhost' : cfg.url.replace(/\/$/, '');
  return new Pool(origin, {
    connections: cfg.connections,
    pipelining: 1,
    keepAliveTimeout: cfg.keep_alive,
    connectTimeout: cfg.timeouts.connect,
    headersTimeout: cfg.timeouts.headers,
    bodyTimeout: cfg.timeouts.body,
    ...(unix ? { socketPath: cfg.url.slice('unix:'.length) } : {}),
  });
}

/** undici / socket errors → what the client is told. */
export function upstreamError(err: unknown): WardenError {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: 'upstream.timeouts.connect', cause: err });
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: 'upstream.timeouts.headers', cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
      return new WardenError('ERR_UPSTREAM_TIMEOUT', { rule: 'upstream.timeouts.body', cause: err });
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new WardenError('ERR_UPSTREAM_PROTOCOL', { rule: `upstream:${code}`, cause: err });
    default:
      return new WardenError('ERR_UPSTREAM_UNAVAILABLE', { rule: `upstream:${code ?? 'error'}`, cause: err });
  }
}

class ForwardHandler implements Dispatcher.DispatchHandler, Aborter {
  private controller: Dispatcher.DispatchController | undefined;
  private started = false;
  private finished = false;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private copy: Buffer[] | undefined;
  private copied = 0;
  private readonly resume = () => this.controller?.resume();

  constructor(
    private readonly res: DownstreamResponse,
    private readonly rules: HeaderRules,
    private readonly outcome: ForwardOutcome,
    private readonly requestId: string,
    private readonly extraHeaders: Record<string, string> | undefined,
  ) {}

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.controller?.abort(new Error('client closed the request'));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.finished) controller.abort(new Error('client closed the request'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // interim responses are the sidecar's own business
    const out = downstreamResponseHeaders(headers, this.rules);
    if (out['x-request-id'] === undefined) out['x-request-id'] = this.requestId;
    if (this.extraHeaders !== undefined) Object.assign(out, this.extraHeaders);
    try {
      this.res.writeHead(statusCode, out);
    } catch (err) {
      this.fail(new WardenError('ERR_UPSTREAM_PROTOCOL', { rule: 'upstream.response_headers', cause: err }));
      controller.abort(err as Error);
      return;
    }
    this.started = true;
    if (this.outcome.inspect) {
      this.status = statusCode;
      this.headers = headers;
      this.copy = [];
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return;
    if (this.copy !== undefined) {
      this.copied += chunk.length;
      if (this.copied > (this.outcome.inspect?.maxBytes ?? 0)) this.copy = undefined;
      else this.copy.push(chunk);
    }
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', this.resume);
    }
  }

  onResponseEnd(): void {
    if (this.finished) return;
    this.finished = true;
    this.res.end();
    if (this.copy !== undefined) this.outcome.inspect?.onComplete(this.status, this.headers, Buffer.concat(this.copy, this.copied));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.finished) return;
    this.fail(err instanceof WardenError ? err : upstreamError(err));
  }

  private fail(error: WardenError): void {
    this.finished = true;
    this.outcome.onFailure(error, this.started);
  }
}

export function createForwarder(cfg: UpstreamConfig, rules: HeaderRules): Forwarder {
  const pool = createPool(cfg);
  const timeouts = { headersTimeout: cfg.timeouts.headers, bodyTimeout: cfg.timeouts.body };

  return {
    forward(ctx, body, res, outcome) {
      const handler = new ForwardHandler(res, rules, outcome, ctx.requestId, ctx.responseHeaders);
      pool.dispatch(
        {
          method: ctx.method,
          path: ctx.path + ctx.search,
          headers: ctx.upstreamHeaders,
          // undici streams async iterables too (the length-limited body); its types do not list them.
          body: body as Buffer | Readable | null,
          ...timeouts,
        },
        handler,
      );
      return handler;
    },
    probe(timeoutMs) {
      return cfg.health_path ? httpProbe(pool, cfg.health_path, timeoutMs) : tcpProbe(cfg.url, timeoutMs);
    },
    async close() {
      await pool.close();
    },
  };
}

async function httpProbe(pool: Pool, path: string, timeoutMs: number): Promise<boolean> {
  try {
    const { statusCode, body } = await pool.request({
      method: 'GET',
      path,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await body.dump();
    return statusCode < 500;
  } catch {
    return false;
  }
}

/** Opens and closes one connection: the backend is listening. No request, so no backend side effects. */
function tcpProbe(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = url.startsWith('unix:')
      ? connect(url.slice('unix:'.length))
      : connect(Number(new URL(url).port || 80), new URL(url).hostname.replace(/^\[|\]$/g, ''));
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
