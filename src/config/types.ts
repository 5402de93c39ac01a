/**
 * The validated, normalised shape of sidecar.yaml. Keys keep the file's snake_case so one concept has
 * one name in the file, the code and the docs. Durations are milliseconds and sizes are bytes here,
 * whatever unit the file used ("10s", "16KiB").
 */

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';
export type ClientCertificateMode = 'none' | 'request' | 'require';

export interface TlsFilesConfig {
  /** Certificate and key files; absent when `mesh` provides the workload certificate. */
  cert?: string;
  key?: string;
  /** Passphrase of an encrypted key (use ${file:...} or ${ENV} for it). */
  passphrase?: string;
  min_version: TlsVersion;
  client_certificates: ClientCertificateMode;
  /** PEM bundle of CAs that client certificates must chain to (required for request/require). */
  client_ca?: string;
  /** CRLs of client_ca's CAs: a listed certificate is refused (src/net/client-crl.ts). */
  client_crl?: string;
}

export interface InboundListenerConfig {
  host: string;
  port: number;
  tls: TlsFilesConfig;
}

export interface AdminListenerConfig {
  host: string;
  port: number;
  /** Host names served besides localhost and IP addresses (DNS rebinding: docs/proxy.md). */
  hosts: string[];
}

export interface UpstreamConfig {
  /** `http://host:port` or `unix:/path/to.sock`. */
  url: string;
  connections: number;
  host_header: 'preserve' | 'upstream';
  keep_alive: number;
  timeouts: { connect: number; headers: number; body: number };
  /** Path probed by /readyz; without it /readyz checks that a TCP connection opens. */
  health_path?: string;
}

export interface LimitsConfig {
  max_header_bytes: number;
  max_header_count: number;
  max_body_bytes: number;
  /** A coded body decoded past 64 KiB may be at most this many times its size as sent (content-coding.ts). */
  max_decoded_ratio: number;
  /** Fields a form (or untyped) body read by the stages may hold (form-field-count.ts). */
  max_form_fields: number;
  headers_timeout: number;
  request_timeout: number;
  idle_timeout: number;
  /** A response the client stops reading is cut after this long without progress (slow read). */
  send_timeout: number;
  handshake_timeout: number;
  /**
   * Failed TLS handshakes per client network (an IPv4 address, an IPv6 /64): `burst` in a row, then
   * one per `per` ms; beyond, the network's new connections are closed before any TLS processing
   * (handshake-admission.ts). burst 0 = off.
   */
  handshake_failures: { burst: number; per: number };
  max_concurrent_streams: number;
  max_connections: number;
  max_requests_per_connection: number;
  /** HTTP/1.1 requests of one connection inside the sidecar at once; later pipelined ones wait (h1-connection.ts). */
  max_pipelined_requests: number;
  /** Requests inside the sidecar at once (all connections); beyond it, 503 at once. 0 = unlimited. */
  max_in_flight: number;
  /** Request bodies held in memory at once, over all requests; beyond it 503 (body-budget.ts). */
  max_buffered_bytes: number;
  /** A body held for a streaming stage (malware scan) spills to a temp file beyond this. */
  body_memory_bytes: number;
  /** V8's old-generation growth factor (heap-growth.ts); 'auto': V8's own. */
  heap_growth: number | 'auto';
  /** Where spilled bodies go (unlinked at once; default: the OS temp dir). */
  spool_dir?: string;
}

export interface HeadersConfig {
  /** Header names (exact, or a prefix ending in `*`) removed from every request and response. */
  internal: string[];
  /** CIDRs of proxies whose X-Forwarded-For/-Proto/-Host headers are believed. */
  trusted_proxies: string[];
  /**
   * Proxy-asserted fields (and `forwarded`) also believed from those proxies, lower case, exact or
   * a prefix ending in `*` (net/proxy-asserted.ts); any other is dropped from them too.
   */
  trusted_proxy_headers: string[];
  /** Method and path overrides (X-HTTP-Method-Override, X-Original-URL, ?_method=): refused, or forwarded. */
  overrides: 'refuse' | 'forward';
}

export interface AccessConfig {
  action: 'allow' | 'deny';
  clients: { allow: string[]; deny: string[] };
}

/** Which callers (SPIFFE IDs, exact or ending in `/*`) a route admits; empty = any verified peer. */
export interface PeersConfig {
  allow: string[];
}

export type MtlsMode = 'require' | 'optional';

