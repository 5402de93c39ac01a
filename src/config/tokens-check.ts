/**
 * Checks of the `tokens` section that need more than the schema: references between keys, secrets
 * that the chosen client authentication needs, key files that load, bounded leeway.
 */
import { createPrivateKey } from 'node:crypto';
import { FileTooLargeError, MAX_SECRET_FILE_BYTES, NotAFileError, readFailure, readFileBounded } from './bounded-file.js';
import type { ConfigIssue } from './config-error.js';
import { MIN_KEY_ROTATION_MS } from './key-rotation.js';
import { routeSettingsOf } from './route-settings.js';
import { NOT_ACCESS_TOKEN_TYPES } from './token-kinds.js';
import type { SidecarConfig } from './types.js';

type IssueAt = (segments: readonly (string | number)[], message: string) => ConfigIssue;

/** The largest `tokens.leeway`; a revocation lasts this long past the token's exp, whatever a reload sets. */
export const MAX_LEEWAY_MS = 5 * 60_000;
/** Each write-back pass reads one Redis key per revocation held: not a busy loop. */
const MIN_WRITE_BACK_MS = 100;

export function* tokensIssues(config: SidecarConfig, issue: IssueAt): Generator<ConfigIssue> {
  const tokens = config.tokens;
  if (!tokens) {
    // The operations were once left out: scopes written there without a tokens section were dropped,
    // and the operation served anyone.
    for (const {
      at,
      settings: { authn, scopes },
    } of routeSettingsOf(config)) {
      if (authn) yield issue([...at, 'authn'], 'needs a tokens section (the issuers tokens are checked against)');
      if (scopes) yield issue([...at, 'scopes'], 'needs a tokens section: scopes come from validated tokens');
    }
    return;
  }
  if (tokens.leeway > MAX_LEEWAY_MS)
    yield issue(['tokens', 'leeway'], `must be at most 5m (${MAX_LEEWAY_MS} ms): clock skew, not a grace period`);
  // Every proof accepted is remembered for max_age + clock_skew: a long window is a large replay cache.
  if (tokens.dpop.max_age > MAX_LEEWAY_MS)
    yield issue(['tokens', 'dpop', 'max_age'], `must be at most 5m (${MAX_LEEWAY_MS} ms): a proof is fresh, not a credential`);
  if (tokens.dpop.clock_skew > MAX_LEEWAY_MS)
    yield issue(['tokens', 'dpop', 'clock_skew'], `must be at most 5m (${MAX_LEEWAY_MS} ms): clock skew, not a grace period`);
  const seenSources = new Map<string, number>();
  for (const [i, source] of tokens.sources.entries()) {
    const key = `${source.from}:${'name' in source ? source.name.toLowerCase() : ''}`;
    const first = seenSources.get(key);
    if (first !== undefined)
      yield issue(['tokens', 'sources', i], `repeats tokens.sources[${first}]: every token would be read twice and refused`);
    seenSources.set(key, i);
    if (source.from !== 'authorization' && !('name' in source && source.name)) {
      yield issue(['tokens', 'sources', i, 'name'], `is required for from: ${source.from} (the ${source.from} name to read)`);
    }
  }
  const ids = new Map<string, number>();
  const issuerUrls = new Map<string, number>();
  for (const [i, iss] of tokens.issuers.entries()) {
    const at = ['tokens', 'issuers', i];
    const first = ids.get(iss.id);
    if (first !== undefined) yield issue([...at, 'id'], `duplicate issuer id "${iss.id}" (first used by tokens.issuers[${first}])`);
    else ids.set(iss.id, i);
    // A JWT is attributed by its iss alone: a second entry would silently take every token of the first.
    const sameIssuer = issuerUrls.get(iss.issuer);
    if (sameIssuer !== undefined) {
      yield issue(
        [...at, 'issuer'],
        `repeats tokens.issuers[${sameIssuer}].issuer: one entry per IdP (list every audience in its audience, restrict routes with scopes)`,
      );
    } else issuerUrls.set(iss.issuer, i);
    for (const [j, type] of (iss.introspection?.token_types ?? []).entries()) {
      if (NOT_ACCESS_TOKEN_TYPES.has(type.toLowerCase()))
        yield issue(
          [...at, 'introspection', 'token_types', j],
          `"${type}" is not an access token's type: such tokens are always refused (list e.g. "Bearer")`,
        );
    }
    if (iss.audience.length === 0 && !iss.allow_any_audience) {
      yield issue([...at, 'audience'], 'is required: list the aud values meant for this service (or set allow_any_audience: true)');
    }
    if (!iss.discovery && !iss.jwks_uri && !iss.introspection?.endpoint) {
      yield issue([...at, 'discovery'], 'is off, so jwks_uri or introspection.endpoint must be given');
    }
    const intro = iss.introspection;
    if (!intro) continue;
    if (intro.auth_method === 'private_key_jwt') {
      if (!intro.private_key) {
        yield issue([...at, 'introspection', 'private_key'], 'is required for auth_method private_key_jwt (a PKCS#8 PEM file)');
      } else {
        try {
          createPrivateKey(readFileBounded(intro.private_key, MAX_SECRET_FILE_BYTES));
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          yield issue(
            [...at, 'introspection', 'private_key'],
            (e.code?.startsWith('E') && e.syscall) || e instanceof FileTooLargeError || e instanceof NotAFileError
              ? `cannot read ${intro.private_key} (${readFailure(e)})`
              : `is not a PEM private key (${e.message})`,
          );
        }
      }
    } else if (!intro.client_secret) {
      yield issue(
        [...at, 'introspection', 'client_secret'],
        `is required for auth_method ${intro.auth_method} (use \${ENV} or \${file:…})`,
      );
    }
  }
  const checkIssuerRefs = function* (list: readonly string[], at: (string | number)[]) {
    for (const [j, id] of list.entries())
      if (!ids.has(id)) yield issue([...at, j], `unknown issuer id "${id}" (known: ${[...ids.keys()].join(', ')})`);
  };
  yield* checkIssuerRefs(tokens.authn.issuers, ['tokens', 'authn', 'issuers']);
  const introspecting = tokens.issuers.filter((i) => i.introspection).map((i) => i.id);
  // What the replicas store in Redis is authenticated under a key only they hold: without an
  // introspection client there is no credential to derive it from.
  if (tokens.shared && tokens.shared.key === undefined && introspecting.length === 0) {
    yield issue(
      ['tokens', 'shared', 'key'],
      'is required when no issuer introspects: the entries in Redis are authenticated with it (the same secret on every replica, e.g. ${file:…})',
    );
  }
  // The ring never rotates sooner (a key signs only once it has been published that long):
  // a shorter value was raised without a word.
  if (tokens.mint.key_rotation < MIN_KEY_ROTATION_MS)
    yield issue(
      ['tokens', 'mint', 'key_rotation'],
      `must be at least ${MIN_KEY_ROTATION_MS / 1000}s: a key is published that long before it signs, for verifiers that cache the JWKS`,
    );
  if (tokens.shared && tokens.shared.write_back < MIN_WRITE_BACK_MS)
    yield issue(['tokens', 'shared', 'write_back'], `must be at least ${MIN_WRITE_BACK_MS}ms (each pass reads a key per revocation held)`);
  if (tokens.authn.mode === 'introspect' && introspecting.length === 0) {
    yield issue(['tokens', 'authn', 'mode'], 'is "introspect" but no issuer has an introspection client (tokens.issuers[].introspection)');
  }
  // An opaque token says nothing of its issuer: with two introspecting issuers in reach, every such
  // token went to the first, the second's were refused as inactive and sent to an IdP that never
  // issued them.
  const introspectedBy = (mode: string, issuers: readonly string[]) =>
    mode === 'jwt' || mode === 'off' ? [] : introspecting.filter((id) => issuers.length === 0 || issuers.includes(id));
  const ambiguity = (reached: readonly string[]) =>
    `lets opaque tokens reach ${reached.length} issuers that introspect (${reached.join(', ')}), and an opaque token does not say whose it is: name one in authn.issuers (a route per issuer), or take JWTs only there (authn.mode: jwt)`;
  const globalReach = introspectedBy(tokens.authn.mode, tokens.authn.issuers);
  if (globalReach.length > 1) yield issue(['tokens', 'authn', 'issuers'], ambiguity(globalReach));
  for (const {
    at,
    settings: { authn, scopes },
  } of routeSettingsOf(config)) {
    if (authn?.mode === 'introspect' && introspecting.length === 0) {
      yield issue([...at, 'authn', 'mode'], 'is "introspect" but no issuer has an introspection client (tokens.issuers[].introspection)');
    }
    if (authn?.issuers) yield* checkIssuerRefs(authn.issuers, [...at, 'authn', 'issuers']);
    const mode = authn?.mode ?? tokens.authn.mode;
    if (authn && (authn.mode !== undefined || authn.issuers !== undefined)) {
      const reach = introspectedBy(mode, authn.issuers ?? tokens.authn.issuers);
      if (reach.length > 1) yield issue([...at, 'authn', 'issuers'], ambiguity(reach));
    }
    if (scopes && mode === 'off') yield issue([...at, 'scopes'], 'needs authn: scopes cannot be checked on a route with authn mode "off"');
  }
}
