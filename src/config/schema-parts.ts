/** Schema fragments shared by sidecar.yaml, ca.yaml and their sections. */

/** Log level, shared with ca.yaml. */
export const logLevel = {
  enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  default: 'info',
  'x-expect': 'one of trace, debug, info, warn, error, fatal, silent',
} as const;

/** A TCP port, shared with ca.yaml. */
export const port = { type: 'integer', minimum: 0, maximum: 65535, 'x-expect': 'an integer 0–65535 (0 picks a free port)' } as const;
/**
 * The longest duration a Node timer takes (2^31 − 1 ms, 596 h): past it setTimeout fires after
 * 1 ms (TimeoutOverflowWarning), so a `request_timeout: 600h` timed every body out at once.
 */
export const MAX_TIMER_MS = 2_147_483_647;
const TIMER_EXPECT = 'up to 596h';
export const duration = (def: string) =>
  ({
    'x-duration': MAX_TIMER_MS,
    default: def,
    'x-expect': `a duration like "500ms", "10s", "5m" or a number of milliseconds, ${TIMER_EXPECT}`,
  }) as const;
export const size = (def: string) =>
  ({ 'x-size': true, default: def, 'x-expect': 'a size like "16KiB", "10MiB" or a number of bytes' }) as const;
export const positiveInt = (def: number, max = 1_000_000) =>
  ({ type: 'integer', minimum: 1, maximum: max, default: def, 'x-expect': `an integer 1–${max}` }) as const;
export const cidrList = {
  type: 'array',
  default: [],
  items: { type: 'string', 'x-cidr': true, 'x-expect': 'an IP address or CIDR such as "10.0.0.0/8" or "::1/128"' },
} as const;

/** `telemetry:` of sidecar.yaml and ca.yaml: OTLP export (OTEL_* variables apply without it). */
export const telemetry = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    otlp: {
      type: 'object',
      additionalProperties: false,
      'x-expect': 'OTLP export: otlp: { endpoint: "http://otel-collector:4318" }',
      properties: {
        endpoint: {
          type: 'string',
          pattern: '^https?://',
          'x-expect': 'the collector\'s OTLP/HTTP base URL, e.g. "http://otel-collector:4318"',
        },
        protocol: { enum: ['http/protobuf', 'http/json'], 'x-expect': '"http/protobuf" or "http/json"' },
        headers: {
          type: 'object',
          'x-secret': true, // an Authorization or API key for the collector
          additionalProperties: { type: 'string' },
          'x-expect': 'header names and values, e.g. { authorization: "Bearer …" }',
        },
        sampling_ratio: { type: 'number', minimum: 0, maximum: 1, 'x-expect': 'a number from 0 to 1' },
        trust_trace_context: {
          enum: ['all', 'peers', 'none'],
          'x-expect': '"all" (join any caller\'s trace), "peers" (only callers with a verified certificate) or "none"',
        },
        export_interval: {
          'x-duration': MAX_TIMER_MS,
          'x-expect': `a duration like "1s" (batches and metrics leave at least this often), ${TIMER_EXPECT}`,
        },
        timeout: { 'x-duration': MAX_TIMER_MS, 'x-expect': `a duration like "10s" (per export request), ${TIMER_EXPECT}` },
      },
    },
  },
} as const;
