/**
 * `warden ca serve`: the CA's HTTPS API (src/ca/api.ts). TLS ≥ 1.2 with a server certificate the CA
 * issues itself at startup and re-issues before it expires (setSecureContext: open connections keep
 * theirs). Client certificates are requested, never required by TLS: enrollment has none, and the
 * endpoints that need one check it themselves (src/ca/client-auth.ts) so the refusal is a problem+json
 * with a code, not a handshake failure.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pathAttribute } from '../telemetry/attribute-limits.js';
import type { Context } from '@opentelemetry/api';
import type { TLSSocket, SecureContextOptions } from 'node:tls';
import type { CaConfig } from '../config/ca-schema.js';
import { ERRORS, WardenError, isWardenError, type ErrorCode } from '../errors.js';
import { pinoEventSink } from '../telemetry/event-sinks.js';
import { createEventBus, type EventAttributes, type EventBus } from '../telemetry/events.js';
import { admitBeforeTls, createHandshakeAdmission, failedHandshakeOf, throttledAttributes } from '../net/handshake-admission.js';
import { createLogger, flushLogger, type Logger } from '../telemetry/logger.js';
import {
  CA_PATHS,
  type CertificateRecord,
  type CreatedToken,
  type CreateTokenRequest,
  type RevokeRequest,
  type RevokeResult,
  type RevokeTokensRequest,
  type RevokeTokensResult,
  type TokenRecord,
} from './api.js';
import { startRetention } from './retention.js';
import { createRefusalAudit } from './audit-throttle.js';
import { createClientAuth, type Role } from './client-auth.js';
import { createCrlPublisher, etagMatches } from './crl.js';
import { ClientGoneError, readJsonObject, sendBytes, sendJson, sendProblem } from './http.js';
import { limitConnections } from './connection-limits.js';
import { createIssuer, MIN_ISSUER_LIFE_MS, type Issuer } from './issuer.js';
import { exportPrivateKeyPem, generateKeyPair } from './keys.js';
import { adminSpiffeId, loadCaMaterial, serverSpiffeId, type CaMaterial } from './layout.js';
import { keyIdOf } from './pki.js';
import { canonicalSerial } from '../net/serial.js';
import { createCaService, type Caller } from './service.js';
import { createCaDatabase, openCaStore, type CaStore } from './store.js';
import { createTokens } from './tokens.js';
import { admitDatabase, publishedRecordKeeper } from './published-record.js';
import { startCaTelemetry, type CaTelemetry } from './ca-telemetry.js';

export interface CaServerOptions {
  /** Validated ca.yaml (loadCaConfig, or resolveCaConfig for an object). */
  config: CaConfig;
  /** Already loaded material (the CLI loads it to report config errors); loaded from config.dir otherwise. */
  material?: CaMaterial;
  logger?: Logger;
  /** Events also go to a pino sink on `logger`. */
  events?: EventBus;
  /** Where OTEL_* variables are read (default process.env; `warden dev` leaves them to its sidecar). */
  env?: NodeJS.ProcessEnv;
  /**
   * Make the database (config.database.path), which must not exist yet: `warden ca serve
   * --create-database`, for a CA directory made by a `warden ca init` that did not make one (before
   * 2026-12-03), and tests starting a CA on a database of its own. Without it a missing database is
   * refused (store.ts): a new one would forget every revocation.
   */
  createDatabase?: boolean;
  /**
   * Start on a database older than what this CA published (DIR/crl-published.json), raising
   * warden.ca.database_restored: `warden ca serve --accept-restored-database`, once, after a restore
   * from an older backup. Refused when the database is not older (published-record.ts).
   */
  acceptRestoredDatabase?: boolean;
  /** Connection limits (ca.yaml has no section for them): tests lower them. */
  limits?: {
    idleTimeoutMs?: number;
    maxConnections?: number;
    maxConnectionsPerClient?: number;
    headersTimeoutMs?: number;
    /** The interval anonymous refusals are aggregated over in the audit table. */
    auditIntervalMs?: number;
    /** Failed TLS handshakes a client network may make (src/net/handshake-admission.ts); burst 0: off. */
    handshakeFailures?: { burst: number; perMs: number };
  };
}

