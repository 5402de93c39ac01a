/**
 * The fields a proxy in front asserts about the caller, and which of them an operator may have
 * Warden believe from its trusted proxies (headers.trusted_proxy_headers). Shared by header hygiene
 * (proxy/headers.ts) and the configuration's checks.
 */

/**
 * What a proxy in front asserts about the caller — its address (set by CDNs and load balancers;
 * read by libraries such as request-ip, and as PHP's HTTP_CLIENT_IP), its TLS certificate (RFC
 * 9440 `Client-Cert`, nginx's and IIS ARR's conventions), the user it authenticated (Apache's
 * `Remote-User`, AWS ALB's `X-Amzn-Oidc-*`, Azure's `X-Ms-Client-Principal*`, IAP's, oauth2-proxy's),
 * any other `X-Forwarded-*` (Spring and Tomcat build URLs from `-Port` and `-Prefix`) and Envoy's
 * `X-Envoy-*`: dropped, or any caller could choose the address a backend logs or limits by, or the
 * certificate or user it believes. Believed only from a trusted proxy that headers.trusted_proxy_headers
 * says sets them: the usual nginx, HAProxy, Caddy and Apache configurations neither set nor strip
 * them, so a client behind such a front wrote its own (red team 28).
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
  // The scheme and host under other names than X-Forwarded-*: Tornado (`xheaders=True`) and Jupyter
  // Server read X-Scheme before X-Forwarded-Proto, CodeIgniter's is_https() Front-End-Https, and
  // URL-building helpers X-Url-Scheme, X-Host, X-Original-Host and X-Http-Host. A caller's own
  // reopened what replacing X-Forwarded-Proto/-Host closed: a force-HTTPS 301 a caching front
  // stores for everyone, links to the host it chose (review1 F2).
  'x-scheme',
  'x-url-scheme',
  'front-end-https',
  'x-host',
  'x-original-host',
  'x-http-host',
]);
/**
 * Besides the families above: CloudFront's viewer mTLS and address (`CloudFront-Viewer-Cert-*`,
 * `-Address`, documented fixed names), Google Cloud load balancers' mTLS headers as its examples
 * name them (`X-Client-Cert-Spiffe`, `-Chain-Verified`, …) and Cloudflare's (`Cf-Client-Cert-*`):
 * a backend moved from behind one still believes them (red team 28).
 */
const PROXY_ASSERTED_PREFIX =
  /^(?:x-forwarded-|x-ssl-client-|ssl-client-|x-amzn-oidc-|x-amzn-mtls-|x-ms-client-principal|x-goog-authenticated-user-|x-auth-request-|x-envoy-|x-client-cert-|cloudfront-viewer-|cf-client-cert-)/;

export function proxyAsserted(name: string): boolean {
  if (PROXY_ASSERTED.has(name)) return true;
  // Every prefix begins with `x`, `s` or `c`: most names (accept, authorization, …) skip the expression.
  const first = name.charCodeAt(0);
  return (first === 0x78 || first === 0x73 || first === 0x63) && PROXY_ASSERTED_PREFIX.test(name);
}

/**
 * Why `entry` cannot be a headers.trusted_proxy_headers entry, or undefined when it can: `forwarded`,
 * `x-request-id`, `x-forwarded-host`, `x-forwarded-proto`, any other proxy-asserted name, or `<prefix>*` whose
 * prefix lies within a proxy-asserted family (`x-amzn-oidc-*`). Any other name is refused, not ignored: Warden passes it from anyone already,
 * and a misspelt name would leave the field dropped with nothing said.
 */
export function trustedProxyHeaderProblem(entry: string): string | undefined {
  if (entry === 'forwarded' || entry === 'x-request-id') return undefined;
  if (entry === 'x-real-ip') return `"${entry}" is set by Warden to the client address it computed; remove it`;
  if (entry === 'x-forwarded-client-cert')
    return `"${entry}" is never believed: Warden sets it from the caller's verified certificate; remove it`;
  // The one forwarding field not listable: its chain is always walked for the client. X-Forwarded-Host
  // and -Proto are believed only when listed (headers.ts), and pass as proxy-asserted names below.
  if (entry === 'x-forwarded-for') return `"${entry}" is always believed from trusted proxies; remove it`;
  const prefix = entry.endsWith('*') ? entry.slice(0, -1) : undefined;
  if (prefix === undefined ? proxyAsserted(entry) : prefix !== '' && PROXY_ASSERTED_PREFIX.test(prefix)) return undefined;
  return prefix === undefined
    ? `"${entry}" is no field a proxy asserts (Warden passes it anyway); list only those a trusted proxy sets, e.g. cf-connecting-ip, remote-user, forwarded`
    : `"${entry}" is no prefix of a family of proxy-asserted fields; use one such as "x-amzn-oidc-*", "x-auth-request-*", or list the names`;
}
