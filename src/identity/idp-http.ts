/**
 * HTTP to identity providers (discovery, JWKS, introspection, revocation) over one undici Agent:
 * a connect timeout (TCP and TLS handshake), a response deadline that covers headers and body
 * together, and a cap on the answer's size. Every failure is an IdpError saying why, so callers can
 * tell "the IdP could not be asked" (503) from "the IdP said no" (401).
 */
import { readCappedBody } from '../net/capped-body.js';
import { clientSpan, type SpanParent } from '../telemetry/client-span.js';
import { Agent, request, type Dispatcher } from 'undici';

export type IdpFailure =
  'connect_timeout' | 'timeout' | 'unreachable' | 'status' | 'bad_response' | 'circuit_open' | 'overloaded' | 'not_ready' | 'throttled';

export class IdpError extends Error {
  constructor(
    readonly reason: IdpFailure,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    // With the circuit open these are made at request rate: no stack trace (the cause keeps its own).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = limit;
    this.name = 'IdpError';
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** `throttled`: how long the IdP asked us to wait (its Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;
}

export interface IdpResponse {
  status: number;
  /** A response header's value (the first, when repeated); undefined when absent. */
  header(name: string): string | undefined;
  body: Buffer;
  json(): unknown;
}

export interface IdpRequest {
  /** The request's trace context when the call is made on a request's behalf. */
  parent?: SpanParent;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

export interface IdpHttp {
  request(url: string, req?: IdpRequest): Promise<IdpResponse>;
  readonly timeouts: { connect: number; response: number };
  close(): Promise<void>;
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export function createIdpHttp(timeouts: { connect: number; response: number }): IdpHttp {
  const agent = new Agent({
    connect: { timeout: timeouts.connect },
    connectTimeout: timeouts.connect,
    headersTimeout: timeouts.response,
    bodyTimeout: timeouts.response,
    keepAliveTimeout: 30_000,
    connections: 64,
  });

  return {
    timeouts,
    request(url, req = {}) {
      const target = new URL(url);
      return clientSpan(
        `idp ${req.method ?? 'GET'} ${target.pathname}`,
        { 'http.request.method': req.method ?? 'GET', 'server.address': target.hostname, 'url.path': target.pathname },
        req.parent,
        () => call(url, req),
      );
    },
    close: () => agent.close(),
  };

  async function call(url: string, req: IdpRequest): Promise<IdpResponse> {
    const signal = AbortSignal.timeout(timeouts.response);
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        dispatcher: agent,
        method: req.method ?? 'GET',
        headers: { accept: 'application/json', ...req.headers },
        body: req.body,
        signal,
      });
    } catch (err) {
      throw classify(err, url, signal);
    }
    let body: Buffer;
    try {
      body = await readCappedBody(
        res.body,
        MAX_ANSWER_BYTES,
        () => new IdpError('bad_response', `answer larger than ${MAX_ANSWER_BYTES} bytes`),
      );
    } catch (err) {
      throw err instanceof IdpError ? err : classify(err, url, signal);
    }
    const headers = res.headers;
    return {
      status: res.statusCode,
      header(name) {
        const value = headers[name];
        return Array.isArray(value) ? value[0] : value;
      },
      body,
      json() {
        try {
          return JSON.parse(body.toString('utf8')) as unknown;
        } catch (cause) {
          throw new IdpError('bad_response', `${url} answered with something that is not JSON`, { cause });
        }
      },
    };
  }
}

function classify(err: unknown, url: string, signal: AbortSignal): IdpError {
  const code = (err as { code?: string }).code;
  const origin = new URL(url).origin;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new IdpError('connect_timeout', `connecting to ${origin} timed out`, { cause: err });
  if (signal.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new IdpError('timeout', `${origin} did not answer in time`, { cause: err });
  }
  return new IdpError('unreachable', `cannot reach ${origin} (${code ?? (err as Error).message})`, { cause: err });
}
