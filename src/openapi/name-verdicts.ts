/**
 * A check of a name (a cookie's, a query key's) kept for the names seen before. A browser sends the
 * same few cookies on every request, and reading each name as PHP, qs and ASP.NET Core do costs
 * ~0.6 µs a cookie per request. Bounded per operation (or token source): at most MEMO_LIMIT names
 * of at most MEMO_NAME_LENGTH characters, the first ones seen; once full, a new name is checked
 * each time and not kept. Clearing instead let a client sending many new names (a 16 KiB Cookie
 * header holds ~2 700) empty it on every request, costing the next requests' usual names their
 * kept verdicts too: a client spraying names costs its own CPU, not memory or others' hits.
 */
const MEMO_LIMIT = 64;
const MEMO_NAME_LENGTH = 64;

export function memoizedByName<T>(check: (name: string) => T | undefined): (name: string) => T | undefined {
  const memo = new Map<string, T | null>();
  return (name) => {
    const kept = memo.get(name);
    if (kept !== undefined) return kept ?? undefined;
    const verdict = check(name);
    if (name.length <= MEMO_NAME_LENGTH && memo.size < MEMO_LIMIT) memo.set(name, verdict ?? null);
    return verdict;
  };
}
