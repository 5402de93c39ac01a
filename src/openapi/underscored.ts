/**
 * A name with some characters read as `_` (PHP's ` `, `.` and unclosed `[`: name-readings.ts).
 * A global regular-expression replace costs ~100–200 ns a match: a 9 MiB form key of spaces held the
 * event loop a second (review rt26 F3). A long name is rewritten in its UTF-16 bytes instead, in one
 * pass whatever it holds (lone surrogates kept: Node's utf16le codec copies code units).
 */
const SHORT = 1024;

export function underscored(name: string, pattern: RegExp, replaced: (c: number) => boolean): string {
  if (name.length < SHORT) return name.replace(pattern, '_');
  const bytes = Buffer.from(name, 'utf16le');
  for (let i = 0; i < bytes.length; i += 2) if (bytes[i + 1] === 0 && replaced(bytes[i] as number)) bytes[i] = 0x5f;
  return bytes.toString('utf16le');
}
