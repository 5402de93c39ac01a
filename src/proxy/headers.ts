/**
 * Header hygiene in both directions.
 *
 * Requests: framing checks that stop smuggling shapes the parser let through, hop-by-hop headers
 * (RFC 9110 §7.6.1, including those the Connection header names) and internal headers removed,
 * h2 pseudo-headers mapped to Host, X-Forwarded-For/-Proto/-Host set (incoming ones believed only
 * from trusted proxies). Responses: hop-by-hop and internal headers removed.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { HeadersConfig, UpstreamConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { UpstreamHeaders } from '../pipeline/stage.js';
import { createIpSet, type IpSet } from '../net/ip-set.js';
import { withoutPort } from '../net/client-network.js';
import { repeatedParameter } from '../net/media-type.js';
import { FORWARDING, HOP_BY_HOP, internalHeaderMatcher } from '../net/sidecar-headers.js';

/**
 * What a proxy in front asserts about the caller — its address (set by CDNs and load balancers;
 * read by libraries such as request-ip, and as PHP's HTTP_CLIENT_IP), its TLS certificate (RFC
 * 9440 `Client-Cert`, nginx's and IIS ARR's conventions), the user it authenticated (Apache's
 * `Remote-User`, AWS ALB's `X-Amzn-Oidc-*`, Azure's `X-Ms-Client-Principal*`, IAP's, oauth2-proxy's),
 * any other `X-Forwarded-*` (Spring and Tomcat build URLs from `-Port` and `-Prefix`) and Envoy's
 * `X-Envoy-*`: believed only from trusted proxies, dropped otherwise, or any caller could choose
 * the address a backend logs or limits by, or the certificate or user it believes.
 */
const PROXY_ASSERTED = new Set([
  'x-client-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'cf-connecting-ip',
  'fastly-client-ip',
  'client-cert',
  'client-cert-chain',
  'x-client-cert',
  'x-ssl-cert',
  'x-arr-clientcert',
  'remote-user',
  'x-remote-user',
  // The path prefix the app is mounted at: gunicorn takes SCRIPT_NAME from a header named so and
  // routes on what follows its first occurrence in the path; Flask's ReverseProxied recipe reads
  // X-Script-Name. A caller's own would re-route a checked request (`/public/admin` as `/admin`).
  'script-name',
  'x-script-name',
  // Client addresses too: PHP's HTTP_CLIENT_IP is `Client-IP`; request-ip reads the others.
  'client-ip',
  'x-forwarded',
  'forwarded-for',
  'x-appengine-user-ip',
  'cf-pseudo-ipv4',
  // Certificate verdicts of nginx and HAProxy recipes, not under a prefix below (red team 28).
  'x-client-verify',
  'x-client-dn',
  'x-client-certificate',
  'x-ssl-subject',
  'x-ssl-issuer',
  'x-ssl-verified',
]);
/**
 * Besides the families above: CloudFront's viewer mTLS and address (`CloudFront-Viewer-Cert-*`,
 * `-Address`, documented fixed names), Google Cloud load balancers' mTLS headers as its examples
 * name them (`X-Client-Cert-Spiffe`, `-Chain-Verified`, …) and Cloudflare's (`Cf-Client-Cert-*`):
 * a backend moved from behind one still believes them (red team 28).
 */
const PROXY_ASSERTED_PREFIX =
  /^(?:x-forwarded-|x-ssl-client-|ssl-client-|x-amzn-oidc-|x-amzn-mtls-|x-ms-client-principal|x-goog-authenticated-user-|x-auth-request-|x-envoy-|x-client-cert-|cloudfront-viewer-|cf-client-cert-)/;

function proxyAsserted(name: string): boolean {
  if (PROXY_ASSERTED.has(name)) return true;
  // Every prefix begins with `x`, `s` or `c`: most names (accept, authorization, …) skip the expression.
  const first = name.charCodeAt(0);
  return (first === 0x78 || first === 0x73 || first === 0x63) && PROXY_ASSERTED_PREFIX.test(name);
}

/** Set for the backend by the sidecar (besides FORWARDING); a client's copy is replaced. */
const SET_BY_SIDECAR = new Set(['host', 'x-request-id', 'traceparent', 'tracestate', 'authorization']);

