/**
 * Bounds on what a caller chooses that telemetry copies: a request path may be as long as
 * max_header_bytes allows (tens of KB), and it went whole into every span, span event and security
 * event, so a full export queue (2 048 + 512 records per signal) held ~80 MiB of paths from one
 * client's refused requests. The user agent is cut the same way (rescue.ts).
 */
export const MAX_PATH_ATTRIBUTE = 1024;

/** The path as telemetry records it: its first MAX_PATH_ATTRIBUTE characters. */
export const pathAttribute = (path: string): string => (path.length > MAX_PATH_ATTRIBUTE ? path.slice(0, MAX_PATH_ATTRIBUTE) : path);