export interface CaServer {
  /** `https://host:port` (loopback when bound to every address). */
  url: string;
  port: number;
  trustDomain: string;
  /** The root(s), PEM: what clients trust. */
  rootPem: string;
  /** `sha256:<hex>` of the root, as `warden ca init` printed it. */
  fingerprint: string;
  /** The issuing CA certificate, PEM. */
  intermediatePem: string;
  events: EventBus;
  /** Creates a bootstrap token without the admin API (tests, `warden dev`). */
  createToken(request: CreateTokenRequest): CreatedToken;
  /** Revokes without the admin API. */
  revoke(request: RevokeRequest): Promise<RevokeResult>;
  list(query?: { spiffe_id?: string; status?: 'valid' | 'revoked' | 'expired' }): CertificateRecord[];
  /** Lists bootstrap tokens (never the tokens themselves) without the admin API. */
  listTokens(query?: { spiffe_id?: string }): TokenRecord[];
  /** Revokes bootstrap tokens without the admin API. */
  revokeTokens(request: RevokeTokensRequest): RevokeTokensResult;
  close(): Promise<void>;
}

const LOCAL: Caller = { actor: 'local' };

export async function startCaServer(options: CaServerOptions): Promise<CaServer> {
  const { config } = options;
  const logger = options.logger ?? createLogger({ level: config.log.level, base: { service: 'warden-ca' } });
  const events = options.events ?? createEventBus();
  const removeSink = events.addSink(pinoEventSink(logger));
  const material = options.material ?? (await loadCaMaterial(config.dir, config.passphrase));
  if (material.trustDomain !== config.trust_domain) {
    throw new Error(`trust_domain "${config.trust_domain}" does not match the CA in ${config.dir} ("${material.trustDomain}")`);
  }
  if (options.createDatabase) {
    createCaDatabase(config.database.path, config.trust_domain);
    logger.warn(
      { path: config.database.path, trust_domain: config.trust_domain },
      'created a new, empty CA database: it knows no certificate, token or revocation from before (warden ca serve --create-database: start without the flag from now on)',
    );
  }
  const store = bestEffortAudit(openCaStore(config.database.path, { trustDomain: config.trust_domain }), logger);
  // Before this process writes anything: what the database saw last, which retention's "now" may not pass (retention.ts).
  const newestRecord = store.newestRecord();
  let server: Server | undefined;
  let telemetry: CaTelemetry | undefined;
  let inFlight = 0;
  let whenIdle: (() => void) | undefined;
  let onClose = () => {};
  let closeAudit = () => {};
  try {
    recordAdmin(store, material);
    telemetry = await startCaTelemetry(config, events, options.env ?? process.env);
    const databaseId = admitDatabase(store, config.dir, config.database.path, options.acceptRestoredDatabase === true, (how) => {
      logger.warn(
        { path: config.database.path, how },
        'started on a CA database older than what this CA published (--accept-restored-database): revoke again what was revoked since',
      );
      events.emit('warden.ca.database_restored', { 'warden.code': 'ERR_CA_DATABASE_RESTORED', 'warden.detail': how });
      store.audit({
        action: 'database_restored',
        actor: 'local',
        outcome: 'ok',
        detail: `accepted with --accept-restored-database: ${how}`,
      });
    });
    const issuer = createIssuer({
      intermediate: material.intermediate,
      intermediateKey: material.intermediateKey,
      issuingRoot: material.issuingRoot,
      trustDomain: config.trust_domain,
      lifetimeMs: config.certificates.lifetime,
      backdateMs: config.certificates.backdate,
    });
    const crl = createCrlPublisher({
      store,
      intermediate: material.intermediate,
      intermediateKey: material.intermediateKey,
      nextUpdateMs: config.crl.next_update,
      onPublished: publishedRecordKeeper(config.dir, databaseId, logger),
    });
    // The serial of the server certificate presented now; revoked, the CA re-issues it at once (below).
    let serverSerial: string | undefined;
    let reissueRevokedServerCertificate = async (_revoked: readonly string[]): Promise<void> => {};
    const service = createCaService({
      store,
      tokens: createTokens(store),
      issuer,
      crl,
      events,
      trustDomain: config.trust_domain,
      intermediatePem: material.intermediatePem,
      bundlePem: material.bundlePem,
      tokenTtlMs: config.tokens.ttl,
      maxActivePerIdentity: config.certificates.max_active_per_identity,
      logger,
      onRevoked: (revoked) => reissueRevokedServerCertificate(revoked),
    });
    const auth = createClientAuth(store, config.trust_domain);
    const anonymousRefusals = createRefusalAudit((entry) => store.audit(entry), options.limits?.auditIntervalMs ?? AUDIT_INTERVAL_MS);
    const retention = startRetention(store, { keepMs: config.database.keep_expired, logger, newestRecord });
    closeAudit = () => (retention.stop(), anonymousRefusals.close());

    const handle = async (req: IncomingMessage, res: ServerResponse, audit: AuditSubject, url: URL | undefined): Promise<void> => {
      const socket = req.socket as TLSSocket;
      if (!url) throw new WardenError('ERR_CA_NOT_FOUND', { detail: 'the request target is not a path' });
      const caller: Caller = {
        actor: 'anonymous',
        clientAddress: socket.remoteAddress,
        requestId: audit.requestId,
        traceContext: audit.traceContext,
      };
      const authenticated = (role: Role) => {
        const peer = auth.authenticate(socket, role);
        audit.actor = peer.actor;
        return { ...peer, requestId: audit.requestId, traceContext: audit.traceContext };
      };
      const route = ROUTES[url.pathname];
      if (!route) throw new WardenError('ERR_CA_NOT_FOUND', { detail: `no endpoint ${url.pathname}` });
      audit.action = actionOf(url, req.method);
      const method = req.method === 'HEAD' ? 'GET' : req.method;
      if ((method !== 'GET' && method !== 'POST') || route[method] === undefined) {
        throw new WardenError('ERR_METHOD_NOT_ALLOWED', { headers: { allow: Object.keys(route).join(', ') } });
      }
      switch (url.pathname) {
        case CA_PATHS.enroll:
          return sendJson(res, 201, await service.enroll(await readJsonObject(req), caller));
        case CA_PATHS.renew: {
          const peer = authenticated('workload');
          audit.subject = peer.spiffeId;
          return sendJson(res, 201, await service.renew(await readJsonObject(req), peer));
        }
        case CA_PATHS.bundle:
          return sendBytes(res, 'application/pem-certificate-chain', material.bundlePem, 300);
        case CA_PATHS.crl: {
          // Conditional GET: sidecars refetch every refresh.crl; an unchanged CRL is a 304 (crl.ts).
          const { der, etag } = await crl.currentWithEtag();
          const headers = { etag, 'cache-control': 'no-cache' };
          if (etagMatches(req.headers['if-none-match'], etag)) return void res.writeHead(304, headers).end();
          return void res.writeHead(200, { ...headers, 'content-type': 'application/pkix-crl', 'content-length': der.length }).end(der);
        }
        case CA_PATHS.intermediate:
          // What the CRL is signed with: after a root rotation sidecars verify it with this (chained to their bundle).
          return sendBytes(res, 'application/pem-certificate-chain', material.intermediatePem, 300);
        // The caller before its body: an anonymous or workload caller's malformed body was answered 400
        // or 415 instead of 401/403 (and audited as a request problem); now its body is never read.
        case CA_PATHS.adminTokens: {
          const admin = authenticated('admin');
          if (method === 'GET') {
            return sendJson(res, 200, { tokens: service.listTokens({ spiffe_id: url.searchParams.get('spiffe_id') ?? undefined }) });
          }
          return sendJson(res, 201, service.createToken(await readJsonObject(req), admin));
        }
        case CA_PATHS.adminTokenRevocations: {
          const admin = authenticated('admin');
          return sendJson(res, 200, service.revokeTokens(await readJsonObject(req), admin));
        }
        case CA_PATHS.adminRevocations: {
          const admin = authenticated('admin');
          return sendJson(res, 200, await service.revoke(await readJsonObject(req), admin));
        }
        case CA_PATHS.adminCertificates:
          authenticated('admin');
          return sendJson(res, 200, {
            certificates: service.list({
              spiffe_id: url.searchParams.get('spiffe_id') ?? undefined,
              status: url.searchParams.get('status') ?? undefined,
            }),
          });
      }
    };

    const refuse = (error: unknown, req: IncomingMessage, res: ServerResponse, audit: AuditSubject) => {
      if (error instanceof ClientGoneError) {
        logger.debug({ path: audit.path, action: audit.action }, 'client closed the connection mid-request');
        res.destroy();
        return;
      }
      const problem = asProblem(error);
      if (problem.code === 'ERR_INTERNAL') logger.error({ err: problem.cause, path: req.url }, 'unexpected error in the CA API');
      if (problem.code === 'ERR_CA_STORE_UNAVAILABLE') {
        const code = (problem.cause as NodeJS.ErrnoException).code;
        logger.warn({ code, path: audit.path }, 'the CA database could not be written: answered 503');
      }
      const event = ERRORS[problem.code].event;
      if (event !== undefined) {
        const attributes: EventAttributes = {
          'client.address': audit.clientAddress,
          'http.request.method': req.method ?? '',
          'url.path': audit.path,
          'http.response.status_code': problem.status,
          'warden.code': problem.code,
          'warden.action': 'block',
        };
        if (problem.rule !== undefined) attributes['warden.rule'] = problem.rule;
        if (problem.detail !== undefined) attributes['warden.detail'] = problem.detail.slice(0, 200);
        // The refusal's own attributes (never sent): a revoked token's SPIFFE ID.
        if (problem.attributes !== undefined) Object.assign(attributes, problem.attributes);
        if (audit.subject !== undefined) attributes['warden.spiffe.id'] = audit.subject;
        if (audit.actor !== 'anonymous') attributes['warden.peer.id'] = audit.actor;
        events.emit(event, attributes, audit);
      }
      // Not for ERR_CA_STORE_UNAVAILABLE: the row would wait out the same lock, to fail as well.
      if (audit.action !== undefined && !QUIET.has(problem.code) && problem.code !== 'ERR_CA_STORE_UNAVAILABLE') {
        const entry = {
          action: audit.action,
          actor: audit.actor,
          subject: audit.subject ?? problem.attributes?.['warden.spiffe.id'],
          outcome: 'refused' as const,
          // The rule says what the code alone does not (a revoked token is answered as an unknown one).
          detail: problem.rule === undefined ? problem.code : `${problem.code} (${problem.rule})`,
        };
        // Anyone can send anonymous requests: their refusals are aggregated (audit-throttle.ts). So are
        // refusals at the identity limit: a workload renewing in a loop would write a row each instead.
        if (audit.actor === 'anonymous' || problem.code === 'ERR_CA_IDENTITY_LIMIT') anonymousRefusals.refused(entry, audit.clientAddress);
        else store.audit(entry);
      }
      // A refusal before the body was read (an admin POST's caller refused): close rather than drain it.
      if (!req.complete) res.setHeader('connection', 'close');
      sendProblem(res, problem);
    };

    const stopIntermediateWatch = watchIssuerExpiry(material.intermediate.notAfter, logger, 'intermediate');
    const stopRootWatch = watchIssuerExpiry(material.issuingRoot.notAfter, logger, 'root');
    const stopWatch = () => (stopIntermediateWatch(), stopRootWatch());
    onClose = stopWatch;
    const initial = await serverContext(issuer, material, config, store);
    serverSerial = initial.serial;
    server = createServer(
      {
        ...initial.context,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        // Node's default is 120 s: a connection that never finishes its handshake held a slot that long.
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
        headersTimeout: options.limits?.headersTimeoutMs ?? HEADERS_TIMEOUT_MS,
        requestTimeout: 30_000,
        // Both timeouts are only checked this often (Node's default, 30 s, let headers trickled
        // after the handshake hold a connection ~31 s instead of 10).
        connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
        keepAliveTimeout: 5_000,
      },
      (req, res) => {
        const started = performance.now();
        const url = urlOf(req.url);
        const audit: AuditSubject = {
          requestId: randomUUID(),
          traceContext: undefined,
          path: pathAttribute((req.url ?? '/').split('?', 1)[0] ?? '/'),
          clientAddress: req.socket.remoteAddress ?? '',
          actor: 'anonymous',
          action: undefined,
          subject: undefined,
        };
        inFlight++;
        const serve = (done?: (status: number) => void, traceContext?: Context) => {
          audit.traceContext = traceContext;
          void handle(req, res, audit, url)
            .catch((err: unknown) => refuse(err, req, res, audit))
            .catch((err: unknown) => {
              // refuse() itself failed: still a 500, never an unhandled rejection (it ends the process).
              logger.error({ err, path: audit.path }, 'unexpected error in the CA API');
              try {
                sendProblem(res, new WardenError('ERR_INTERNAL'));
              } catch {
                res.destroy();
              }
            })
            .finally(() => {
              if (--inFlight === 0) whenIdle?.();
              done?.(res.statusCode);
              logger.info(
                {
                  // The same field names as the sidecar's access log (OpenTelemetry conventions).
                  'http.request.method': req.method,
                  'url.path': audit.path,
                  'http.route': 'warden-ca',
                  'http.response.status_code': res.statusCode,
                  'client.address': audit.clientAddress,
                  'network.protocol.version': '1.1',
                  duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
                },
                'request',
              );
            });
        };
        if (!telemetry) return serve();
        // The action routed to (the URL's normalised path), as handle() routes it.
        telemetry.traced(req, audit.requestId, audit.path, actionOf(url, req.method) ?? 'unknown', serve);
      },
    );
    const listening = server;
    // Node's headersTimeout/requestTimeout only start with a request's first byte: a TLS connection
    // that never sends one was held forever. The socket idle timeout covers it (and any later silence).
    listening.setTimeout(options.limits?.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
    const stopLimits = limitConnections(
      listening,
      {
        maxConnections: options.limits?.maxConnections ?? MAX_CONNECTIONS,
        perClient: options.limits?.maxConnectionsPerClient ?? MAX_CONNECTIONS_PER_CLIENT,
      },
      logger,
    );
    // The CA asks every caller for a certificate (renewals and admin calls authenticate with one),
    // so a chain of fabricated CAs with huge RSA exponents cost it ~170 ms of CPU per handshake, as
    // it did the sidecar: the same admission control of failed handshakes per client network.
    const failures = options.limits?.handshakeFailures ?? { burst: 20, perMs: 10_000 };
    const admission =
      failures.burst > 0
        ? createHandshakeAdmission({
            burst: failures.burst,
            perMs: failures.perMs,
            onThrottled: (period) =>
              events.emit(
                'warden.tls.handshake_throttled',
                throttledAttributes(period, 'ca.handshake_failures', failures.burst, failures.perMs),
              ),
          })
        : undefined;
    if (admission) {
      admitBeforeTls(listening, admission);
      // A certificate presented that did not verify; anonymous callers (enrollment) present none.
      listening.on('secureConnection', (socket: TLSSocket) => {
        if (!socket.authorized && socket.getPeerX509Certificate() !== undefined) admission.failed(socket.remoteAddress);
      });
    }
    onClose = () => {
      stopWatch();
      stopLimits();
      admission?.close();
    };
    // Every TCP connection, its handshake done or not: closeAllConnections knows only those that
    // reached HTTP, and one still in its handshake (a client that sent nothing, or one cut off as the
    // CA restarted) held close() until the handshake timeout.
    const sockets = new Set<Socket>();
    listening.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    listening.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const { address, probe } = failedHandshakeOf(err, socket);
      if (admission && !probe) admission.failed(address);
      logger.debug({ err: err.code ?? err.message, client: address }, 'TLS handshake failed');
    });
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(config.listen.port, config.listen.host, () => {
        listening.off('error', reject);
        resolve();
      });
    });

    // Re-issue the server certificate at 2/3 of its lifetime, or at once when it is revoked; new
    // handshakes get the new one (a connection open already keeps its certificate until it closes).
    let rotation: NodeJS.Timeout | undefined;
    let rotating: Promise<void> | undefined;
    const rotateAfter = (delayMs: number) => {
      clearTimeout(rotation);
      rotation = setTimeout(() => void rotate(), delayMs);
      rotation.unref();
    };
    const rotate = (): Promise<void> =>
      (rotating ??= serverContext(issuer, material, config, store)
        .then(({ context, notAfter, serial }) => {
          listening.setSecureContext(context);
          serverSerial = serial;
          logger.info({ not_after: notAfter.toISOString(), serial }, 'CA server certificate re-issued');
          rotateAfter(untilRotation(notAfter));
        })
        .catch((err: unknown) => {
          logger.error({ err }, 'CA server certificate could not be re-issued; retrying in 60 s');
          rotateAfter(60_000);
        })
        .finally(() => (rotating = undefined)));
    rotateAfter(untilRotation(initial.notAfter));
    // Revoking the certificate the CA presents used to change nothing until its scheduled re-issue
    // (sidecars do not check the CA's certificate against the CRL): it is replaced, new key and all,
    // before the revocation is answered. A re-issue in flight is awaited first: its certificate may be the one revoked.
    reissueRevokedServerCertificate = async (revoked) => {
      await rotating;
      if (serverSerial === undefined || !revoked.includes(serverSerial)) return;
      logger.warn({ serial: serverSerial }, 'the CA server certificate was revoked: re-issuing it now');
      await rotate();
    };

    const port = (listening.address() as AddressInfo).port;
    const host = ['0.0.0.0', '::', ''].includes(config.listen.host) ? '127.0.0.1' : config.listen.host;
    const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    logger.info({ url, trust_domain: config.trust_domain, fingerprint: material.fingerprint }, 'warden CA listening');

    let closed: Promise<void> | undefined;
    return {
      url,
      port,
      trustDomain: config.trust_domain,
      rootPem: material.bundlePem,
      fingerprint: material.fingerprint,
      intermediatePem: material.intermediatePem,
      events,
      createToken: (request) => service.createToken(request, LOCAL),
      revoke: (request) => service.revoke(request, LOCAL),
      list: (query = {}) => service.list(query),
      listTokens: (query = {}) => service.listTokens(query),
      revokeTokens: (request) => service.revokeTokens(request, LOCAL),
      close() {
        closed ??= new Promise<void>((resolve) => {
          clearTimeout(rotation);
          onClose();
          listening.close(() => resolve());
          listening.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        })
          // Handlers whose client was cut off still finish (and write their audit row) before the
          // database closes; closing under them crashed the process.
          .then(() => (inFlight === 0 ? undefined : new Promise<void>((resolve) => (whenIdle = resolve))))
          .then(async () => {
            closeAudit();
            store.close();
            removeSink();
            await telemetry?.shutdown();
            logger.info('warden CA stopped');
            flushLogger(logger);
          });
        return closed;
      },
    };
  } catch (err) {
    onClose();
    closeAudit();
    server?.close();
    store.close();
    removeSink();
    void telemetry?.shutdown();
    throw err;
  }
}

