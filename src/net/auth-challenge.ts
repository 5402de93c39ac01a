/** A realm fit for a quoted-string in WWW-Authenticate (RFC 9110 §11.6.1): no quotes, backslashes or control characters. */
export function headerSafeRealm(name: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what must go
  return name.replace(/["\\\x00-\x1f\x7f]/g, '');
}
