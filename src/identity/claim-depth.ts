/**
 * How deeply a token's claims may nest. Claims travel into code that walks them recursively —
 * JSON.stringify (the cache's size estimate, the shared state's seal, jose's SignJWT when the
 * minted token is signed) — and an IdP answer or JWT nested thousands deep overflowed the stack
 * there: 500 on every request. Real claims nest a few levels (`realm_access.roles`, an `act`
 * chain); anything deeper than this is refused before any of that code sees it.
 */

/** Levels of objects and arrays, the claims object itself being the first. */
export const MAX_CLAIM_DEPTH = 32;

/**
 * Whether `value` nests objects or arrays more than `limit` levels deep (`{}` is one level,
 * `{a: {}}` two). Iterative, so any depth is measured without recursion, and it stops at the
 * first level beyond the limit; a normal payload costs one visit per object or array in it.
 */
export function nestsDeeperThan(value: unknown, limit: number = MAX_CLAIM_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const pending: unknown[] = [value];
  const depths: number[] = [1];
  while (pending.length > 0) {
    const node = pending.pop() as object;
    const depth = depths.pop() as number;
    if (depth > limit) return true;
    const children: readonly unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        pending.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}