/** Idle connections (none sending, none answered) are closed after this long. */
const IDLE_TIMEOUT_MS = 30_000;
/** A TLS handshake not done by then is cut (the sidecar's default `limits.handshake_timeout` too). */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Open connections at most (each costs a TLS session); further ones are closed on accept. */
const MAX_CONNECTIONS = 1024;
/** Open connections from one client address at most: no client takes all of MAX_CONNECTIONS. */
const MAX_CONNECTIONS_PER_CLIENT = 64;
/** A request's headers must be complete this long after its first byte. */
const HEADERS_TIMEOUT_MS = 10_000;
/** How often Node checks the headers and request timeouts of open connections. */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;
/** Anonymous refusals: at most one audit row per client address, action and refusal per minute (plus their count). */
const AUDIT_INTERVAL_MS = 60_000;
/** What a client waits before retrying a request refused with ERR_CA_STORE_UNAVAILABLE. */
const STORE_RETRY_AFTER_S = 5;

/** SQLite result codes (extended ones included) of a database that cannot be written for now. */
const STORE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|READONLY|FULL|IOERR)/;

/** The SQLite error in `error`'s cause chain that says the database cannot be written, if any. */
function storeFailure(error: unknown): Error | undefined {
  let e = error;
  for (let depth = 0; e instanceof Error && depth < 4; depth++, e = e.cause) {
    if (e.name === 'SqliteError' && STORE_UNAVAILABLE.test(String((e as NodeJS.ErrnoException).code))) return e;
  }
  return undefined;
}

