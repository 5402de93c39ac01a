/**
 * Request headers the sidecar never passes to the backend as the caller sent them: hop-by-hop ones
 * are removed, forwarding ones set from what the sidecar saw. Shared by header hygiene
 * (proxy/headers.ts) and the OpenAPI loader, which refuses an apiKey scheme in one of them: such a
 * key could never be met.
 */
/** Never forwarded in either direction. `expect` is answered by the sidecar itself. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'expect',
]);

/**
 * Set by the sidecar from what it saw, never copied from an untrusted client. The client
 * certificate header is not believed even from trusted proxies: only the TLS layer knows the
 * caller (the peer-authz stage sets it).
 */
export const FORWARDING = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-real-ip',
  'x-forwarded-client-cert',
]);

/**
 * Why the sidecar never passes header `name` (any case, `_` for `-`: CGI servers read both alike,
 * and the sidecar removes those spellings too) to the backend as sent; undefined if it may.
 * `isInternal`: the configuration's headers.internal.
 */
export function neverPassedAsSent(name: string, isInternal: (lowerCaseName: string) => boolean): string | undefined {
  const dashed = name.toLowerCase().replaceAll('_', '-');
  if (HOP_BY_HOP.has(dashed)) return 'a hop-by-hop header, which the sidecar never forwards';
  if (FORWARDING.has(dashed)) return 'a forwarding header, which the sidecar sets itself from what it saw';
  if (isInternal(dashed)) return 'an internal header (headers.internal), which the sidecar removes';
  return undefined;
}

/** headers.internal as a test of a lower-case name: exact names, and prefixes ending in `*`. */
export function internalHeaderMatcher(internal: readonly string[]): (lowerCaseName: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const entry of internal) {
    const name = entry.toLowerCase();
    if (name.endsWith('*')) prefixes.push(name.slice(0, -1));
    else exact.add(name);
  }
  if (prefixes.length === 0) return (name) => exact.has(name);
  return (name) => {
    if (exact.has(name)) return true;
    for (const p of prefixes) if (name.startsWith(p)) return true;
    return false;
  };
}
