/**
 * The CA's OpenTelemetry export, as the sidecar's (docs/observability.md): a server span per API
 * request continuing the caller's W3C trace (a sidecar's `ca POST /v1/enroll` client span is its
 * parent), and every CA event (enrolled, renewed, revoked, refused) as a log record correlated with
 * the request's span, under service.name `warden-ca`. Configured by `telemetry.otlp` in ca.yaml or
 * the OTEL_* variables; nothing is loaded without an endpoint.
 */
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { IncomingMessage } from 'node:http';
import type { CaConfig } from '../config/ca-schema.js';
import type { EventBus } from '../telemetry/events.js';
import { otelEnabled } from '../telemetry/otel-enabled.js';
import type { TracedRequest } from '../telemetry/request-trace.js';
import { createRequestTracing } from '../telemetry/request-tracing.js';
import { WARDEN_VERSION } from '../version.js';

export interface CaTelemetry {
  /**
   * Runs one API request inside its server span: `context` is the span's, for the events the
   * request causes; `done` ends the span with the status sent.
   */
  traced(
    req: IncomingMessage,
    requestId: string,
    path: string,
    action: string,
    run: (done: (status: number) => void, context: Context) => void,
  ): void;
  shutdown(): Promise<void>;
}

export async function startCaTelemetry(config: CaConfig, events: EventBus, env: NodeJS.ProcessEnv): Promise<CaTelemetry | undefined> {
  if (!otelEnabled(config.telemetry.otlp, env)) return undefined;
  const otel = (await import('../telemetry/otel.js')).startOtel(
    config.telemetry.otlp,
    { serviceName: 'warden-ca', version: WARDEN_VERSION, attributes: { 'warden.trust_domain': config.trust_domain } },
    env,
  );
  if (!otel) return undefined;
  const tracing = createRequestTracing(otel, { ownMetrics: true });
  const removeSink = events.addSink(tracing.eventSink);
  return {
    traced(req, requestId, path, action, run) {
      const request: TracedRequest = {
        requestId,
        startedAt: performance.now(),
        protocol: '1.1',
        method: req.method ?? 'GET',
        path,
        clientAddress: req.socket.remoteAddress ?? '',
        headers: req.headers,
        upstreamHeaders: {},
        peer: { verified: false },
        route: { id: action },
        traceContext: ROOT_CONTEXT,
      };
      tracing.start(request);
      run((status) => tracing.end(request, status), request.traceContext);
    },
    async shutdown() {
      removeSink();
      await otel.shutdown();
    },
  };
}
