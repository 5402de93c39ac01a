/**
 * One request sent while the sidecar's admin `/healthz` is asked again and again: how long the
 * slowest of those answers took is how long the request held the event loop (the stall tests).
 */
import { request, type Dispatcher } from 'undici';

export interface HeldAnswer {
  readonly status: number;
  readonly text: string;
  /** The slowest /healthz answer while the request was in flight, in ms. */
  readonly slowest: number;
}

export async function heldRequest(
  adminUrl: string,
  url: string,
  options: { dispatcher: Dispatcher; method: string; headers?: Record<string, string>; body: string | Buffer },
): Promise<HeldAnswer> {
  let slowest = 0;
  let sending = true;
  const probe = (async () => {
    while (sending) {
      const started = performance.now();
      const r = await request(`${adminUrl}/healthz`);
      await r.body.text();
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const r = await request(url, {
    dispatcher: options.dispatcher,
    method: options.method,
    headers: options.headers,
    body: options.body,
  });
  const text = await r.body.text();
  sending = false;
  await probe;
  return { status: r.statusCode, text, slowest };
}
