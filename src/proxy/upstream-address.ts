/**
 * Where `upstream.url` points, as undici and node:net take it: `http://host:port` (an origin), or
 * `unix:/path` (a socket, reached as http://localhost). One reading for the request pool, the
 * readiness probe's connection and its TCP check.
 */
export interface UpstreamAddress {
  /** The origin undici is given (`http://localhost` for a socket). */
  readonly origin: string;
  /** The Unix socket's path, for a `unix:` URL. */
  readonly socketPath?: string | undefined;
}

export function upstreamAddressOf(url: string): UpstreamAddress {
  if (url.startsWith('unix:')) return { origin: 'http://localhost', socketPath: url.slice('unix:'.length) };
  return { origin: url.replace(/\/$/, '') };
}
