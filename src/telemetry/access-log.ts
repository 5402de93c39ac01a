/**
 * The access line, one per request. Its shape never changes, so it is written as a pre-shaped JSON
 * line straight to the logger's destination: through pino's generic serializer it measured ~8 % of
 * the request path's instructions (callgrind, bench/ access config). Same fields, same format as
 * any pino line. Lines that carry headers (log.access_headers) take pino's path.
 */
import { pino, type Logger } from 'pino';
import { MAX_PATH_ATTRIBUTE, pathAttribute } from './attribute-limits.js';

/** What an access line says about a request (the pipeline's RequestContext has all of it). */
export interface AccessRecord {
  readonly method: string;
  readonly path: string;
  readonly route: { readonly id: string; readonly idJson?: string | undefined };
  readonly clientAddress: string;
  readonly protocol: string;
  readonly requestId: string;
  /** The backend's time to its response headers, in ms (undefined: not forwarded, or no answer). */
  readonly upstreamMs?: number | undefined;
}

/** ms with µs precision: how the line prints both durations. */
const msOf = (ms: number): number => Math.round(ms * 1e3) / 1e3;

export type AccessLog = (
  ctx: AccessRecord,
  status: number,
  durationMs: number,
  completed: boolean,
  headers?: Record<string, unknown>,
) => void;

export function createAccessLog(logger: Logger, serviceName: string): AccessLog {
  const stream = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym];
  const prefix = `{"level":"info","time":`;
  const service = `,"service":${JSON.stringify(serviceName)}`;
  return (ctx, status, durationMs, completed, headers) => {
    if (!logger.isLevelEnabled('info')) return;
    if (headers !== undefined || stream === undefined) {
      const line: Record<string, unknown> = {
        'http.request.method': ctx.method,
        'url.path': pathAttribute(ctx.path),
        'http.route': ctx.route.id,
        'http.response.status_code': status,
        'client.address': ctx.clientAddress,
        'network.protocol.version': ctx.protocol,
        'warden.request.id': ctx.requestId,
        duration_ms: msOf(durationMs),
      };
      if (ctx.path.length > MAX_PATH_ATTRIBUTE) line['url.path_length'] = ctx.path.length;
      if (ctx.upstreamMs !== undefined) line.upstream_ms = msOf(ctx.upstreamMs);
      if (!completed) line['warden.aborted'] = true;
      if (headers !== undefined) line.headers = headers;
      logger.info(line, 'request');
      return;
    }
    // Request ids and protocol versions are validated to be JSON-safe; the rest is escaped, route ids
    // included (an OpenAPI operationId may hold any character: a quote in one forged log fields),
    // those of the plan once, when it was compiled. The path is cut as in spans and events: a 3 KB
    // path of `"` cached in HPACK made 14 bytes on the wire 8.7 KB of log (docs/adversarial.md 236).
    const cut = ctx.path.length > MAX_PATH_ATTRIBUTE;
    stream.write(
      `${prefix}${Date.now()}${service},"http.request.method":${JSON.stringify(ctx.method)},"url.path":${JSON.stringify(pathAttribute(ctx.path))}` +
        `${cut ? `,"url.path_length":${ctx.path.length}` : ''}` +
        `,"http.route":${ctx.route.idJson ?? JSON.stringify(ctx.route.id)},"http.response.status_code":${status},"client.address":${JSON.stringify(ctx.clientAddress)}` +
        `,"network.protocol.version":"${ctx.protocol}","warden.request.id":"${ctx.requestId}","duration_ms":${msOf(durationMs)}` +
        `${ctx.upstreamMs === undefined ? '' : `,"upstream_ms":${msOf(ctx.upstreamMs)}`}${completed ? '' : ',"warden.aborted":true'},"msg":"request"}\n`,
    );
  };
}
