/**
 * What the replicas of one service write to Redis, authenticated: HMAC-SHA256 under a key the
 * replicas share and nothing else that writes to that Redis has (docs/tokens.md, "Who can write to
 * Redis"). Each tag covers the kind of entry, its Redis key or channel and its value, so an entry
 * cannot be moved to another token, kind or service. Anything whose tag does not verify is not
 * ours: a stored answer is then asked of the IdP again, a mark or a message is ignored.
 *
 * The key is `tokens.shared.key` when set, else derived (HKDF) from the introspection client
 * credentials: every replica has them, a process that can only reach Redis does not.
 */
import { createHmac, createPrivateKey, hkdfSync, timingSafeEqual } from 'node:crypto';
import { MAX_SECRET_FILE_BYTES, readFileBounded } from '../config/bounded-file.js';
import type { TokensConfig } from '../config/types.js';

/** base64url of 32 bytes. */
const TAG_CHARS = 43;
const HKDF_SALT = 'warden tokens.shared';

export interface SharedSeal {
  /** The stored value of an introspection answer the IdP gave at `fetchedAt` (ms epoch). */
  sealAnswer(key: string, claims: Record<string, unknown>, fetchedAt: number): string;
  /** The answer in a stored value, or undefined when it is not one this service wrote there. */
  openAnswer(key: string, value: string): { claims: Record<string, unknown>; fetchedAt: number } | undefined;
  /** The stored value of a revocation mark lasting until `untilMs`. */
  sealMark(key: string, untilMs: number): string;
  /** The end of a mark (ms epoch), or undefined when it is not one this service wrote there. */
  openMark(key: string, value: string): number | undefined;
  /** The message announcing a revocation on `channel`. */
  sealMessage(channel: string, hash: string, untilMs: number): string;
  openMessage(channel: string, message: string): { hash: string; untilMs: number } | undefined;
}

export function createSharedSeal(secret: Buffer): SharedSeal {
  const tag = (kind: string, name: string, data: string) =>
    createHmac('sha256', secret).update(`${kind}\n${name}\n${data}`).digest('base64url');
  const verified = (kind: string, name: string, data: string, given: string): boolean => {
    if (given.length !== TAG_CHARS) return false;
    return timingSafeEqual(Buffer.from(tag(kind, name, data)), Buffer.from(given));
  };
  // `<tag>.<data>`: the tag first, so data may hold dots.
  const split = (value: string): [string, string] | undefined =>
    value.length > TAG_CHARS && value[TAG_CHARS] === '.' ? [value.slice(0, TAG_CHARS), value.slice(TAG_CHARS + 1)] : undefined;
  const time = (s: string): number | undefined => (/^\d{1,16}$/.test(s) ? Number(s) : undefined);

  return {
    sealAnswer(key, claims, fetchedAt) {
      const data = `${Math.floor(fetchedAt)}.${JSON.stringify(claims)}`;
      return `${tag('answer', key, data)}.${data}`;
    },
    openAnswer(key, value) {
      const parts = split(value);
      if (!parts || !verified('answer', key, parts[1], parts[0])) return undefined;
      const dot = parts[1].indexOf('.');
      const fetchedAt = time(parts[1].slice(0, dot));
      if (dot < 0 || fetchedAt === undefined) return undefined;
      try {
        const claims: unknown = JSON.parse(parts[1].slice(dot + 1));
        return typeof claims === 'object' && claims !== null && !Array.isArray(claims)
          ? { claims: claims as Record<string, unknown>, fetchedAt }
          : undefined;
      } catch {
        return undefined;
      }
    },
    sealMark(key, untilMs) {
      const data = String(Math.ceil(untilMs));
      return `${tag('mark', key, data)}.${data}`;
    },
    openMark(key, value) {
      const parts = split(value);
      return parts && verified('mark', key, parts[1], parts[0]) ? time(parts[1]) : undefined;
    },
    sealMessage(channel, hash, untilMs) {
      const data = `${hash} ${Math.ceil(untilMs)}`;
      return `${data} ${tag('message', channel, data)}`;
    },
    openMessage(channel, message) {
      const m = /^([0-9a-f]{64}) (\d{1,16}) ([A-Za-z0-9_-]+)$/.exec(message);
      if (!m || !verified('message', channel, `${m[1]} ${m[2]}`, m[3] as string)) return undefined;
      return { hash: m[1] as string, untilMs: Number(m[2]) };
    },
  };
}

/**
 * The key of a service's shared state: from `tokens.shared.key`, or else from every introspecting
 * issuer's client credentials (the secret, or the private key of private_key_jwt), which the
 * replicas of one service share. Undefined when there is neither (the configuration check refuses
 * that). Read once, when the token runtime is built.
 */
export function sharedStateSecret(tokens: TokensConfig): Buffer | undefined {
  const configured = tokens.shared?.key;
  const parts: Buffer[] = [];
  if (configured !== undefined) parts.push(Buffer.from(`key\n${configured}`));
  else {
    // In issuer id order, so that reordering tokens.issuers does not change the key.
    const introspecting = tokens.issuers.filter((i) => i.introspection).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const { issuer, introspection } of introspecting) {
      const cfg = introspection as NonNullable<typeof introspection>;
      const credential =
        cfg.auth_method === 'private_key_jwt' && cfg.private_key
          ? createPrivateKey(readFileBounded(cfg.private_key, MAX_SECRET_FILE_BYTES)).export({ type: 'pkcs8', format: 'der' })
          : Buffer.from(cfg.client_secret ?? '');
      if (credential.length === 0) continue;
      for (const field of [Buffer.from(issuer), Buffer.from(cfg.client_id), credential]) {
        const length = Buffer.alloc(4);
        length.writeUInt32BE(field.length);
        parts.push(length, field);
      }
    }
    if (parts.length === 0) return undefined;
  }
  return Buffer.from(hkdfSync('sha256', Buffer.concat(parts), HKDF_SALT, 'v1', 32));
}
