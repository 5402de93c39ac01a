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
}

export interface InboundListenerConfig {
  host: string;
  port: number;
  tls: TlsFilesConfig;
}

export interface AdminListenerConfig {
  host: string;
  port: number;
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
  headers_timeout: number;
  request_timeout: number;
  idle_timeout: number;
  handshake_timeout: number;
  max_concurrent_streams: number;
  max_connections: number;
  max_requests_per_connection: number;
}

export interface HeadersConfig {
  /** Header names (exact, or a prefix ending in `*`) removed from every request and response. */
  internal: string[];
  /** CIDRs of proxies whose X-Forwarded-* / Forwarded headers are believed. */
  trusted_proxies: string[];
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
    /** `sha256:<hex>` of a root certificate (DER), as an alternative to `bundle`. */
    fingerprint?: string;
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
  services: Record<string, EgressServiceConfig>;
}

export interface RouteConfig {
  id: string;
  path: string;
  methods: string[];
  access?: AccessConfig;
  peers?: PeersConfig;
  mtls?: MtlsMode;
  limits?: { max_body_bytes?: number };
}

export interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  access: boolean;
  access_headers: boolean;
}

export interface SidecarConfig {
  service: { name: string };
  listeners: { inbound: InboundListenerConfig; admin: AdminListenerConfig };
  upstream: UpstreamConfig;
  limits: LimitsConfig;
  headers: HeadersConfig;
  routing: { unmatched: 'refuse' | 'passthrough' };
  access: AccessConfig;
  peers: PeersConfig;
  mesh?: MeshConfig;
  egress?: EgressConfig;
  routes: RouteConfig[];
  log: LogConfig;
  lifecycle: { drain_timeout: number };
}
