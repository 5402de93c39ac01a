/**
 * JSON Schema of ca.yaml (`warden ca serve`) and the validated shape. Defaults live here, as for
 * sidecar.yaml; durations become milliseconds (`x-duration`), paths resolve against the file's folder.
 */

import { logLevel, port, telemetry } from './schema-parts.js';
import type { OtlpConfig } from './types.js';
const duration = (def: string) =>
  ({ 'x-duration': true, default: def, 'x-expect': 'a duration like "10m", "24h" or a number of milliseconds' }) as const;

export const caSchema = {
  $id: 'https://warden.dev/schemas/ca.json',
  type: 'object',
  additionalProperties: false,
  required: ['trust_domain', 'dir'],
  properties: {
    trust_domain: {
      type: 'string',
      pattern: '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$',
      'x-expect': 'the trust domain given to warden ca init, e.g. "example.org"',
    },
    dir: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the directory made by warden ca init' },
    passphrase: { type: 'string', 'x-secret': true, 'x-expect': 'the key passphrase (use ${file:...} or ${ENV})' },
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', default: '127.0.0.1', 'x-expect': 'an IP address to bind, e.g. "127.0.0.1" or "0.0.0.0"' },
        port: { ...port, default: 8444 },
      },
    },
    database: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        path: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of the SQLite file (default DIR/ca.db)' },
        keep_expired: duration('720h'),
      },
    },
    certificates: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        lifetime: duration('24h'),
        backdate: duration('5m'),
        // Each renewal adds a certificate valid for a lifetime: without a bound one workload renewing
        // in a loop minted them without end, and a revocation of its identity made a CRL too large to
        // sign or to send. A replica holds up to 2 during rotation, plus 1 per restart on fresh state
        // (an emptyDir) within a certificate lifetime: 1024 covers 128 replicas restarted 6 times a day.
        max_active_per_identity: {
          type: 'integer',
          minimum: 2,
          maximum: 100_000,
          default: 1024,
          'x-expect':
            'an integer from 2 to 100000: unexpired, unrevoked certificates one SPIFFE ID may hold (2 per replica, plus its restarts)',
        },
      },
    },
    tokens: { type: 'object', additionalProperties: false, default: {}, properties: { ttl: duration('1h') } },
    crl: { type: 'object', additionalProperties: false, default: {}, properties: { next_update: duration('10m') } },
    server: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        dns_names: {
          type: 'array',
          default: ['localhost'],
          items: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$', 'x-expect': 'a DNS name' },
        },
        ip_addresses: {
          type: 'array',
          default: ['127.0.0.1'],
          items: { type: 'string', pattern: '^[0-9a-fA-F.:]+$', 'x-expect': 'an IP address' },
        },
        lifetime: duration('24h'),
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: logLevel,
      },
    },
    telemetry,
  },
} as const;

/** ca.yaml after validation: durations in milliseconds, paths absolute, defaults filled in. */
export interface CaConfig {
  trust_domain: string;
  /** The CA material (root, intermediate, admin identity, bundle). */
  dir: string;
  /** Passphrase of the encrypted keys, when they are. */
  passphrase?: string;
  listen: { host: string; port: number };
  /** path defaults to DIR/ca.db; expired certificates (never revoked) and tokens leave it keep_expired after expiry. */
  database: { path: string; keep_expired: number };
  /**
   * Lifetime of workload certificates (capped at the intermediate's not-after), their backdating, and
   * how many unexpired, unrevoked ones one SPIFFE ID may hold (enroll and renew refuse past it).
   */
  certificates: { lifetime: number; backdate: number; max_active_per_identity: number };
  /** Default lifetime of bootstrap tokens. */
  tokens: { ttl: number };
  crl: { next_update: number };
  /** Names and lifetime of the CA's own TLS server certificate. */
  server: { dns_names: string[]; ip_addresses: string[]; lifetime: number };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  /** OTLP export of the CA's requests (server spans) and events (log records), as the sidecar's. */
  telemetry: { otlp?: OtlpConfig };
}