/** The refusal for a handler's error: a locked/full/read-only database is 503, an unknown error 500. */
function asProblem(error: unknown): WardenError {
  if (isWardenError(error) && error.code !== 'ERR_INTERNAL') return error;
  const failure = storeFailure(error);
  if (failure) {
    return new WardenError('ERR_CA_STORE_UNAVAILABLE', { cause: failure, headers: { 'retry-after': String(STORE_RETRY_AFTER_S) } });
  }
  return isWardenError(error) ? error : new WardenError('ERR_INTERNAL', { cause: error });
}

/**
 * The store with audit writes that never throw: a row the database refuses (locked, full) is logged
 * (once until a write succeeds again), and neither fails a done operation nor a refusal's answer.
 */
function bestEffortAudit(store: CaStore, logger: Logger): CaStore {
  let failing = false;
  return {
    ...store,
    audit(entry) {
      try {
        store.audit(entry);
        failing = false;
      } catch (err) {
        if (!failing) logger.error({ err, action: entry.action, outcome: entry.outcome }, 'CA audit row not written; the CA keeps serving');
        failing = true;
      }
    },
  };
}

/** Refusals that say nothing about a credential are not worth an audit row. */
const QUIET = new Set<ErrorCode>(['ERR_CA_NOT_FOUND', 'ERR_METHOD_NOT_ALLOWED']);

