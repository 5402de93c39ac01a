/**
 * Admission control for failed TLS handshakes, per client network (as HAProxy stick tables or
 * fail2ban do). A handshake that asks for a client certificate makes OpenSSL verify every signature
 * of the chain the client sends, and Node can bound neither the chain's length nor its keys: ~60
 * fabricated CAs with 3072-bit RSA exponents cost ~170 ms of event-loop CPU per handshake.
 * Verification cannot be made cheaper from Node, so a client network that keeps failing handshakes
 * is refused new connections before any TLS processing.
 *
 * One token bucket per client network (`clientNetworkOf`: an IPv4 address, an IPv6 /64), holding
 * `burst` tokens, one back every `perMs`. Each failed handshake takes one; a network may go into
 * debt (connections admitted together fail together), and is refused until it has a whole token
 * again, so over time it gets at most one failed handshake per `perMs`. Successful handshakes cost
 * nothing, and a network that never failed one is not tracked at all.
 *
 * A network whose connections were refused is "throttled" until its next token is back; that period
 * is reported once, when it ends, with how many connections it refused (`onThrottled`).
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { clientNetworkOf } from './client-network.js';

export interface HandshakeAdmissionOptions {
  /** Failed handshakes a network may make in a row; 0 turns admission control off. */
  burst: number;
  /** One failure token back every this many ms. */
  perMs: number;
  /** Networks tracked at once (default 10 000); beyond it the fullest of the oldest few is dropped. */
  maxNetworks?: number;
  /** A throttled period ended (a token is back, the entry was evicted, or the listener closes). */
  onThrottled: (report: ThrottledPeriod) => void;
  now?: () => number;
}

export interface ThrottledPeriod {
  network: string;
  /** Connections refused in the period. */
  refused: number;
  /** How long the period lasted, ms. */
  durationMs: number;
}

export interface HandshakeAdmission {
  /**
   * Whether a new connection from `address` may start a TLS handshake (false: close it at once).
   * An admitted one is in progress until `ended`: a network gets no more handshakes at once than it
   * has tokens, so a wave of connections opened together cannot all fail at once before the first
   * failure is counted.
   */
  admit(address: string | undefined): boolean;
  /** An admitted connection's handshake is over (done, failed, or the connection closed). Once per admit. */
  ended(address: string | undefined): void;
  /** A handshake from `address` failed: one token. */
  failed(address: string | undefined): void;
  /** Networks tracked now. */
  readonly size: number;
  /** Reports the periods still open and stops the sweep timer. */
  close(): void;
}

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  /** Start of the throttled period, or undefined when not throttled. */
  since: number | undefined;
  refused: number;
}

export const DEFAULT_MAX_NETWORKS = 10_000;
/** Handshakes at once from a network that has not failed one lately. */
export const UNTRACKED_IN_PROGRESS = 128;
/** How many of the oldest entries eviction compares (it drops the fullest of them): O(1) per eviction. */
const EVICTION_SAMPLE = 8;

export function createHandshakeAdmission(options: HandshakeAdmissionOptions): HandshakeAdmission {
  const { burst, perMs, onThrottled } = options;
  const maxNetworks = options.maxNetworks ?? DEFAULT_MAX_NETWORKS;
  const now = options.now ?? Date.now;
  /** In order of their last failure, oldest first. */
  const buckets = new Map<string, Bucket>();
  /** Handshakes in progress per network (every network, only while it has some). */
  const inProgress = new Map<string, number>();
  // Ends throttled periods and drops full buckets without waiting for the network's next connection.
  const sweepEveryMs = Math.min(Math.max(perMs, 1000), 60_000);
  let sweeper: NodeJS.Timeout | undefined;

  const refill = (b: Bucket, t: number) => {
    if (t > b.at) b.tokens = Math.min(burst, b.tokens + (t - b.at) / perMs);
    b.at = t;
  };
  const endPeriod = (network: string, b: Bucket, t: number) => {
    if (b.since === undefined) return;
    const report = { network, refused: b.refused, durationMs: Math.max(0, t - b.since) };
    b.since = undefined;
    b.refused = 0;
    onThrottled(report);
  };
  const sweep = () => {
    sweeper = undefined;
    const t = now();
    for (const [network, b] of buckets) {
      refill(b, t);
      if (b.tokens >= 1) endPeriod(network, b, t);
      if (b.tokens >= burst) buckets.delete(network);
    }
    schedule();
  };
  const schedule = () => {
    if (sweeper === undefined && buckets.size > 0) sweeper = setTimeout(sweep, sweepEveryMs).unref();
  };
  /** Drops the fullest of the oldest few entries (the least likely to be refusing anything). */
  const evictOne = (t: number) => {
    let victim: [string, Bucket] | undefined;
    let seen = 0;
    for (const entry of buckets) {
      refill(entry[1], t);
      if (victim === undefined || entry[1].tokens > victim[1].tokens) victim = entry;
      if (++seen >= EVICTION_SAMPLE) break;
    }
    if (victim === undefined) return;
    buckets.delete(victim[0]);
    endPeriod(victim[0], victim[1], t);
  };

  /** A full bucket for a network tracked from now on, room made for it first. */
  const newBucket = (t: number): Bucket => {
    if (buckets.size >= maxNetworks) evictOne(t);
    return { tokens: burst, at: t, since: undefined, refused: 0 };
  };

  return {
    admit(address) {
      if (burst <= 0 || address === undefined) return true;
      const network = clientNetworkOf(address);
      const running = inProgress.get(network) ?? 0;
      let b = buckets.get(network);
      let tokens = burst;
      if (b !== undefined) {
        const t = now();
        refill(b, t);
        tokens = b.tokens;
        if (tokens - running >= 1) {
          endPeriod(network, b, t);
          if (tokens >= burst && running === 0) buckets.delete(network);
        }
      }
      // Each handshake in progress may fail: for a network that has failed lately it holds one of its
      // tokens until it ends. One that has not is held to UNTRACKED_IN_PROGRESS at once: a client
      // opening its pool (a gateway, a load test) is not refused, and a first wave of fabricated
      // chains is bounded (it was bounded only by max_connections).
      if (b === undefined ? running < UNTRACKED_IN_PROGRESS : tokens - running >= 1) {
        inProgress.set(network, running + 1);
        return true;
      }
      const t = now();
      if (b === undefined) {
        // A first wave past `burst`: tracked from now on, to report the period it refuses.
        b = newBucket(t);
        buckets.set(network, b);
        schedule();
      }
      if (b.since === undefined) b.since = t;
      b.refused++;
      return false;
    },
    ended(address) {
      if (burst <= 0 || address === undefined) return;
      const network = clientNetworkOf(address);
      const running = inProgress.get(network);
      if (running === undefined) return;
      if (running <= 1) inProgress.delete(network);
      else inProgress.set(network, running - 1);
    },
    failed(address) {
      if (burst <= 0 || address === undefined) return;
      const network = clientNetworkOf(address);
      const t = now();
      let b = buckets.get(network);
      if (b === undefined) {
        b = newBucket(t);
      } else {
        refill(b, t);
        buckets.delete(network); // re-inserted last: the newest failure
      }
      b.tokens -= 1;
      buckets.set(network, b);
      schedule();
    },
    get size() {
      return buckets.size;
    },
    close() {
      if (sweeper !== undefined) clearTimeout(sweeper);
      sweeper = undefined;
      const t = now();
      for (const [network, b] of buckets) endPeriod(network, b, t);
      buckets.clear();
    },
  };
}

