/**
 * An OTLP exporter with an agent of its own and an `abort` that ends its exports in flight: what
 * export-deadline.ts calls when a queue gives an export up. The library's request has no handle to
 * cancel it, and its timeout is the socket's idle time, which a collector trickling its answer
 * never lets fire: without abort each given-up export kept its socket and batch, one more every
 * breaker pause, up to the library's 30 concurrent exports (logs, and JSON traces, had none).
 *
 * The agent is the one the configuration would have made (`OTEL_EXPORTER_OTLP_*` TLS options
 * included), kept so that its sockets can be destroyed: they are this exporter's alone.
 */
import type { Agent } from 'node:http';
import type { OTLPExporterNodeConfigBase } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions } from '@opentelemetry/otlp-exporter-base/node-http';

const PATHS = { TRACES: 'v1/traces', LOGS: 'v1/logs' } as const;

export function withOwnAgent<E extends object>(
  config: OTLPExporterNodeConfigBase,
  signal: keyof typeof PATHS,
  make: (config: OTLPExporterNodeConfigBase) => E,
): E & { abort(): void } {
  // The factory the library would use for this signal: the configuration's, else OTEL_*'s, else its default.
  const factory = convertLegacyHttpOptions(config, signal, PATHS[signal], {}).agentFactory;
  let agent: Agent | undefined;
  const exporter = make({ ...config, httpAgentOptions: async (protocol: string) => (agent = await factory(protocol)) });
  return Object.assign(exporter, {
    abort(): void {
      for (const sockets of Object.values(agent?.sockets ?? {})) for (const socket of sockets ?? []) socket.destroy();
    },
  });
}