/** The request target as a URL (dot segments resolved: what the CA routes by), or undefined when it is no path. */
function urlOf(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'https://ca.invalid');
  } catch {
    return undefined;
  }
}

interface AuditSubject {
  readonly requestId: string;
  /** The request's span context (with telemetry on): its events carry it, which correlates them with its span. */
  traceContext: Context | undefined;
  /** The request target's path as sent, cut as telemetry records it (logs and events), once per request. */
  readonly path: string;
  /** Read when the request arrives: a request destroyed later has no socket to ask. */
  readonly clientAddress: string;
  actor: string;
  action: string | undefined;
  subject: string | undefined;
}

/** Per path, the action (audit rows, span names) of each method it answers; GET also answers HEAD. */
const ROUTES: Record<string, { GET?: string; POST?: string }> = {
  [CA_PATHS.enroll]: { POST: 'enroll' },
  [CA_PATHS.renew]: { POST: 'renew' },
  [CA_PATHS.bundle]: { GET: 'bundle' },
  [CA_PATHS.crl]: { GET: 'crl' },
  [CA_PATHS.intermediate]: { GET: 'intermediate' },
  [CA_PATHS.adminTokens]: { POST: 'token.create', GET: 'token.list' },
  [CA_PATHS.adminTokenRevocations]: { POST: 'token.revoke' },
  [CA_PATHS.adminRevocations]: { POST: 'revoke' },
  [CA_PATHS.adminCertificates]: { GET: 'list' },
};

