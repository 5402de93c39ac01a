/**
 * The shortest signing-key rotation: a key is published this long before it signs, for verifiers
 * that do not refetch the JWKS within their cooldown (jose: 30 s) and caches that keep it for its
 * max-age (60 s). The key ring (src/identity/signing-keys.ts) never rotates sooner, and the
 * configuration check refuses a shorter `tokens.mint.key_rotation` rather than raise it silently.
 */
export const MIN_KEY_ROTATION_MS = 90_000;
