/**
 * The admin listener (loopback by default): /healthz (the process answers), /readyz (inbound
 * listener up, backend reachable, not draining), /metrics (Prometheus text), plus endpoints that
 * capabilities add (the minted tokens' JWKS, token revocation).
 *
 * Bound to loopback, it answers only requests for a loopback Host: otherwise DNS rebinding would let
 * any web page open in a browser on the same machine (`warden dev`, `kubectl port-forward`) read the
 * console's events and status, and revoke tokens, as same-origin requests to its own name.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackAddress, isLoopbackHost } from '../net/loopback.js';
import type { Registry } from 'prom-client';
import type { EventFeed } from '../console/event-feed.js';
import { CONSOLE_CSP, CONSOLE_PAGE } from '../console/page.js';
import type { ConsoleStatus } from '../console/status.js';
import { WardenError } from '../errors.js';
import { problemBody } from '../pipeline/rescue.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<{ ok: boolean; detail?: string }>;
}

export interface AdminServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** An endpoint a capability adds to the admin listener; it answers with `send`. */
export interface AdminEndpoint {
  readonly methods: readonly ('GET' | 'POST')[];
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface AdminOptions {
  host: string;
  port: number;
  registry: Registry;
  readiness: readonly ReadinessCheck[];
  /** Looked up at request time, so a reload can change them. */
  endpoints?: () => ReadonlyMap<string, AdminEndpoint>;
  /** The console on `/`: its page, live events and status. */
  console?: { feed: EventFeed; status: () => Promise<ConsoleStatus> } | undefined;
}

export function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  let loopbackOnly = false; // set once bound: what counts is the address, not how `host` spells it
  const server = createServer((req, res) => {
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      const refusal = new WardenError('ERR_ADMIN_HOST_REFUSED', { detail: 'use localhost or a loopback address' });
      return send(res, refusal.status, 'application/problem+json', problemBody(refusal, undefined));
    }
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    const extra = options.endpoints?.().get(path);
    if (extra) {
      const method = req.method === 'HEAD' ? 'GET' : (req.method as 'GET' | 'POST');
      if (extra.methods.includes(method)) return extra.handle(req, res);
      res.setHeader('allow', extra.methods.join(', '));
      return send(res, 405, 'text/plain', 'method not allowed\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain', 'method not allowed\n');
    }
    switch (path) {
      case '/healthz':
        return send(res, 200, 'application/json', '{"status":"ok"}\n');
      case '/readyz':
        void Promise.all(
          options.readiness.map(async (r) => ({
            name: r.name,
            ...(await r.check().catch((e: Error) => ({ ok: false, detail: e.message }))),
          })),
        ).then((results) => {
          const ready = results.every((r) => r.ok);
          send(
            res,
            ready ? 200 : 503,
            'application/json',
            JSON.stringify({ status: ready ? 'ready' : 'not_ready', checks: results }) + '\n',
          );
        });
        return;
      case '/':
        if (!options.console) break;
        res.setHeader('content-security-policy', CONSOLE_CSP);
        return send(res, 200, 'text/html; charset=utf-8', CONSOLE_PAGE);
      case '/console/events':
        if (!options.console) break;
        return options.console.feed.serve(req, res);
      case '/console/status':
        if (!options.console) break;
        void options.console.status().then(
          (status) => send(res, 200, 'application/json', JSON.stringify(status) + '\n'),
          (err: Error) => send(res, 500, 'text/plain', `status failed: ${err.message}\n`),
        );
        return;
      case '/metrics':
        void options.registry.metrics().then(
          (text) => send(res, 200, options.registry.contentType, text),
          (err: Error) => send(res, 500, 'text/plain', `metrics failed: ${err.message}\n`),
        );
        return;
    }
    return send(res, 404, 'text/plain', 'not found: try /, /healthz, /readyz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  loopbackOnly = isLoopbackAddress((server.address() as AddressInfo).address);
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