export interface MeshConfig {
  /** This workload's identity, `spiffe://<trust-domain>/ns/<ns>/sa/<name>`. */
  spiffe_id: string;
  /** DNS names to put in the certificate besides the SPIFFE ID (must be granted by the token). */
  dns_names: string[];
  ca: {
    /** `https://host:port` of the Warden CA. */
    url: string;
    /** PEM file of root(s) trusted for the first contact with the CA. */
    bundle?: string;
    /** `sha256:<hex>` of a root certificate (DER), or a list of them (a root rotation), as an alternative to `bundle`. */
    fingerprint?: string | string[];
    timeout: number;
  };
  /** One-time bootstrap token (use ${ENV} or ${file:…}); needed only while state_dir holds no credentials. */
  bootstrap_token?: string;
  /** Where the key, certificate, chain, bundle and CRL are kept (key 0600). */
  state_dir: string;
  /** Renew when this fraction of the lifetime has passed (± jitter). */
  renew_at: number;
  renew_jitter: number;
  /** Upper bound of the retry backoff while the CA is unreachable. */
  max_backoff: number;
  refresh: { bundle: number; crl: number };
  /** Inbound policy: client certificates required on every route, or only where a route says so. */
  mtls: MtlsMode;
}

export interface EgressServiceConfig {
  /** `https://host:port` of the destination sidecar. */
  url: string;
  /** SPIFFE ID the destination must present. */
  spiffe_id: string;
}

export interface EgressConfig {
  host: string;
  port: number;
  /** Milliseconds: TCP + TLS to the destination, its response headers, a pause in its response body. */
  timeouts: { connect: number; headers: number; body: number };
  services: Record<string, EgressServiceConfig>;
}

/** Where a caller's token is read from (the first source present wins; two present is malformed). */
export type TokenSourceConfig =
  { from: 'authorization' } | { from: 'header'; name: string } | { from: 'cookie'; name: string } | { from: 'query'; name: string };

export type IntrospectionAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export interface IssuerConfig {
  /** Short name used in events and metrics. */
  id: string;
  /** The issuer identifier (`iss`), exactly as the IdP writes it. */
  issuer: string;
  /** Fetch `<issuer>/.well-known/openid-configuration` (then RFC 8414's oauth-authorization-server). */
  discovery: boolean;
  /** Overrides the discovered jwks_uri. */
  jwks_uri?: string;
  /** Accepted `aud` values (any of); empty = audience not checked (refused by the loader unless allow_any_audience). */
  audience: string[];
  allow_any_audience: boolean;
  jwt: {
    algorithms: string[];
    /** Required JOSE `typ` (e.g. "at+jwt", RFC 9068); absent = not checked. */
    typ?: string;
    /**
     * With `typ` unset: an untyped JWT (no `typ`, or `JWT`) must name its client (`client_id`,
     * `azp`, `cid`, `appid`), as access tokens do and OIDC ID tokens do not.
     */
    require_client: boolean;
  };
  introspection?: {
    /** Overrides the discovered introspection_endpoint. */
    endpoint?: string;
    /** Overrides the discovered revocation_endpoint (used by the admin revoke API). */
    revocation_endpoint?: string;
    client_id: string;
    auth_method: IntrospectionAuthMethod;
    client_secret?: string;
    /** PKCS#8 PEM file of the private_key_jwt key (EC P-256 / RSA). */
    private_key?: string;
    private_key_alg: string;
    private_key_kid?: string;
    token_type_hint?: string;
    /** Accepted `token_type` values in the introspection answer; empty = any but a refresh or ID token's (checkPrincipal). */
    token_types: string[];
  };
}

