/**
 * The egress listener: the backend's way out to other services. Plain HTTP on loopback for the
 * local backend; the sidecar originates mTLS to the destination's sidecar with its own workload
 * certificate and checks that the destination presents the SPIFFE ID configured for it.
 *
 *   GET http://127.0.0.1:15001/payments/charges/7   (path form: first segment = service)
 *   GET http://payments/charges/7 via HTTP_PROXY     (proxy form: host = service)
 *
 * Only the backend may call it. A web page in a browser on the same machine can reach loopback too
 * (a `warden dev` laptop, `kubectl port-forward`, host networking): with DNS rebinding it reads the
 * answers, with a plain cross-site form or `fetch(…, { mode: 'no-cors' })` it makes calls, each with
 * this workload's identity. So a Host that names neither this machine nor (proxy form) the service
 * is refused 421, and a request carrying what only browsers send (Origin, Sec-Fetch-*) 403.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { errors, Pool } from 'undici';
import type { EgressConfig, LimitsConfig } from '../config/types.js';
import { WardenError } from '../errors.js';
import type { MeshIdentity } from '../mesh/identity.js';
import { browserFieldsOf, hostName, isCrossOriginRequest, isLoopbackHost } from '../net/loopback.js';
import { spiffeIdOfSubjectAltName, trustDomainOf } from '../net/spiffe-id.js';
import { destinationIdProblem } from '../net/destination-id.js';
import { loggedTarget } from '../net/url-credentials.js';
import { declaresBody } from '../net/declared-body.js';
import type { Rescue } from '../pipeline/rescue.js';
import type { EventBus } from '../telemetry/events.js';
import { checkFraming, downstreamResponseHeaders, egressRequestHeaders, type HeaderRules } from './headers.js';
import { responseProblem, upstreamError } from './forward.js';
import { timedConnector } from './timed-connector.js';
import { retiringClient } from './destination-retirement.js';
import { checkNamedLocation, egressLocation } from './egress-redirect.js';
import { endedResponse, heldResponse } from './held-response.js';
import { closeConnectionAfter, h1ConnectionOf, trackH1Connection } from './h1-connection.js';
import type { RevocationList } from '../mesh/revocation-list.js';

export interface EgressListener {
  readonly address: AddressInfo;
  /** New workload certificate or trust bundle: new connections use it; open ones finish. */
  refresh(): void;
  close(): Promise<void>;
}

export interface EgressDeps {
  mesh: MeshIdentity;
  revocations: RevocationList | undefined;
  rules: () => HeaderRules;
  rescue: Rescue;
  events: EventBus;
  limits: LimitsConfig;
}

const PEER_MISMATCH = 'WARDEN_EGRESS_PEER_MISMATCH';

/** Connections to each destination; calls beyond them queue, within egress.timeouts.headers (handle). */
export const CONNECTIONS_PER_SERVICE = 64;

/**
 * Verifies the destination by its SPIFFE ID (not its DNS name: sidecars are addressed by identity).
 * A destination that is no workload of this mesh (the CA's own identity) is refused even when
 * configured: load refuses that configuration, and this holds should any other path build one.
 */
function identityCheck(expected: string, trustDomain: string, revocations: RevocationList | undefined) {
  const notAWorkload = destinationIdProblem(expected, trustDomain);
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const id = spiffeIdOfSubjectAltName(cert.subjectaltname);
    // Without a CRL in force nothing says who is revoked: no connection is opened (handle refuses first).
    const unchecked = revocations !== undefined && !revocations.inForce;
    const revoked = revocations?.isRevoked(cert.serialNumber) === true;
    if (id === expected && !revoked && !unchecked && notAWorkload === undefined) return undefined;
    const err = new Error(
      unchecked
        ? `destination certificate ${cert.serialNumber} cannot be checked: no CRL in force`
        : revoked
          ? `destination certificate ${cert.serialNumber} is revoked`
          : notAWorkload !== undefined
            ? `destination ${expected} ${notAWorkload}`
            : `destination presented ${id ?? 'no SPIFFE ID'}, expected ${expected}`,
    );
    (err as NodeJS.ErrnoException).code = PEER_MISMATCH;
    return err;
  };
}