/**
 * CGI and WSGI servers (and some Rack servers) turn both `X-Warden-User` and `X_Warden_User` into
 * `HTTP_X_WARDEN_USER`, so an underscored spelling of a header the sidecar removes or sets would
 * reach such a backend as that header, and one of a header the sidecar reads (a declared header
 * parameter, one the waf inspects) would reach it unvalidated and uninspected. Those spellings are
 * removed, as is the dashed (or mixed) spelling of a header declared with `_` (`X_Report_Scope`):
 * PHP reads whichever comes last. Other names with `_` pass.
 */
function spellsControlled(name: string, rules: HeaderRules): boolean {
  const dashed = name.replaceAll('_', '-');
  const read = rules.readSpellings.get(dashed);
  return (
    (read !== undefined && !read.has(name)) ||
    // CGI's CONTENT_TYPE and CONTENT_LENGTH: `php -S` let `Content_Type` set the one PHP reads.
    dashed.startsWith('content-') ||
    HOP_BY_HOP.has(dashed) ||
    FORWARDING.has(dashed) ||
    proxyAsserted(dashed) ||
    SET_BY_SIDECAR.has(dashed) ||
    rules.tokenHeaders.has(dashed) ||
    rules.isInternal(dashed)
  );
}

/**
 * A name with a character other than a letter, digit, `-` or `_` (names arrive lower-cased). RFC 9110
 * allows `!#$%&'*+.^`|~` too, but lighttpd's CGI/FastCGI mapping folds every such character into
 * `_` and `php -S` folds `.`: `X.Warden.User` reached PHP as HTTP_X_WARDEN_USER, `User.Agent` as the
 * user agent the waf never read. Dropped, as nginx drops them by default (`ignore_invalid_headers`):
 * no client sends one for a reason.
 */
const FOLDED_NAME = /[^a-z0-9_-]/;

/** Fields that must appear once; a second copy is a request the backend may read differently. */
const SINGLETONS = new Set(['host', 'content-length', 'transfer-encoding', 'authorization', 'content-type']);

export interface HeaderRules {
  readonly trustedProxies: IpSet;
  isInternal: (name: string) => boolean;
  readonly upstreamHost: string | undefined;
  /** Headers that carry a caller's token (tokens.sources) or the minted one (mint.header), lower case. */
  readonly tokenHeaders: ReadonlySet<string>;
  /** Whether method and path overrides are refused (overrides.ts). */
  readonly refuseOverrides: boolean;
  /** Headers whose value the plan reads (Plan.headersRead), lower case. */
  readonly headersRead: ReadonlySet<string>;
  /**
   * The same, keyed by the name with `_` read as `-` (as CGI readers fold both into `HTTP_…`): the
   * spellings declared. Another spelling of the name reaches the backend as the header read, unvalidated.
   */
  readonly readSpellings: ReadonlyMap<string, ReadonlySet<string>>;
  /** Read headers declared only with `_` (`x_report_scope`), as their dashed spelling, which is dropped. */
  readonly dashedUnread: ReadonlySet<string>;
  /**
   * `tokens.mint.header` when it is not `authorization`, lower case: the backend's minted token,
   * which egress never carries to another service (nothing there verifies it, and its sidecar
   * passes a header of that name to its own backend). In `authorization` the destination's sidecar
   * takes it as the caller's token and removes it.
   */
  readonly mintHeader: string | undefined;
  /**
   * `tokens.mint.header` (`authorization` included), lower case, when minting: a response header of
   * that name is dropped — a backend echoing its request headers would hand the client the
   * internal token minted for it.
   */
  readonly mintedIn: string | undefined;
}

