/**
 * undici's connector with a native connect timer. undici's own timer (its timer wheel at 1 s and
 * beyond) only queues its verdict (setImmediate), so after an event-loop stall past two deadlines
 * another timer that expired later (egress's queued-request timer) answered first and the connect
 * timeout was reported as a headers timeout. This one destroys the socket in the timer itself.
 */
import type { Socket } from 'node:net';
import { buildConnector, errors } from 'undici';

export function timedConnector(timeoutMs: number, options: buildConnector.BuildOptions = {}): buildConnector.connector {
  const open = buildConnector({ ...options, timeout: 0 });
  if (timeoutMs <= 0) return open;
  return (connectOptions, callback) => {
    // The connector's error listener hands this to undici: 504 ERR_UPSTREAM_TIMEOUT (upstreamError).
    const timer = setTimeout(() => socket.destroy(new errors.ConnectTimeoutError()), timeoutMs).unref();
    // undici's connector returns the socket it opens, though its type says void.
    const socket = open(connectOptions, (...args) => {
      clearTimeout(timer);
      callback(...args);
    }) as unknown as Socket;
  };
}
