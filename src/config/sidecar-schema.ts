/**
 * JSON Schema of sidecar.yaml. Defaults live here (ajv `useDefaults`), so the schema, the example file
 * and the docs describe one set of values. `x-expect` is the phrase used in error messages
 * ("must be <x-expect>, got ..."); `x-duration` / `x-size` convert "10s" / "16KiB" into ms / bytes.
 */

import { cidrList, duration, logLevel, port, positiveInt, size, telemetry } from './schema-parts.js';
import { routeAuthn, routeScopes, tokensSchema } from './tokens-schema.js';
import { rateLimitsSchema, routeRateLimit } from './rate-limit-schema.js';

const httpMethod = {
  type: 'string',
  pattern: '^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|\\*)$',
  'x-expect': 'an HTTP method in capitals (GET, POST, …) or "*"',
} as const;

const accessProperties = {
  action: { enum: ['allow', 'deny'], default: 'allow', 'x-expect': '"allow" or "deny"' },
  clients: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: { allow: cidrList, deny: cidrList },
  },
} as const;
/** Top-level `access` applies to every route that has none of its own; a route's `access` replaces it. */
const globalAccess = { type: 'object', additionalProperties: false, default: {}, properties: accessProperties } as const;
const routeAccess = { type: 'object', additionalProperties: false, properties: accessProperties } as const;

const spiffeId = {
  type: 'string',
  pattern: '^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)+$',
  'x-expect': 'a SPIFFE ID like "spiffe://example.org/ns/shop/sa/orders"',
} as const;
const peerPattern = {
  type: 'string',
  pattern: '^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)*(/\\*)?$',
  'x-expect': 'a SPIFFE ID, or a prefix ending in "/*" such as "spiffe://example.org/ns/payments/*"',
} as const;
const peersProperties = { allow: { type: 'array', default: [], items: peerPattern } } as const;
const HEAP_GROWTH_EXPECT =
  'a factor from 1.1 to 4 (the old generation may grow to this × what is alive before V8 collects it) or "auto" (V8 decides, up to 4)';
const mtlsMode = { enum: ['require', 'optional'], 'x-expect': '"require" or "optional"' } as const;
const httpsUrl = {
  type: 'string',
  pattern: '^https://[^/?#]+/?$',
  'x-expect': 'an https origin like "https://warden-ca:8444"',
} as const;

const validationMode = { enum: ['enforce', 'report', 'off'], 'x-expect': '"enforce", "report" or "off"' } as const;

/** What a route (or an OpenAPI operation, under openapi.operations) may set for itself. */
const ROUTE_SETTINGS = {
  access: routeAccess,
  peers: { type: 'object', additionalProperties: false, properties: peersProperties },
  mtls: mtlsMode,
  authn: routeAuthn,
  scopes: routeScopes,
  rate_limit: routeRateLimit,
  malware_scan: { type: 'boolean', 'x-expect': 'true or false (needs threats.malware)' },
  waf: { type: 'boolean', 'x-expect': 'true or false (false: no waf on this route)' },
  limits: {
    type: 'object',
    additionalProperties: false,
    properties: { max_body_bytes: { 'x-size': true, 'x-expect': 'a size like "16KiB", "10MiB" or a number of bytes' } },
  },
} as const;

const FINGERPRINT_EXPECT = 'a root fingerprint "sha256:<64 hex digits>" (as printed by warden ca init), or a list of 1 to 8 of them';