export interface TokensConfig {
  sources: TokenSourceConfig[];
  issuers: IssuerConfig[];
  /** Clock skew allowed on exp / nbf / iat. */
  leeway: number;
  max_token_bytes: number;
  idp: {
    timeouts: { connect: number; response: number };
    /** Consecutive failures that open the circuit, and how long it stays open. */
    breaker: { failures: number; open_for: number };
    /** After the cache's freshness ends, how long a still-unexpired result may be served while the IdP is down. */
    grace: number;
    /** Concurrent calls to one IdP; further misses wait. */
    max_concurrent: number;
  };
  cache: {
    max_entries: number;
    max_bytes: number;
    /** Upper bound of an introspection result's life in the cache (it never outlives the token's exp). */
    max_ttl: number;
    /** How long an inactive / invalid answer is remembered (0 = never). */
    negative_ttl: number;
    negative_max_entries: number;
  };
  shared?: {
    /** `redis://host:port[/db]`. */
    redis: string;
    /** Key prefix; absent = `warden:<service.name>:`. */
    prefix?: string;
    /** No replica trusts an introspection result older than this; revocations known to one replica reach all at once. */
    revocation_lag: number;
    /** How often each replica writes the revocations it holds back where Redis has no mark (evicted, refused, restarted empty). */
    write_back: number;
    /** The HMAC key of what the replicas store; absent = derived from the introspection client credentials. */
    key?: string;
  };
  mint: {
    enabled: boolean;
    /** `iss` of minted tokens; default the mesh SPIFFE ID, else `urn:warden:<service.name>`. */
    issuer?: string;
    /** `aud` of minted tokens; default service.name. */
    audience?: string;
    /** Header the backend reads the token from; `authorization` carries `Bearer <jwt>`, others the bare JWT. */
    header: string;
    ttl: number;
    /** The longest minted token forwarded; a longer one is refused (431 ERR_MINTED_TOKEN_TOO_LARGE). */
    max_bytes: number;
    /** Minted claim → source claim (introspection answer or JWT payload). */
    claims: Record<string, string>;
    key_rotation: number;
    /** Also serve the JWKS on the inbound listener at this path (for other services); absent = admin only. */
    jwks_path?: string;
  };
  /** DPoP proofs (RFC 9449) for DPoP-bound tokens (`cnf.jkt`). */
  dpop: {
    /** How long after its `iat` a proof is accepted (and its `jti` remembered). */
    max_age: number;
    /** How far ahead of this clock a proof's `iat` may be. */
    clock_skew: number;
    /** Accepted proof algorithms (asymmetric only). */
    algorithms: string[];
    /** Proofs remembered for replay detection; when full, new proofs get 503 until old ones age out. */
    replay_cache_entries: number;
    /** Live proofs one caller (subject, else client) may hold; unset: an eighth of the cache, at least 1000, at most half. */
    replay_entries_per_caller?: number | undefined;
  };
  /** Route defaults. */
  authn: RouteAuthnConfig;
}

export type AuthnMode = 'auto' | 'jwt' | 'introspect' | 'off';

export interface RouteAuthnConfig {
  /** auto: a token shaped like a JWS is verified locally, any other is introspected. */
  mode: AuthnMode;
  /** A request without any token passes (unauthenticated); a bad token is still refused. */
  optional: boolean;
  /** Issuer ids accepted on the route; empty = all. */
  issuers: string[];
}

export interface ScopesConfig {
  all_of: string[];
  any_of: string[];
}

/** A token bucket: `rate` tokens per `per` ms refill it, up to `burst`; a request takes `cost`. */
export interface RateLimitConfig {
  rate: number;
  /** ms; default 1 s (a route's own bucket may leave it out). */
  per?: number;
  /** Default: rate. */
  burst?: number;
  /** Default: 1. */
  cost?: number;
}

export type RateLimitKey = 'peer' | 'client_id' | 'sub' | 'ip';

export interface RateLimitsConfig {
  store: 'memory' | 'redis';
  redis?: string;
  /** Redis key prefix; absent = "warden:rl:<service.name>:" (rateLimitPrefixOf). */
  prefix?: string;
  /** Redis unreachable: limit with this sidecar's memory (and raise an event), or refuse with 503. */
  on_store_failure: 'fail-open' | 'fail-closed';
  /** Which identity keys a client, first available wins. */
  key: RateLimitKey[];
  /** Applies to routes without their own `rate_limit`; absent = no limit. */
  default?: RateLimitConfig;
  /** Bound on the keys the memory store keeps. */
  max_keys: number;
}

export interface RouteConfig {
  id: string;
  path: string;
  methods: string[];
  access?: AccessConfig;
  peers?: PeersConfig;
  mtls?: MtlsMode;
  limits?: { max_body_bytes?: number };
  authn?: Partial<RouteAuthnConfig>;
  scopes?: ScopesConfig;
  /** This route's bucket, or `false` for none. */
  rate_limit?: RateLimitConfig | false;
  /** Scan uploads on this route (needs threats.malware). */
  malware_scan?: boolean;
  /** With threats.waf: false turns the waf off on this route. */
  waf?: boolean;
}

