/** The key of everything cached about a token: SHA-256(issuer ‖ token), hex. The token itself is never kept. */
import { createHash } from 'node:crypto';

export function tokenHash(issuer: string, token: string): string {
  return createHash('sha256').update(issuer).update('\n').update(token).digest('hex');
}
