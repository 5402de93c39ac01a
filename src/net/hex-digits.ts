/** Hex digits as percent-escapes spell them (`%2F`, `%2f`), read from character codes or bytes. */

export function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
}

/** The digit's value; only for a code `isHexDigit` accepts. */
export function hexDigitValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}