export function compileHeaderRules(
  headers: HeadersConfig,
  upstream: UpstreamConfig,
  tokenHeaders: ReadonlySet<string> = new Set(),
  headersRead: ReadonlySet<string> = new Set(),
  mintHeader?: string,
): HeaderRules {
  const upstreamHost = upstream.host_header === 'upstream' ? upstreamAuthority(upstream.url) : undefined;
  const readSpellings = new Map<string, Set<string>>();
  for (const name of headersRead) {
    const dashed = name.replaceAll('_', '-');
    readSpellings.set(dashed, (readSpellings.get(dashed) ?? new Set()).add(name));
  }
  const dashedUnread = new Set([...readSpellings].filter(([dashed, spellings]) => !spellings.has(dashed)).map(([dashed]) => dashed));
  return {
    trustedProxies: createIpSet(headers.trusted_proxies),
    upstreamHost,
    tokenHeaders,
    headersRead,
    readSpellings,
    dashedUnread,
    mintHeader: mintHeader === undefined || mintHeader.toLowerCase() === 'authorization' ? undefined : mintHeader.toLowerCase(),
    mintedIn: mintHeader?.toLowerCase(),
    refuseOverrides: headers.overrides === 'refuse',
    isInternal: internalHeaderMatcher(headers.internal),
  };
}

function upstreamAuthority(url: string): string {
  return url.startsWith('unix:') ? 'localhost' : new URL(url).host;
}

/**
 * Framing checks for HTTP/1.1 requests. llhttp already refuses most smuggling shapes; these close
 * the rest and make the refusal explicit: Transfer-Encoding together with Content-Length, any
 * coding but a lone "chunked", a malformed Content-Length, duplicated singleton fields, and a
 * Content-Type parameter given twice (a multipart boundary read two ways).
 */
export function checkFraming(headers: IncomingHttpHeaders, rawHeaders: readonly string[]): WardenError | undefined {
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te !== undefined) {
    if (cl !== undefined) return ambiguous('Content-Length and Transfer-Encoding together', 'framing.cl_te');
    if (te.toLowerCase() !== 'chunked') return ambiguous('Transfer-Encoding other than "chunked"', 'framing.te_coding');
  }
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) return ambiguous('a Content-Length that is not a single number', 'framing.cl_value');
  const connection = headers.connection;
  if (connection !== undefined) {
    const named = checkedFieldNamed(connection);
    if (named !== undefined)
      return ambiguous(`a Connection header that names ${named}, a field the sidecar checks`, 'framing.connection_names');
  }
  const ct = headers['content-type'];
  const repeated = ct === undefined ? undefined : repeatedParameter(ct);
  if (repeated !== undefined)
    return ambiguous(`a Content-Type that gives its ${repeated} parameter twice`, 'framing.content_type_parameter');
  // Node keeps the first of duplicated singletons silently; refuse instead of guessing.
  if (rawHeaders.length / 2 > countKeys(headers)) {
    const seen = new Set<string>();
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      if (!SINGLETONS.has(name)) continue;
      if (seen.has(name)) return ambiguous(`more than one ${name} header`, `framing.duplicate_${name.replace('-', '_')}`);
      seen.add(name);
    }
  }
  return undefined;
}

/**
 * A proxy removes the fields a Connection header names (RFC 9110 §7.6.1). Naming one the sidecar
 * decides on — the body's type, length or coding, credentials, the target host — would have the
 * backend get a request other than the one checked (a JSON body validated as JSON arriving untyped,
 * which Rack and PHP then read as a form), so such a request is refused, not trimmed.
 */
const CHECKED_FIELDS = new Set(['host', 'authorization', 'cookie']);

function checkedFieldNamed(connection: string): string | undefined {
  // The usual values name no field at all.
  if (connection.length <= 10 && /^(?:keep-alive|close)$/i.test(connection)) return undefined;
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name.startsWith('content-') || CHECKED_FIELDS.has(name)) return name;
  }
  return undefined;
}

/**
 * Removes from the request, before any stage reads it, the fields its Connection header names (the
 * ones a proxy removes: RFC 9110 §7.6.1), so that stages check what the backend gets. They were
 * removed only from what went upstream: an OpenAPI `X-Tenant` header parameter (required) was
 * validated, then dropped — the backend got none. Called once the framing checks have passed (they
 * read Transfer-Encoding as sent). Kept: fields whose naming is refused (checkFraming), the
 * framing itself, and the forwarding fields, which the sidecar reads for the client's address
 * behind trusted proxies and then sets itself (removed here, a client named its own X-Forwarded-For
 * and was taken for the proxy: out of `access.clients.deny`). HTTP/1.1 only: h2 has no Connection.
 */