function createPools(cfg: EgressConfig, deps: EgressDeps): Map<string, Pool> {
  const m = deps.mesh.material();
  const trustDomain = trustDomainOf(deps.mesh.spiffeId);
  const pools = new Map<string, Pool>();
  for (const [name, service] of Object.entries(cfg.services)) {
    pools.set(
      name,
      new Pool(service.url.replace(/\/$/, ''), {
        connections: CONNECTIONS_PER_SERVICE,
        connect: timedConnector(cfg.timeouts.connect, {
          cert: m.cert,
          key: m.key,
          ca: m.ca,
          checkServerIdentity: identityCheck(service.spiffe_id, trustDomain, deps.revocations),
          // Node does not call checkServerIdentity on a resumed session, and nothing else looked
          // at the destination's certificate again: an expired (or since re-keyed) destination
          // was used for as long as sessions resumed. Every connection is a full handshake.
          maxCachedSessions: 0,
        }),
        // OpenSSL checked the destination's certificate at the handshake only: its connections
        // retire before it expires (destination-retirement.ts).
        factory: retiringClient,
        headersTimeout: cfg.timeouts.headers,
        bodyTimeout: cfg.timeouts.body,
      }),
    );
  }
  return pools;
}

const crlUnavailable = () =>
  new WardenError('ERR_EGRESS_CRL_UNAVAILABLE', {
    rule: 'mesh.crl',
    detail: 'This sidecar has no revocation list in force yet, so destination certificates cannot be checked; retry later.',
    headers: { 'retry-after': '5' },
  });

interface Destination {
  service: string;
  path: string;
  /** `http://svc/…` (the Host may name the service); false for the path form. */
  proxyForm: boolean;
}

/** `/svc/rest?q` → service name and the path to send. */
function pathFormDestination(target: string): Destination | undefined {
  const match = /^\/([a-z0-9][a-z0-9.-]*)([/?][^]*)?$/.exec(target);
  if (!match) return undefined;
  const rest = match[2] ?? '/';
  return { service: match[1] as string, path: rest.startsWith('?') ? `/${rest}` : rest, proxyForm: false };
}

/**
 * `/svc/rest?q` or `http://svc/rest?q` → service name and the path to send. An absolute target whose
 * authority is this listener (a loopback host on `listenerPort`) is the path form sent through the
 * proxy: a backend with HTTP_PROXY set sends `GET http://127.0.0.1:15001/payments/x` for the path
 * form's URL (curl, urllib, requests proxy loopback unless no_proxy says otherwise), and it was
 * answered 404 "unknown service 127.0.0.1". Its path is read as the path form reads it, as sent
 * (not URL's pathname, which resolves `%2e%2e` segments the path form refuses).
 */
