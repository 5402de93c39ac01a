/**
 * Bounds on what a caller chooses that telemetry copies: a request path may be as long as
 * max_header_bytes allows (tens of KB), and it went whole into every span, span event and security
 * event, so a full export queue (2 048 + 512 records per signal) held ~80 MiB of paths from one
 * client's refused requests. The user agent is cut the same way (rescue.ts).
 */
export const MAX_PATH_ATTRIBUTE = 1024;

/**
 * A `;name=value` path parameter's value: a query by another name (Java's `;jsessionid=`, a token as
 * `;access_token=`), which telemetry kept whole while it drops the `?` query (red team 29). One pass;
 * each `;` starts one bounded look.
 */
const PATH_PARAMETER_VALUE = /(;[^;=/]*=)[^;/]*/g;

/**
 * The path as telemetry records it: its first MAX_PATH_ATTRIBUTE characters, the values of its
 * `;name=value` parameters shown as `*` (`/x;jsessionid=*`).
 */
export const pathAttribute = (path: string): string =>
  withPathParametersMasked(path.length > MAX_PATH_ATTRIBUTE ? path.slice(0, MAX_PATH_ATTRIBUTE) : path);

/** `path` with the values of its `;name=value` parameters shown as `*`: also for logged headers (logger.ts). */
export const withPathParametersMasked = (path: string): string => (path.includes(';') ? path.replace(PATH_PARAMETER_VALUE, '$1*') : path);

/** The most characters of any other string an event carries (names, ids, codes, a refusal's detail). */
export const MAX_EVENT_ATTRIBUTE = 256;

/** A SPIFFE ID's most bytes (the SPIFFE ID specification): an identity is never cut into another. */
const MAX_SPIFFE_ID = 2048;

/** Attributes longer by design: the path (as above); the operator's own configuration file; SPIFFE IDs. */
const LONGER: Readonly<Record<string, number>> = {
  'url.path': MAX_PATH_ATTRIBUTE,
  'warden.config.file': MAX_PATH_ATTRIBUTE,
  'warden.spiffe.id': MAX_SPIFFE_ID,
  'warden.peer.id': MAX_SPIFFE_ID,
  'warden.peer.presented_id': MAX_SPIFFE_ID,
};

/** A refused reload's detail names the configuration's errors (the operator's file, not a caller's text). */
const RELOAD_DETAIL = 2000;

/**
 * Cuts an event's string attributes to their bounds, in place: the one place every event passes
 * (EventBus.emit), so no source can put a caller's text into the log line, the console feed and the
 * OTLP record whole. A waf detail from a name `x#…` carried 1 MB into each.
 */
export function boundEventAttributes(name: string, attributes: Record<string, unknown>): void {
  for (const key of Object.keys(attributes)) {
    const value = attributes[key];
    if (typeof value !== 'string') continue;
    const max = key === 'warden.detail' && name === 'warden.config.reload_failed' ? RELOAD_DETAIL : (LONGER[key] ?? MAX_EVENT_ATTRIBUTE);
    if (value.length > max) attributes[key] = value.slice(0, max);
  }
}