export interface MalwareConfig {
  /** `tcp://host:port` or `unix:/path/clamd.sock`. */
  clamd: string;
  timeout: number;
  max_concurrent: number;
  /** clamd's StreamMaxLength: a longer body or file part fails as too_large without being sent. */
  stream_max_length: number;
  /** The most files and text fields of one multipart upload scanned (each is a clamd scan); more: 422 unscannable. */
  max_files: number;
  /** Idle IDSESSION connections kept open to clamd. */
  idle_connections: number;
  on_failure: 'fail-closed' | 'fail-open';
  mode: 'block' | 'detect';
  /** Content types scanned on routes with malware_scan: true: exact, "type/" + "*", or "*" + "/" + "*". */
  content_types: string[];
}

export interface WafConfig {
  mode: 'block' | 'detect';
  /** 1: clear attacks, few false positives; 2 and 3 add broader rules. */
  paranoia: 1 | 2 | 3;
  /** libddwaf's wall-clock budget per inspection (all its runs for one request part), in ms. */
  budget: number;
  on_timeout: 'block' | 'allow';
  /** Inputs beyond these are refused (oversize: refuse) or let through uninspected (allow). */
  max_entries: number;
  max_depth: number;
  oversize: 'refuse' | 'allow';
  /** Strings libddwaf found clean, remembered and not inspected again (0: none; src/threats/waf-clean-strings.ts). */
  remember_clean: number;
  /** Known false positives: rules off (everywhere, or on a route), parameters not inspected on a route. */
  exclusions: { route?: string; rules?: string[]; parameters?: string[] }[];
}

export interface OpenApiConfig {
  /** File (resolved against sidecar.yaml's folder) or http(s) URL of the OpenAPI 3.0 / 3.1 document. */
  document: string;
  /** Operations the document declares public (`security: []`) need no token; false: they get the default authn. */
  allow_public: boolean;
  validation: {
    /** enforce: refuse with 400 / 415; report: forward and raise warden.input.invalid; off. */
    mode: 'enforce' | 'report' | 'off';
    /** Query parameters the operation does not declare: allowed, or refused (400). */
    unknown_query: 'allow' | 'refuse';
    /** Request body properties the document marks readOnly: refused (400), or allowed. */
    read_only: 'refuse' | 'allow';
    /** Backend responses against the document: off, or report (warden.response.invalid; never changes the response). */
    responses: 'off' | 'report';
  };
  /** Per-operation settings by operationId (the same keys as a route, without id, path and methods, plus `validation`). */
  operations: Record<string, Omit<RouteConfig, 'id' | 'path' | 'methods'> & { validation?: 'enforce' | 'report' | 'off' }>;
}

/** OTLP export (docs/observability.md); each key overrides its OTEL_* variable. */
export interface OtlpConfig {
  /** Base URL: /v1/traces, /v1/logs and /v1/metrics are added (OTEL_EXPORTER_OTLP_ENDPOINT). */
  endpoint?: string;
  protocol?: 'http/protobuf' | 'http/json';
  headers?: Record<string, string>;
  /** Share of new traces kept (callers' sampling decisions are honoured). */
  sampling_ratio?: number;
  /**
   * Whose trace context (traceparent, tracestate, baggage) a request joins: anyone's (default), only
   * callers with a verified client certificate, or nobody's. An untrusted caller's starts a new
   * trace: it can neither choose the sampling (flood the collector) nor graft spans onto a trace.
   */
  trust_trace_context?: 'all' | 'peers' | 'none';
  /** Batches leave at least this often (ms); metrics are exported at this interval too. */
  export_interval?: number;
  /** Per export request (ms). */
  timeout?: number;
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  access: boolean;
  access_headers: boolean;
  /** Bytes of log lines stdout may hold back before it drops lines (docs/proxy.md § Logs). */
  buffer_bytes: number;
}

export interface SidecarConfig {
  service: { name: string };
  listeners: { inbound: InboundListenerConfig; admin: AdminListenerConfig };
  upstream: UpstreamConfig;
  limits: LimitsConfig;
  headers: HeadersConfig;
  routing: {
    unmatched: 'refuse' | 'passthrough';
    /** An exact CORS preflight for a routed method: refused as any OPTIONS (405), or forwarded without authn (docs/proxy.md). */
    cors_preflight: 'refuse' | 'forward';
  };
  access: AccessConfig;
  peers: PeersConfig;
  mesh?: MeshConfig;
  egress?: EgressConfig;
  tokens?: TokensConfig;
  rate_limits: RateLimitsConfig;
  openapi?: OpenApiConfig;
  threats?: { malware?: MalwareConfig; waf?: WafConfig };
  routes: RouteConfig[];
  log: LogConfig;
  telemetry: { otlp?: OtlpConfig };
  lifecycle: { drain_timeout: number };
}
