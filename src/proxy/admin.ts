/**
 * The admin listener (loopback by default): /healthz (the process answers), /readyz (inbound
 * listener up, backend reachable, not draining), /metrics (Prometheus text), plus endpoints that
 * capabilities add (the minted tokens' JWKS, token revocation).
 *
 * It answers only requests whose Host names this machine in a way DNS cannot rebind: `localhost`,
 * a loopback address (bound elsewhere, any IP address: Prometheus and the kubelet use the pod's),
 * or a name the configuration lists (`listeners.admin.hosts`, e.g. a Compose service name).
 * Otherwise DNS rebinding would let any web page open in a browser that reaches the listener
 * (`warden dev`, `kubectl port-forward`, a published container port) read the console's events and
 * status, and revoke tokens, as same-origin requests to its own name. The console also refuses a
 * browser's cross-origin requests: a page elsewhere could hold all its event-feed places.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { hostName, isCrossOriginRequest, isLoopbackAddress, isLoopbackHost } from '../net/loopback.js';
import type { Registry } from 'prom-client';
import type { EventFeed } from '../console/event-feed.js';
import { CONSOLE_CSP, CONSOLE_PAGE } from '../console/page.js';
import { ADMIN_LIMITS, boundConnections, type AdminLimits } from './admin-connections.js';
import type { ConsoleStatus } from '../console/status.js';
import { WardenError } from '../errors.js';
import { problemBody, type Rescue } from '../pipeline/rescue.js';

export interface ReadinessCheck {
  name: string;
  /** undefined: the check does not apply now (a reload removed what it checks) and is not listed. */
  check(): Promise<{ ok: boolean; detail?: string } | undefined>;
}

export interface AdminServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Answers a refusal as problem+json and raises its event (the sidecar's rescue). */
export type AdminRefuse = (refusal: WardenError) => void;

/** An endpoint a capability adds to the admin listener; it answers with `send`, or `refuse`. */
export interface AdminEndpoint {
  readonly methods: readonly ('GET' | 'POST')[];
  handle(req: IncomingMessage, res: ServerResponse, refuse: AdminRefuse): void;
}

export interface AdminOptions {
  host: string;
  port: number;
  /** Host names served besides `localhost` and IP addresses (`listeners.admin.hosts`), lower case. */
  hosts?: readonly string[];
  registry: Registry;
  readiness: readonly ReadinessCheck[];
  /** Looked up at request time, so a reload can change them. */
  endpoints?: () => ReadonlyMap<string, AdminEndpoint>;
  /** The console on `/`: its page, live events and status. */
  console?: { feed: EventFeed; status: () => Promise<ConsoleStatus> } | undefined;
  /** ADMIN_LIMITS unless given (tests). */
  limits?: AdminLimits;
  /**
   * Answers refusals and raises their events, as on the data path: a rebinding page's request
   * (421), a browser's (403) and a bad revocation were refused without an event. Without it, answered only.
   */
  rescue?: Pick<Rescue, 'respond'> | undefined;
}

export function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** A refusal as problem+json, without its event (the caller raised it, or there is no bus). */
export function sendProblem(res: ServerResponse, refusal: WardenError): void {
  send(res, refusal.status, 'application/problem+json', problemBody(refusal, undefined) + '\n');
}

const CONSOLE_PATHS = new Set(['/', '/console/events', '/console/status']);
const pathOf = (req: IncomingMessage): string => (req.url ?? '/').split('?', 1)[0] ?? '/';
/** The console's event feed stays open: bounded by its own caps, it is never closed to make room. */
const isConsoleFeed = (req: IncomingMessage): boolean => pathOf(req) === '/console/events';

export async function startAdminServer(options: AdminOptions): Promise<AdminServer> {
  let loopbackOnly = false; // set once bound: what counts is the address, not how `host` spells it
  const names = new Set(options.hosts);
  /** No Host at all (HTTP/1.0) is no browser's request. */
  const served = (host: string | undefined): boolean => {
    if (host === undefined || isLoopbackHost(host)) return true;
    const name = hostName(host);
    if (name === undefined) return false;
    return isIP(name) !== 0 ? !loopbackOnly : names.has(name);
  };
  const limits = options.limits ?? ADMIN_LIMITS;
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: 1000,
    },
    (req, res) => {
      const refuse: AdminRefuse = (refusal) =>
        options.rescue
          ? options.rescue.respond(refusal, { clientAddress: req.socket.remoteAddress ?? '', method: req.method, path: pathOf(req) }, res)
          : sendProblem(res, refusal);
      if (!served(req.headers.host)) {
        const listed = names.size > 0 ? `, ${[...names].join(', ')}` : '';
        const detail = loopbackOnly
          ? `use localhost or a loopback address${listed}`
          : `use localhost, an IP address${listed}, or list the name in listeners.admin.hosts`;
        return refuse(new WardenError('ERR_ADMIN_HOST_REFUSED', { detail }));
      }
      const path = pathOf(req);
      if (CONSOLE_PATHS.has(path) && isCrossOriginRequest(req.headers)) {
        return refuse(
          new WardenError('ERR_ADMIN_BROWSER_REFUSED', { detail: 'The console is opened by its own address, not from another site.' }),
        );
      }
      const extra = options.endpoints?.().get(path);
      if (extra) {
        const method = req.method === 'HEAD' ? 'GET' : (req.method as 'GET' | 'POST');
        if (extra.methods.includes(method)) return extra.handle(req, res, refuse);
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
            options.readiness.map(async (r) => {
              const result = await r.check().catch((e: Error) => ({ ok: false, detail: e.message }));
              return result && { name: r.name, ...result };
            }),
          ).then((listed) => {
            const results = listed.filter((r) => r !== undefined);
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
    },
  );
  boundConnections(server, limits, isConsoleFeed);
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