function destinationOf(url: string, listenerPort: number): Destination | undefined {
  if (!url.startsWith('http://')) return pathFormDestination(url);
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (!parsed) return undefined;
  if ((parsed.port === '' ? 80 : Number(parsed.port)) === listenerPort && isLoopbackHost(parsed.host)) {
    const rest = url.slice('http://'.length);
    const start = rest.search(/[/?#]/);
    return start < 0 ? undefined : pathFormDestination(rest.slice(start));
  }
  return { service: parsed.hostname, path: parsed.pathname + parsed.search, proxyForm: true };
}

/**
 * Why a request is not the backend's own, or undefined. A browser request that says it is
 * cross-origin is refused as a browser request (403) whatever its Host; a foreign Host (DNS
 * rebinding: the page's name resolved to 127.0.0.1, same-origin to the browser) is 421, as on the
 * admin listener; any other request with browser fields is 403 too. In proxy form the Host may also
 * name the service, as HTTP clients set it from the URL.
 */
function refusalOf(req: IncomingMessage, service: string | undefined): WardenError | undefined {
  const h = req.headers;
  const browser = browserFieldsOf(h);
  const host = h.host;
  const hostOk = isLoopbackHost(host) || (service !== undefined && host !== undefined && hostName(host) === service);
  const crossOrigin = isCrossOriginRequest(h);
  const browserRefusal = () =>
    new WardenError('ERR_EGRESS_BROWSER_REFUSED', {
      rule: 'egress.browser',
      detail: `Only the local backend may call the egress listener; browser requests (${browser.join(', ')}) are refused.`,
    });
  if (browser.length > 0 && crossOrigin) return browserRefusal();
  if (!hostOk) {
    return new WardenError('ERR_EGRESS_HOST_REFUSED', {
      rule: 'egress.host',
      detail: 'Use a loopback address or localhost in Host (in proxy form, the service name).',
    });
  }
  return browser.length > 0 ? browserRefusal() : undefined;
}

export async function startEgressListener(cfg: EgressConfig, deps: EgressDeps): Promise<EgressListener> {
  let pools = createPools(cfg, deps);
  const serviceNames: ReadonlySet<string> = new Set(Object.keys(cfg.services).map((name) => name.toLowerCase()));
  /** The port this listener is on (set once it listens; port 0 is chosen then): targets naming it are the path form. */
  let listenerPort = cfg.port;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const subject = { clientAddress: req.socket.remoteAddress ?? '', method: req.method, path: loggedTarget(req.url ?? '') };
    const destination = destinationOf(req.url ?? '', listenerPort);
    const refusal = refusalOf(req, destination?.proxyForm === true ? destination.service : undefined);
    if (refusal) return deps.rescue.respond(refusal, subject, res);
    // As on the inbound listener: `Transfer-Encoding: gzip, chunked` went on as plain content, and
    // of duplicated Authorization or Content-Type fields the destination got the first only.
    const framing = checkFraming(req.headers, req.rawHeaders);
    if (framing) {
      closeConnectionAfter(res, req.socket);
      return deps.rescue.respond(framing, subject, res);
    }
    const pool = destination ? pools.get(destination.service) : undefined;
    if (!destination || !pool) {
      const detail = `Known services: ${Object.keys(cfg.services).join(', ') || 'none'}.`;
      return deps.rescue.respond(new WardenError('ERR_EGRESS_UNKNOWN_SERVICE', { detail, rule: 'egress.services' }), subject, res);
    }
    // A revoked destination must not be called because the sidecar lost its CRL (row 223's inbound rule).
    if (deps.revocations !== undefined && !deps.revocations.inForce) return deps.rescue.respond(crlUnavailable(), subject, res);
    const headers = egressRequestHeaders(req.headers, deps.rules());
    // A backend that gives up must release the connection to the destination, not leak it.
    const abort = new EventEmitter();
    res.once('close', () => abort.emit('abort'));
    const hasBody = declaresBody(req.headers);
    let answered = false;
    const answer = (problem: WardenError) => {
      if (answered) return;
      answered = true;
      clearTimeout(queued);
      // Answered already, by the rescue (a malformed body behind it): the call was aborted for that, not failed.
      if (res.writableEnded) return;
      deps.rescue.respond(problem, subject, res);
    };
    // undici's headers timeout starts when the request is written, so a call queued behind a pool
    // whose connections destinations hold (slow streams) waited without end. This one starts at
    // dispatch: the queue counts. It stops when the backend's body starts to flow (its upload is the
    // listener's request_timeout's; undici's own headers timeout starts after it). An aborted call
    // leaves undici's queue only when a connection frees, so the answer is sent here, not there.
    // Its verdict waits one turn (setImmediate): after an event-loop stall past this deadline and the
    // connect one, Node may run this timer first (its list's expiry is a cleared timer's), and the
    // connect timeout, which expired first, was reported as a headers timeout.
    // Stopped once the response has started or the body flows: clearing the timer no longer stops
    // a verdict already waiting its turn, which cut a response under way (and logged a timeout).
    let started = false;
    const stop = () => {
      started = true;
      clearTimeout(queued);
    };
    const queued =
      cfg.timeouts.headers > 0
        ? setTimeout(() => {
            setImmediate(() => {
              if (started) return;
              answer(upstreamError(new errors.HeadersTimeoutError(), 'egress.timeouts'));
              abort.emit('abort');
            });
          }, cfg.timeouts.headers).unref()
        : undefined;
    if (hasBody) req.once('resume', stop);
    pool
      .stream(
        { method: req.method ?? 'GET', path: destination.path, headers, body: hasBody ? req : null, signal: abort },
        ({ statusCode, headers: h }) => {
          stop();
          // Thrown, undici ends the exchange and the promise rejects with it: 502 to the backend.
          const out = downstreamResponseHeaders(h, deps.rules());
          const refused = responseProblem(statusCode, h, out, 'egress');
          if (refused) throw refused;
          // No body follows a 204 or 304, whatever Content-Length it has (forward.ts): ended here.
          const bodiless = statusCode === 204 || statusCode === 304;
          if (bodiless) delete out['content-length'];
          const location = out.location;
          if (typeof location === 'string') {
            const call = { status: statusCode, service: destination.service, path: destination.path, pathForm: !destination.proxyForm };
            const kept = egressLocation(location, call, serviceNames);
            if (kept instanceof WardenError) throw kept;
            if (typeof kept !== 'string') {
              // A redirect to a host name: held while the name is resolved (a redirect's only).
              const check = checkNamedLocation(kept).then((verdict) => (verdict instanceof WardenError ? verdict : undefined));
              return heldResponse(res, check, () => res.writeHead(statusCode, { ...out, location: kept.href }), bodiless);
            }
            out.location = kept;
          }
          res.writeHead(statusCode, out);
          if (!bodiless) return res;
          res.end();
          return endedResponse();
        },
      )
      .catch((err: NodeJS.ErrnoException) => {
        const problem =
          err instanceof WardenError
            ? err
            : err.code === PEER_MISMATCH || (err.cause as NodeJS.ErrnoException | undefined)?.code === PEER_MISMATCH
              ? new WardenError('ERR_EGRESS_PEER_MISMATCH', { rule: `egress.services.${destination.service}.spiffe_id`, cause: err })
              : upstreamError(err, 'egress.timeouts');
        answer(problem);
      });
  };

  const server = createServer(
    {
      headersTimeout: deps.limits.headers_timeout,
      requestTimeout: deps.limits.request_timeout,
      keepAliveTimeout: deps.limits.idle_timeout,
    },
    (req, res) => {
      const connection = h1ConnectionOf(req.socket);
      if (connection === undefined) handle(req, res);
      else connection.request(req, res);
    },
  );
  // Tracked as inbound connections are (h1-connection.ts): max_pipelined_requests and send_timeout
  // hold for the backend's calls too, and a parse error behind pipelined calls is answered as its
  // own request after theirs (rescue finds its response) instead of ending the connection unanswered.
  const h1Limits = {
    maxPipelined: deps.limits.max_pipelined_requests,
    sendTimeoutMs: deps.limits.send_timeout,
    // The inbound listener's event, attribute for attribute (listener.ts).
    onSendTimeout: (socket: Socket) =>
      deps.events.emit('warden.http.limit_exceeded', {
        'client.address': socket.remoteAddress ?? '',
        'warden.rule': 'limits.send_timeout',
        'error.type': 'ERR_SEND_TIMEOUT',
        'warden.detail': `The caller read nothing of an ended egress response for ${deps.limits.send_timeout} ms; the connection is closed.`,
      }),
  };
  server.on('connection', (socket: Socket) => void trackH1Connection(socket, h1Limits, handle));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => deps.rescue.clientError(err, socket));
  server.on('connect', (_req: IncomingMessage, socket: Socket) =>
    deps.rescue.refuseTunnel(
      socket,
      'CONNECT opens no tunnel here: send plain http:// requests (http://<service>/path); the sidecar originates the mTLS itself.',
    ),
  );
  // As on the inbound listener: no protocol switch, and nothing pipelined after one may be dropped.
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => deps.rescue.refuseUpgrade(req, socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      listenerPort = (server.address() as AddressInfo).port;
      resolve();
    });
  });

  return {
    address: server.address() as AddressInfo,
    refresh() {
      const old = pools;
      pools = createPools(cfg, deps);
      for (const pool of old.values()) void pool.close();
    },
    async close() {
      server.close();
      server.closeAllConnections();
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
