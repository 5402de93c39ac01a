/** Whether OTLP export is configured: an endpoint in sidecar.yaml or in the environment (OTEL_*). */
import type { OtlpConfig } from '../config/types.js';

export function otelEnabled(cfg: OtlpConfig | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  return Boolean(cfg?.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
