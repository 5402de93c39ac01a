/** The media type of a Content-Type header: lower case, without parameters ("" when absent). */
export function mediaTypeOf(contentType: string | string[] | number | undefined): string {
  const value = Array.isArray(contentType) ? (contentType[0] ?? '') : String(contentType ?? '');
  const semicolon = value.indexOf(';');
  return (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase();
}