/** The action of a request (its span name); the path's first one for a method it does not answer. */
function actionOf(url: URL | undefined, method: string | undefined): string | undefined {
  const route = url && ROUTES[url.pathname];
  if (!route) return undefined;
  return (method === 'POST' ? route.POST : method === 'GET' || method === 'HEAD' ? route.GET : undefined) ?? Object.values(route)[0];
}

/** From this much intermediate life left, the CA logs an error (at startup, or when it gets there). */
const ISSUER_EXPIRY_WARNING_MS = 30 * 86_400_000;

const EXPIRY_MESSAGES = {
  intermediate: {
    stopped: 'the issuing CA certificate has expired or is about to: the CA issues no certificates; rotate it (warden ca init)',
    soon: 'the issuing CA certificate expires soon: rotate it (warden ca init) before it does',
  },
  root: {
    stopped:
      'the root CA certificate (bundle.pem) has expired or is about to: the CA issues no certificates and the mesh stops trusting its certificates; rotate the root (docs/mesh-identity.md#root-rotation)',
    soon: 'the root CA certificate (bundle.pem) expires soon: no certificate is issued past it; rotate the root (docs/mesh-identity.md#root-rotation) before it does',
  },
} as const;

/**
 * Errors in the log while there is time to rotate the intermediate (or the root): at startup or when
 * 30 days are left, and when issuing stops (MIN_ISSUER_LIFE_MS before its end). Returns the stop function.
 */