export function dropConnectionNamed(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection === undefined) return;
  const value = String(connection);
  if (value.length <= 10 && /^(?:keep-alive|close)$/i.test(value)) return;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === 'connection' || name.startsWith('content-') || CHECKED_FIELDS.has(name)) continue;
    if (name === 'transfer-encoding' || FORWARDING.has(name)) continue;
    // Rarely taken: a delete turns the object into a dictionary (see removeField).
    if (Object.hasOwn(headers, name)) delete headers[name];
  }
}

function ambiguous(what: string, rule: string): WardenError {
  return new WardenError('ERR_REQUEST_AMBIGUOUS', { detail: `The request has ${what}.`, rule });
}

function countKeys(headers: IncomingHttpHeaders): number {
  let n = 0;
  for (const _ in headers) n++;
  return n;
}

/**
 * The client's address for policy: the socket peer, or — when the peer is a trusted proxy — the
 * nearest address in X-Forwarded-For that is not itself a trusted proxy, without the port or
 * brackets a proxy may write around it. A hop that is no IP address is not believed: the client is
 * UNKNOWN_CLIENT then (a 6 000-character hop went whole into every event and access line, and
 * each made-up string was a rate-limit bucket of its own); and with the port kept (Azure
 * Application Gateway writes `ip:port`) no `access.clients.deny` entry ever matched and each
 * source port was a bucket (docs/adversarial.md 275).
 */
export function clientAddressOf(socketAddress: string, headers: IncomingHttpHeaders, rules: HeaderRules): string {
  const xff = headers['x-forwarded-for'];
  if (xff === undefined || !rules.trustedProxies.has(socketAddress)) return socketAddress;
  const hops = String(xff).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim();
    if (!hop) continue;
    // A trusted proxy's own hop may carry a port too (`10.2.2.2:443`, `[::ffff:10.3.3.3]:80`): read
    // raw, it was taken for the client, and every client behind it shared one bucket.
    // A zone (`fe80::1%eth0`) names an interface of the proxy's, not the client: 6 KB of it passed isIP.
    const address = withoutZone(withoutPort(hop));
    if (rules.trustedProxies.has(address)) continue;
    return isIP(address) !== 0 ? address : UNKNOWN_CLIENT;
  }
  return socketAddress;
}

/**
 * The client behind a trusted proxy that wrote no address for it (`unknown`, nginx's `unix:`, an
 * obfuscated `_hidden`, junk): matches no `access.clients` entry, allow or deny, and such clients
 * share one rate-limit bucket. Taken for the proxy's own address, they passed an allow list naming
 * the proxies' range (review of docs/adversarial.md 275).
 */
export const UNKNOWN_CLIENT = 'unknown';

function withoutZone(address: string): string {
  const zone = address.indexOf('%');
  return zone === -1 ? address : address.slice(0, zone);
}

/** The header set sent to the backend. */
export function upstreamRequestHeaders(
  headers: IncomingHttpHeaders,
  socketAddress: string,
  authority: string | undefined,
  rules: HeaderRules,
): UpstreamHeaders {
  const out: UpstreamHeaders = {};
  const trusted = rules.trustedProxies.has(socketAddress);
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a /* : pseudo-header */ || name === 'host') continue;
    if (HOP_BY_HOP.has(name) || FORWARDING.has(name) || rules.isInternal(name)) continue;
    if (!trusted && proxyAsserted(name)) continue;
    if (name.includes('_') ? spellsControlled(name, rules) : rules.dashedUnread.has(name)) continue;
    if (FOLDED_NAME.test(name)) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  removeConnectionNamed(out, headers.connection);

  const xff = headers['x-forwarded-for'];
  out['x-forwarded-for'] = trusted && xff !== undefined ? `${String(xff)}, ${socketAddress}` : socketAddress;
  const proto = headers['x-forwarded-proto'];
  out['x-forwarded-proto'] = trusted && typeof proto === 'string' ? proto : 'https';
  const fwdHost = headers['x-forwarded-host'];
  if (trusted && typeof fwdHost === 'string') out['x-forwarded-host'] = fwdHost;
  else if (authority !== undefined) out['x-forwarded-host'] = authority;
  if (trusted) {
    const forwarded = headers.forwarded;
    if (forwarded !== undefined) out.forwarded = forwarded;
  }
  const host = rules.upstreamHost ?? authority;
  if (host !== undefined) out.host = host;
  return out;
}

