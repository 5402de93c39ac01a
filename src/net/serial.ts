/** Certificate serials as the CA's ledger and the revocation checks key them (no X.509 library needed). */

/** Serial as the ledger keys it: lower-case hex without leading zeros (input may use colons). */
export function canonicalSerial(hex: string): string {
  return hex
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}
