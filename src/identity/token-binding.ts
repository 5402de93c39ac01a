/**
 * Sender-constrained tokens: a token its issuer bound to a key (DPoP, RFC 9449: `cnf.jkt`,
 * `token_type: DPoP`) or to a client certificate (RFC 8705: `cnf.x5t#S256`) is accepted only from
 * whoever proves it holds that key or certificate, and only with the scheme that says so. Fail
 * closed: a `cnf` this sidecar cannot check (another member, not an object, empty) refuses the token.
 *
 * Checked on every request, cache hits included: one principal serves every request and every
 * connection presenting its token, and the proof (a certificate, a DPoP proof) belongs to each
 * request. A token without `cnf` nor `token_type: DPoP`, sent without the DPoP scheme, costs two
 * property reads.
 */
import { createHash } from 'node:crypto';
import { WardenError } from '../errors.js';
import type { PeerIdentity } from '../mesh/peer-identity.js';
import type { EventAttributes } from '../telemetry/events.js';
import type { DpopProofs, DpopRequest } from './dpop-proof.js';
import type { Principal } from './principal.js';

/** What the token is bound to (both, when the issuer bound it to both). */
interface Binding {
  readonly jkt: string | undefined;
  readonly x5t: string | undefined;
  /** Whose share of the DPoP replay cache its proofs take (callerOf); set with `jkt`. */
  readonly caller: string | undefined;
}

/**
 * The caller a DPoP token's proofs are counted against: its subject at its issuer — DPoP is mostly
 * for public clients, whose users share one client_id, so one user flooding proofs would refuse
 * all of them — else its client, else its key. Hashed: a `sub` may be kilobytes long.
 */
function callerOf(p: Principal, jkt: string): string {
  const [kind, id] = p.subject !== undefined ? ['sub', p.subject] : p.clientId !== undefined ? ['client', p.clientId] : ['jkt', jkt];
  return createHash('sha256').update(p.issuerId).update('\0').update(kind).update('\0').update(id).digest('base64url');
}

/** The parts of a request the binding is checked against (a subset of the pipeline's RequestContext). */
export interface BoundRequest {
  readonly method: string;
  readonly path: string;
  readonly peer: PeerIdentity;
  readonly headers: { readonly [name: string]: string | string[] | undefined };
  /** Its X-Forwarded-Proto / -Host: the scheme and authority the client addressed (see dpop-htu.ts). */
  readonly upstreamHeaders: { readonly [name: string]: string | string[] | undefined };
}

export interface TokenBinding {
  /** The refusal when `p`'s token is bound and the request does not prove the binding; undefined otherwise. */
  check(
    request: BoundRequest,
    p: Principal,
    token: string,
    dpopScheme: boolean,
  ): WardenError | undefined | Promise<WardenError | undefined>;
}

const isDpopType = (tokenType: unknown): boolean =>
  typeof tokenType === 'string' && tokenType.length === 4 && tokenType.toLowerCase() === 'dpop';

const attributesOf = (p: Principal): EventAttributes => ({
  'warden.token.issuer': p.issuerId,
  'warden.token.hash': p.tokenHash.slice(0, 16),
});

const single = (v: string | string[] | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

export function createTokenBinding(dpop: DpopProofs): TokenBinding {
  // Refusals about DPoP answer with a DPoP challenge; the others get rescue's Bearer one (bearerChallenge).
  const dpopChallenge = dpop.challenge('invalid_token', 'Access token binding not proven');
  const unbound = (rule: string, detail: string, p: Principal, dpopRelated: boolean) =>
    new WardenError('ERR_AUTHN_TOKEN_UNBOUND', {
      rule,
      detail,
      attributes: attributesOf(p),
      ...(dpopRelated ? { headers: { 'www-authenticate': dpopChallenge } } : {}),
    });

  // A principal is immutable: its binding is read from its claims once.
  const bindings = new WeakMap<Principal, Binding | WardenError>();

  function parse(p: Principal): Binding | WardenError {
    const { cnf, token_type: tokenType } = p.claims;
    let jkt: string | undefined;
    let x5t: string | undefined;
    if (cnf !== undefined) {
      if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf))
        return unbound('cnf.format', 'The access token carries a confirmation (cnf) this service cannot check.', p, false);
      for (const [member, value] of Object.entries(cnf as Record<string, unknown>)) {
        const text = typeof value === 'string' && value.length > 0 ? value : undefined;
        if (member === 'jkt' && text) jkt = text;
        else if (member === 'x5t#S256' && text) x5t = text;
        // jwk, jku, kid, jwe (RFC 7800), or anything newer: a binding nobody here can prove.
        else return unbound('cnf.unknown', 'The access token carries a confirmation (cnf) this service cannot check.', p, false);
      }
      if (jkt === undefined && x5t === undefined)
        return unbound('cnf.empty', 'The access token carries an empty confirmation (cnf).', p, false);
    }
    if (jkt === undefined && isDpopType(tokenType))
      return unbound('cnf.jkt', 'The access token is of type DPoP but names no key (cnf.jkt).', p, true);
    return { jkt, x5t, caller: jkt === undefined ? undefined : callerOf(p, jkt) };
  }

  return {
    check(request, p, token, dpopScheme) {
      const { cnf, token_type: tokenType } = p.claims;
      if (cnf === undefined && !isDpopType(tokenType)) {
        // RFC 9449 §7.1: the DPoP scheme says the token is DPoP-bound; this one is a bearer token.
        // (A DPoP header beside a Bearer token is ignored, §7.2: the client may send proofs by default.)
        return dpopScheme
          ? unbound('dpop.not_bound', 'The access token is not DPoP-bound: send it with the Bearer scheme.', p, true)
          : undefined;
      }
      let binding = bindings.get(p);
      if (binding === undefined) bindings.set(p, (binding = parse(p)));
      if (binding instanceof WardenError) return binding;
      if (binding.x5t !== undefined) {
        // RFC 8705 §3: the certificate of this connection, as verified at its handshake.
        const peer = request.peer;
        if (!peer.verified || peer.sha256 === undefined || Buffer.from(peer.sha256, 'hex').toString('base64url') !== binding.x5t)
          return unbound('cnf.x5t', 'The access token is bound to a client certificate this connection did not present.', p, false);
      }
      if (binding.jkt === undefined) {
        return dpopScheme
          ? unbound('dpop.not_bound', 'The access token is not DPoP-bound: send it with the Bearer scheme.', p, true)
          : undefined;
      }
      // RFC 9449 §7.2: a DPoP-bound token sent as a bearer token is refused (the thief's way in).
      if (!dpopScheme)
        return unbound('dpop.scheme', 'The access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof.', p, true);
      const up = request.upstreamHeaders;
      const proofRequest: DpopRequest = {
        method: request.method,
        path: request.path,
        scheme: single(up['x-forwarded-proto']),
        authority: single(up['x-forwarded-host']),
        proof: request.headers.dpop,
      };
      return dpop.check(proofRequest, token, binding.jkt, attributesOf(p), binding.caller);
    },
  };
}