export const sidecarSchema = {
  $id: 'https://warden.dev/schemas/sidecar.json',
  type: 'object',
  additionalProperties: false,
  required: ['listeners', 'upstream'],
  properties: {
    service: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        // Sent to anonymous callers (the WWW-Authenticate realm) and put on every metric, log line and
        // span: a name, never a file's or variable's content substituted into it (/proc/self/environ).
        name: {
          type: 'string',
          pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$',
          default: 'backend',
          'x-expect': 'a service name: letters, digits, ".", "_" and "-", at most 63, starting with a letter or digit (e.g. orders)',
        },
      },
    },
    listeners: {
      'x-expect': 'the listeners: at least listeners.inbound (with tls cert and key, unless mesh is set)',
      type: 'object',
      additionalProperties: false,
      required: ['inbound'],
      properties: {
        inbound: {
          type: 'object',
          additionalProperties: false,
          'x-expect': 'the inbound listener: tls with cert and key, unless mesh provides the certificate',
          properties: {
            host: { type: 'string', default: '0.0.0.0', 'x-expect': 'an IP address to bind, e.g. "0.0.0.0" or "::"' },
            port: { ...port, default: 8443 },
            tls: {
              'x-expect': 'the certificate and key: tls: { cert: FILE, key: FILE }',
              type: 'object',
              additionalProperties: false,
              default: {},
              properties: {
                cert: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of a PEM certificate chain' },
                key: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of a PEM private key' },
                passphrase: { type: 'string', 'x-secret': true, 'x-expect': 'the key passphrase (use ${file:...} or ${ENV})' },
                min_version: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2', 'x-expect': '"TLSv1.2" or "TLSv1.3"' },
                client_certificates: {
                  enum: ['none', 'request', 'require'],
                  default: 'none',
                  'x-expect': '"none", "request" or "require"',
                },
                client_ca: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of a PEM CA bundle' },
                client_crl: {
                  type: 'string',
                  minLength: 1,
                  'x-path': true,
                  'x-expect': 'the path of a CRL file (PEM "-----BEGIN X509 CRL-----" blocks, or one DER CRL) signed by CAs of client_ca',
                },
              },
            },
          },
        },
        admin: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            host: { type: 'string', default: '127.0.0.1', 'x-expect': 'an IP address to bind (keep it on loopback)' },
            port: { ...port, default: 9901 },
            hosts: {
              type: 'array',
              default: [],
              maxItems: 64,
              items: {
                type: 'string',
                pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$',
                maxLength: 253,
                'x-expect': 'a DNS name without port that callers put in Host (e.g. the Compose service name Prometheus scrapes)',
              },
            },
          },
        },
      },
    },
    upstream: {
      'x-expect': 'the backend: upstream: { url: "http://127.0.0.1:8080" }',
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: {
          type: 'string',
          // No user:password@: the sidecar sends no credentials of its own upstream, and one in the URL was logged at start and shown by /readyz.
          pattern: '^(http://[^/?#@]+/?|unix:/.+)$',
          'x-expect': 'a backend address like "http://127.0.0.1:8080" or "unix:/run/app.sock" (no user:password@)',
        },
        connections: positiveInt(128, 10_000),
        host_header: { enum: ['preserve', 'upstream'], default: 'preserve', 'x-expect': '"preserve" or "upstream"' },
        keep_alive: duration('4s'),
        timeouts: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { connect: duration('2s'), headers: duration('30s'), body: duration('30s') },
        },
        health_path: { type: 'string', pattern: '^/', 'x-expect': 'an absolute path such as "/healthz"' },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        max_header_bytes: size('16KiB'),
        max_header_count: positiveInt(100, 1000),
        max_body_bytes: size('10MiB'),
        max_decoded_ratio: positiveInt(100),
        max_form_fields: positiveInt(10_000),
        headers_timeout: duration('10s'),
        request_timeout: duration('60s'),
        idle_timeout: duration('60s'),
        send_timeout: duration('60s'),
        max_buffered_bytes: size('64MiB'),
        handshake_timeout: duration('10s'),
        handshake_failures: {
          type: 'object',
          additionalProperties: false,
          default: {},
          'x-expect': 'failed TLS handshakes per client network: { burst: 20, per: 10s } (burst: 0 = off)',
          properties: {
            burst: {
              type: 'integer',
              minimum: 0,
              maximum: 1_000_000,
              default: 20,
              'x-expect': 'an integer 0–1000000 (failed handshakes a client network may make in a row; 0 = off)',
            },
            per: duration('10s'),
          },
        },
        max_concurrent_streams: positiveInt(100, 10_000),
        max_connections: positiveInt(10_000),
        max_requests_per_connection: {
          type: 'integer',
          minimum: 0,
          default: 0,
          'x-expect': 'an integer ≥ 0 (0 = unlimited)',
        },
        max_pipelined_requests: positiveInt(16, 1000),
        max_in_flight: {
          type: 'integer',
          minimum: 0,
          default: 0,
          'x-expect': 'an integer ≥ 0 (0 = unlimited)',
        },
        body_memory_bytes: size('1MiB'),
        heap_growth: {
          // Each branch names the whole choice: the first error reported for a field is a branch's.
          anyOf: [
            { type: 'number', minimum: 1.1, maximum: 4, 'x-expect': HEAP_GROWTH_EXPECT },
            { const: 'auto', 'x-expect': HEAP_GROWTH_EXPECT },
          ],
          default: 2,
          'x-expect': HEAP_GROWTH_EXPECT,
        },
        spool_dir: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'a directory for request bodies spilled to disk' },
      },
    },
    headers: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        internal: {
          type: 'array',
          default: ['x-warden-*'],
          items: {
            type: 'string',
            pattern: "^[A-Za-z0-9!#$%&'+.^_`|~-]+\\*?$",
            'x-expect': 'a header name, or a prefix ending in "*" such as "x-warden-*"',
          },
        },
        trusted_proxies: cidrList,
        // Which ones make sense is checked in load.ts (trustedProxyHeaderProblem).
        trusted_proxy_headers: {
          type: 'array',
          default: [],
          items: {
            type: 'string',
            pattern: '^[a-z0-9-]+\\*?$',
            'x-expect':
              'a lower-case header name a trusted proxy sets ("cf-connecting-ip", "forwarded"), or a prefix ending in "*" ("x-amzn-oidc-*")',
          },
        },
        overrides: { enum: ['refuse', 'forward'], default: 'refuse', 'x-expect': '"refuse" or "forward"' },
      },
    },
    routing: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        unmatched: { enum: ['refuse', 'passthrough'], default: 'refuse', 'x-expect': '"refuse" or "passthrough"' },
        // CORS preflights (OPTIONS with Origin and Access-Control-Request-Method) where the path has no OPTIONS route.
        cors_preflight: { enum: ['refuse', 'forward'], default: 'refuse', 'x-expect': '"refuse" or "forward"' },
      },
    },
    access: globalAccess,
    peers: { type: 'object', additionalProperties: false, default: {}, properties: peersProperties },
    mesh: {
      'x-expect': 'the workload identity: mesh: { spiffe_id: …, ca: { url: …, bundle: FILE } }',
      type: 'object',
      additionalProperties: false,
      required: ['spiffe_id', 'ca'],
      properties: {
        spiffe_id: spiffeId,
        dns_names: {
          type: 'array',
          default: [],
          items: { type: 'string', pattern: '^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$', 'x-expect': 'a DNS name' },
        },
        ca: {
          'x-expect': 'the CA: ca: { url: "https://…", bundle: FILE } (or fingerprint: "sha256:…")',
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: httpsUrl,
            bundle: { type: 'string', minLength: 1, 'x-path': true, 'x-expect': 'the path of a PEM file with the CA root(s)' },
            // A list during a root rotation: the old root's and the new one's (docs/mesh-identity.md).
            fingerprint: {
              anyOf: [
                { type: 'string', pattern: '^sha256:[0-9a-fA-F:]{64,95}$', 'x-expect': FINGERPRINT_EXPECT },
                {
                  type: 'array',
                  minItems: 1,
                  maxItems: 8,
                  items: { type: 'string', pattern: '^sha256:[0-9a-fA-F:]{64,95}$', 'x-expect': FINGERPRINT_EXPECT },
                  'x-expect': FINGERPRINT_EXPECT,
                },
              ],
              'x-expect': FINGERPRINT_EXPECT,
            },
            timeout: duration('5s'),
          },
        },
        bootstrap_token: {
          type: 'string',
          'x-secret': true,
          'x-expect': 'the bootstrap token (use ${WARDEN_BOOTSTRAP_TOKEN} or ${file:…})',
        },
        state_dir: { type: 'string', minLength: 1, default: '/var/lib/warden', 'x-path': true, 'x-expect': 'a directory path' },
        renew_at: { type: 'number', minimum: 0.1, maximum: 0.95, default: 0.7, 'x-expect': 'a fraction of the lifetime, 0.1–0.95' },
        renew_jitter: { type: 'number', minimum: 0, maximum: 0.2, default: 0.05, 'x-expect': 'a fraction of the lifetime, 0–0.2' },
        max_backoff: duration('60s'),
        refresh: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { bundle: duration('5m'), crl: duration('1m') },
        },
        mtls: { ...mtlsMode, default: 'require' },
      },
    },
    egress: {
      type: 'object',
      additionalProperties: false,
      required: ['services'],
      properties: {
        host: { type: 'string', default: '127.0.0.1', 'x-expect': 'an IP address to bind (keep it on loopback)' },
        port: { ...port, default: 15001 },
        // A destination that never answers must not hold the backend's call (and a pool connection) for undici's 300 s.
        timeouts: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: { connect: duration('2s'), headers: duration('30s'), body: duration('30s') },
        },
        services: {
          type: 'object',
          'x-expect': 'a map of service name → { url, spiffe_id }',
          propertyNames: { pattern: '^[a-z0-9][a-z0-9.-]*$' },
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'spiffe_id'],
            properties: { url: httpsUrl, spiffe_id: spiffeId },
          },
        },
      },
    },
    tokens: tokensSchema,
    rate_limits: rateLimitsSchema,
    threats: {
      type: 'object',
      additionalProperties: false,
      properties: {
        waf: {
          type: 'object',
          additionalProperties: false,
          'x-expect': 'the waf: waf: { mode: block, paranoia: 1 }',
          properties: {
            mode: { enum: ['block', 'detect'], default: 'block', 'x-expect': '"block" or "detect"' },
            paranoia: { enum: [1, 2, 3], default: 1, 'x-expect': '1, 2 or 3' },
            budget: duration('20ms'),
            on_timeout: { enum: ['block', 'allow'], default: 'block', 'x-expect': '"block" or "allow"' },
            max_entries: positiveInt(10_000, 1_000_000),
            max_depth: positiveInt(32, 1000),
            oversize: { enum: ['refuse', 'allow'], default: 'refuse', 'x-expect': '"refuse" or "allow"' },
            remember_clean: {
              type: 'integer',
              minimum: 0,
              // About 0.55 KiB each at worst (256 two-byte characters, by hand): 34 MiB at the maximum.
              maximum: 65_536,
              default: 4096,
              'x-expect': 'an integer 0–65536 (strings found clean, remembered; 0: none)',
            },
            exclusions: {
              type: 'array',
              default: [],
              items: {
                type: 'object',
                additionalProperties: false,
                'x-expect': 'an exclusion: { route: id, rules: [rule ids], parameters: ["/body/sql"] }',
                properties: {
                  route: { type: 'string', minLength: 1, 'x-expect': 'a route id or operationId' },
                  rules: { type: 'array', items: { type: 'string', minLength: 1, 'x-expect': 'a waf rule id' } },
                  parameters: {
                    type: 'array',
                    items: { type: 'string', pattern: '^/', 'x-expect': 'a parameter path such as "/body/sql" or "/query/q"' },
                  },
                },
              },
            },
          },
        },
        malware: {
          type: 'object',
          additionalProperties: false,
          required: ['clamd'],
          'x-expect': 'in-flight scanning: malware: { clamd: "tcp://127.0.0.1:3310" }',
          properties: {
            clamd: {
              type: 'string',
              pattern: '^(tcp://[^/]+/?|unix:/.+)$',
              'x-expect': 'clamd\'s address: "tcp://127.0.0.1:3310" or "unix:/run/clamav/clamd.ctl"',
            },
            timeout: duration('30s'),
            max_concurrent: positiveInt(16, 1000),
            stream_max_length: size('25MiB'),
            max_files: positiveInt(100, 1000),
            idle_connections: {
              type: 'integer',
              minimum: 0,
              maximum: 1000,
              default: 4,
              'x-expect': 'an integer ≥ 0 (0: a new connection per scan)',
            },
            on_failure: { enum: ['fail-closed', 'fail-open'], default: 'fail-closed', 'x-expect': '"fail-closed" or "fail-open"' },
            mode: { enum: ['block', 'detect'], default: 'block', 'x-expect': '"block" or "detect"' },
            content_types: {
              type: 'array',
              // Every body of a scan route: a list let the sender choose a type outside it (text/plain,
              // application/x-zip-compressed) and the body went to the backend unscanned (adversarial.md 212).
              default: ['*/*'],
              items: {
                type: 'string',
                pattern: '^[a-z0-9.+-]+/([a-z0-9.+-]+|\\*)$|^\\*/\\*$',
                'x-expect': 'a media type such as "application/pdf", "image/*" or "*/*"',
              },
            },
          },
        },
      },
    },
    openapi: {
      type: 'object',
      additionalProperties: false,
      required: ['document'],
      'x-expect': "the service's API: openapi: { document: ./openapi.yaml }",
      properties: {
        document: {
          type: 'string',
          minLength: 1,
          'x-path-or-url': true,
          'x-expect': 'the path or http(s) URL of an OpenAPI 3.0 / 3.1 document',
        },
        allow_public: { type: 'boolean', default: false, 'x-expect': 'true or false' },
        validation: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            mode: { ...validationMode, default: 'enforce' },
            unknown_query: { enum: ['allow', 'refuse'], default: 'allow', 'x-expect': '"allow" or "refuse"' },
            read_only: { enum: ['refuse', 'allow'], default: 'refuse', 'x-expect': '"refuse" or "allow"' },
            responses: { enum: ['off', 'report'], default: 'off', 'x-expect': '"off" or "report"' },
          },
        },
        operations: {
          type: 'object',
          default: {},
          'x-expect': 'a map of operationId → route settings (access, peers, mtls, authn, scopes, rate_limit, limits, validation)',
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            properties: { ...ROUTE_SETTINGS, validation: validationMode },
          },
        },
      },
    },
    routes: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'path'],
        properties: {
          id: {
            type: 'string',
            pattern: '^[A-Za-z0-9_.-]+$',
            'x-expect': 'a route id of letters, digits, ".", "_" or "-"',
          },
          path: {
            type: 'string',
            pattern: '^/',
            'x-expect': 'a path pattern starting with "/", e.g. "/orders/:id" or "/admin/*"',
          },
          methods: { type: 'array', minItems: 1, default: ['*'], items: httpMethod },
          ...ROUTE_SETTINGS,
        },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: logLevel,
        access: { type: 'boolean', default: true, 'x-expect': 'true or false' },
        access_headers: { type: 'boolean', default: false, 'x-expect': 'true or false' },
        // What stdout may hold back while its reader is slower than the sidecar; past it, lines are dropped.
        buffer_bytes: { 'x-size': 262_144, default: '4MiB', 'x-expect': 'a size of at least 256KiB, like "4MiB"' },
      },
    },
    telemetry,
    lifecycle: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { drain_timeout: duration('20s') },
    },
  },
} as const;
