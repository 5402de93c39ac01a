/**
 * The key of everything cached or revoked about a token: SHA-256(issuer ‖ token), hex, of the
 * token's one spelling (an ECDSA-signed JWT has two that verify: lowSSpelling). The token itself is
 * never kept in a cache.
 */
import { hash } from 'node:crypto';
import { lowSSpelling } from './jws-encoding.js';

export function tokenHash(issuer: string, token: string): string {
  // One-shot crypto.hash (Node ≥ 20.12): no Hash object per request, a third of createHash's cost.
  return hash('sha256', `${issuer}\n${lowSSpelling(token)}`, 'hex');
}

/**
 * The last token hashed on each client connection, with its hash. A keep-alive client sends the
 * same token on every request of a connection, and a hash is a native call into OpenSSL: 0.3 µs
 * in a loop, but about 2.4 µs of a loaded sidecar's CPU per request (cold caches; bench/side-profile.js).
 * The token is held only while its connection is open (a WeakMap entry of the socket), as the
 * connection's own request headers hold it; caches keep hashes only.
 * `scope` tells apart what the hash was taken for: the introspecting issuer, or JWT verification
 * (whose issuer the token itself names), so a route of another mode never reuses it.
 */
export class ConnectionTokenHashes {
  private readonly last = new WeakMap<object, { scope: string; token: string; hash: string }>();

  /** The hash recorded for `token` on `connection` under `scope`, if it is the connection's last one. */
  get(connection: object | undefined, scope: string, token: string): string | undefined {
    if (connection === undefined) return undefined;
    const last = this.last.get(connection);
    return last !== undefined && last.token === token && last.scope === scope ? last.hash : undefined;
  }

  set(connection: object | undefined, scope: string, token: string, hash: string): void {
    if (connection === undefined) return;
    const last = this.last.get(connection);
    if (last === undefined) this.last.set(connection, { scope, token, hash });
    else {
      last.scope = scope;
      last.token = token;
      last.hash = hash;
    }
  }
}