/**
 * Puts `admission` in front of node:tls's own `connection` listener (the one that makes the TLS
 * socket), so a refused connection is closed with no TLS processing at all: no TLS socket, no
 * handshake, no `tlsClientError`.
 */
/** On an admitted TCP socket whose handshake has not ended yet. */
const HANDSHAKE_RUNNING = Symbol('warden.handshakeRunning');

export function admitBeforeTls(server: TlsServer, admission: HandshakeAdmission): void {
  const tlsListeners = server.listeners('connection') as ((this: TlsServer, raw: Socket) => void)[];
  server.removeAllListeners('connection');
  const ended = (raw: (Socket & { [HANDSHAKE_RUNNING]?: boolean }) | undefined) => {
    if (raw === undefined || raw[HANDSHAKE_RUNNING] !== true) return;
    raw[HANDSHAKE_RUNNING] = false;
    admission.ended(raw.remoteAddress);
  };
  server.on('connection', function (this: TlsServer, raw: Socket) {
    if (!admission.admit(raw.remoteAddress)) return void raw.resetAndDestroy();
    (raw as Socket & { [HANDSHAKE_RUNNING]?: boolean })[HANDSHAKE_RUNNING] = true;
    raw.once('close', () => ended(raw));
    for (const listener of tlsListeners) listener.call(this, raw);
  });
  // A handshake ends done or failed (a connection that closes before either, above, ends it too).
  server.on('secureConnection', (socket: TLSSocket) => ended(tcpSocketOf(socket)));
  server.on('tlsClientError', (_err: Error, socket: TLSSocket) => ended(tcpSocketOf(socket)));
}

/**
 * Reads each new TCP socket's peer address at `connection`, where node:net caches it, whether or not
 * admission control is on (`burst: 0` turns it off): failedHandshakeOf finds it there once the TLS
 * socket no longer knows it, so `warden.tls.handshake_failed` names the client.
 */
export function rememberClientAddresses(server: TlsServer): void {
  server.prependListener('connection', (raw: Socket) => void raw.remoteAddress);
}

/** The TCP socket under a server-side TLS socket (node:tls keeps it as `_parent`). */
const tcpSocketOf = (socket: TLSSocket): Socket | undefined => (socket as TLSSocket & { _parent?: Socket })._parent;

/**
 * The client address of a failed server-side handshake, and whether it was a silent probe (a
 * client that left without sending a byte: a port scan, a TCP health check), which cost no
 * handshake and is not counted. After a refused client certificate node:tls destroys the TLS socket
 * before `tlsClientError`, and it no longer knows its peer; the TCP socket under it (node:tls keeps
 * it as `_parent`) still does, once read at `connection` (rememberClientAddresses).
 */
export function failedHandshakeOf(err: NodeJS.ErrnoException, socket: TLSSocket): { address: string | undefined; probe: boolean } {
  const tcp = tcpSocketOf(socket);
  return {
    address: socket.remoteAddress ?? tcp?.remoteAddress,
    probe: err.code === 'ECONNRESET' && !socket.authorizationError && tcp?.bytesRead === 0,
  };
}

/** The attributes of `warden.tls.handshake_throttled` for a period that ended, under `rule`. */
export function throttledAttributes(period: ThrottledPeriod, rule: string, burst: number, perMs: number) {
  return {
    'client.address': period.network,
    'warden.rule': rule,
    'error.type': 'WARDEN_HANDSHAKE_THROTTLED',
    'warden.count': period.refused,
    'warden.detail':
      `${period.refused} connection(s) from this client network closed before the TLS handshake over ${period.durationMs} ms: ` +
      `it had failed ${burst} handshakes (one more allowed every ${perMs} ms)`,
  };
}