function watchIssuerExpiry(notAfter: Date, logger: Logger, which: keyof typeof EXPIRY_MESSAGES): () => void {
  let timer: NodeJS.Timeout | undefined;
  const messages = EXPIRY_MESSAGES[which];
  const check = (warned: boolean) => {
    const left = notAfter.getTime() - Date.now();
    const fields = { not_after: notAfter.toISOString(), certificate: which };
    if (left < MIN_ISSUER_LIFE_MS) {
      logger.error(fields, messages.stopped);
      return;
    }
    if (left <= ISSUER_EXPIRY_WARNING_MS && !warned) {
      logger.error(fields, messages.soon);
      warned = true;
    }
    const next = warned ? left - MIN_ISSUER_LIFE_MS : left - ISSUER_EXPIRY_WARNING_MS;
    timer = setTimeout(() => check(warned), Math.min(Math.max(next, 0), 2 ** 31 - 1)); // long waits re-check
    timer.unref();
  };
  check(false);
  return () => clearTimeout(timer);
}

function untilRotation(notAfter: Date): number {
  return Math.max(1_000, Math.min((notAfter.getTime() - Date.now()) * (2 / 3), 2 ** 31 - 1));
}

/** A fresh key and server certificate from the intermediate, recorded in the ledger as kind `server`. */
async function serverContext(
  issuer: Issuer,
  material: CaMaterial,
  config: CaConfig,
  store: CaStore,
): Promise<{ context: SecureContextOptions; notAfter: Date; serial: string }> {
  const keys = await generateKeyPair();
  const issued = await issuer.issue({
    publicKey: keys.publicKey,
    spiffeId: serverSpiffeId(config.trust_domain),
    dnsNames: config.server.dns_names,
    ipAddresses: config.server.ip_addresses,
    use: 'server',
    lifetimeMs: config.server.lifetime,
  });
  store.insertCertificate({
    serial: issued.serial,
    spiffe_id: issued.spiffeId,
    kind: 'server',
    not_before: issued.notBefore.getTime(),
    not_after: issued.notAfter.getTime(),
    pem: issued.pem,
    issued_at: Date.now(),
    key_id: keyIdOf(issued.certificate.publicKey),
  });
  return {
    context: {
      key: await exportPrivateKeyPem(keys.privateKey),
      cert: issued.pem + material.intermediatePem,
      // Client certificates are verified against the root, with the intermediate for clients that
      // send only their leaf.
      ca: [material.bundlePem, material.intermediatePem],
    },
    notAfter: issued.notAfter,
    serial: issued.serial,
  };
}

/** The admin certificate made by `warden ca init` enters the ledger on first start (revocable, listable). */
function recordAdmin(store: CaStore, material: CaMaterial): void {
  const admin = material.adminCert;
  const serial = canonicalSerial(admin.serialNumber);
  if (store.getCertificate(serial)) return;
  store.insertCertificate({
    serial,
    spiffe_id: adminSpiffeId(material.trustDomain),
    kind: 'admin',
    not_before: admin.notBefore.getTime(),
    not_after: admin.notAfter.getTime(),
    pem: `${admin.toString('pem')}\n`,
    issued_at: Date.now(),
    key_id: keyIdOf(admin.publicKey),
  });
}
