/**
 * A check of a name (a cookie's) kept for the names seen before. A browser sends the same few
 * cookies on every request, and reading each name as PHP, qs and ASP.NET Core do cost ~1 µs a
 * cookie per request (7 µs for six). Bounded per operation: at most MEMO_LIMIT names of at most
 * MEMO_NAME_LENGTH characters (cleared when full), so a client spraying names costs CPU, not memory.
 */
const MEMO_LIMIT = 64;
const MEMO_NAME_LENGTH = 64;

export function memoizedByName<T>(check: (name: string) => T | undefined): (name: string) => T | undefined {
  const memo = new Map<string, T | null>();
  return (name) => {
    const kept = memo.get(name);
    if (kept !== undefined) return kept ?? undefined;
    const verdict = check(name);
    if (name.length <= MEMO_NAME_LENGTH) {
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(name, verdict ?? null);
    }
    return verdict;
  };
}