/** Response headers from the backend, minus hop-by-hop and internal ones. */
export function downstreamResponseHeaders(headers: IncomingHttpHeaders, rules: HeaderRules): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || rules.isInternal(name) || name === rules.mintedIn) continue;
    // `x_warden_user` is `X-Warden-User` to a CGI-style reader (spellsControlled): internal either
    // way; so is `x_internal_token` for a minted token in `x-internal-token`.
    if (name.includes('_')) {
      const dashed = name.replaceAll('_', '-');
      if (rules.isInternal(dashed) || dashed === rules.mintedIn) continue;
    }
    out[name] = headers[name];
  }
  removeConnectionNamed(out, headers.connection);
  return out;
}

/**
 * The backend's outgoing request through the egress listener: hop-by-hop and internal headers never
 * leave (an internal token must not reach another service), and no Host: the connection to the
 * destination sets its own. Egress is the first hop and the backend no proxy, so what only a proxy
 * asserts — forwarding fields, the caller's address, certificate or user (FORWARDING,
 * proxyAsserted), in any spelling with `_` — is dropped too: a destination whose trusted_proxies
 * cover the calling sidecars would believe them.
 */
export function egressRequestHeaders(headers: IncomingHttpHeaders, rules: HeaderRules): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (name === 'host' || HOP_BY_HOP.has(name) || rules.isInternal(name) || FORWARDING.has(name) || proxyAsserted(name)) continue;
    if (name === rules.mintHeader || FOLDED_NAME.test(name)) continue;
    if (name.includes('_')) {
      const dashed = name.replaceAll('_', '-');
      if (rules.isInternal(dashed) || FORWARDING.has(dashed) || proxyAsserted(dashed) || dashed === rules.mintHeader) continue;
    }
    out[name] = headers[name];
  }
  removeConnectionNamed(out, headers.connection);
  return out;
}

/** Removes the fields a Connection header names (RFC 9110 §7.6.1). */
function removeConnectionNamed(out: Record<string, unknown>, connection: string | string[] | undefined): void {
  if (connection === undefined) return;
  const value = String(connection);
  // Most values name one field (keep-alive, close): nothing to split.
  if (!value.includes(',')) return removeField(out, value);
  for (const token of value.split(',')) removeField(out, token);
}

/**
 * Deletes a field only when it is there: a `delete` turns the object into a dictionary, slower for
 * every later write and for undici's walk over it. The fields named are mostly hop-by-hop ones,
 * removed already.
 */
function removeField(out: Record<string, unknown>, token: string): void {
  const name = token.trim().toLowerCase();
  if (name in out) delete out[name];
}

/**
 * Fields that describe the body as encoded (its Content-Encoding applied): the digests of RFC 1864,
 * RFC 3230 and RFC 9530 are all taken over the coded bytes. Dropped with the coding, as they would
 * describe bytes the backend is not sent; a backend that verifies them refused a sound request.
 */
const ENCODED_BODY_FIELDS = ['content-encoding', 'content-md5', 'digest', 'content-digest', 'repr-digest'] as const;

/**
 * The upstream headers for a body forwarded decoded (the bytes the stages read, not the bytes sent):
 * no Content-Encoding nor the digests of the coded bytes, and its own length. A backend that does
 * not undo a request's coding (PHP, nginx with FastCGI, most) read the bytes as sent, and gzip's
 * FNAME and FCOMMENT or a br metadata block, which decoders skip, held a form of their own there.
 */
export function describeDecodedBody(out: UpstreamHeaders, length: number): void {
  // Rarely taken: a delete turns the object into a dictionary (see removeField).
  for (const name of ENCODED_BODY_FIELDS) if (name in out) delete out[name];
  out['content-length'] = String(length);
}
