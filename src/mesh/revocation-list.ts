/**
 * The serials a CRL revokes, for a Set lookup per connection and per request.
 *
 * Revocation is checked here rather than by OpenSSL (`tls` `crl` option): Node turns on
 * CRL_CHECK_ALL, which wants a fresh CRL for every CA in the chain, root included, and fails *every*
 * handshake once a CRL's nextUpdate passes — a CA outage longer than nextUpdate would take the
 * whole mesh down. Checking ourselves keeps the last verified CRL in force and says when it is
 * stale (src/mesh/identity.ts: a log line, an event, `warden_crl_stale_seconds` and /readyz).
 *
 * Until a CRL is in force (none persisted, a damaged one, and the CA not reached yet) nothing says
 * who is revoked: `inForce` is false and peer-authz refuses mesh peers (503) rather than serve them
 * unchecked. One boolean read per request.
 */
import { canonicalSerial } from '../net/serial.js';
import type { CrlView } from '../net/crl-reader.js';

export interface RevocationList {
  /** Serial as hex (any case, leading zeros ignored). */
  isRevoked(serialHex: string): boolean;
  /** Replaces the list with the serials of a CRL whose signature the caller has verified. */
  update(crl: CrlView): void;
  readonly size: number;
  /** A verified CRL is in force (persisted by an earlier run, or fetched): false until one is. */
  readonly inForce: boolean;
  /** When the CRL in force says a newer one is due (undefined before the first one). */
  readonly nextUpdate: Date | undefined;
  /** The CRL number of the CRL in force, when it has one. */
  readonly number: bigint | undefined;
}

export function createRevocationList(): RevocationList {
  let serials = new Set<string>();
  let inForce = false;
  let nextUpdate: Date | undefined;
  let number: bigint | undefined;
  return {
    isRevoked(serialHex) {
      return serials.size > 0 && serials.has(canonicalSerial(serialHex));
    },
    update(crl) {
      serials = new Set(crl.serials);
      nextUpdate = crl.nextUpdate;
      number = crl.number;
      inForce = true;
    },
    get size() {
      return serials.size;
    },
    get inForce() {
      return inForce;
    },
    get nextUpdate() {
      return nextUpdate;
    },
    get number() {
      return number;
    },
  };
}
