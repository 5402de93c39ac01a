/**
 * `Expect` (RFC 9110 §10.1.1): 100-continue is met (the handler sends 100 once the body is needed);
 * any other expectation is one the sidecar cannot meet, refused with 417 through the rescue like
 * every refusal. node:http answered it itself, and the h2 listener wrote a bare 417: no problem
 * document, security event, access line or span.
 */
import { WardenError } from '../errors.js';

/** What node:http takes for `Expect: 100-continue` (its continueExpression): any case, in a list. */
const CONTINUE_EXPECTED = /(?:^|\W)100-continue(?:$|\W)/i;

/**
 * The refusal for an expectation other than 100-continue, if any. `http10`: an HTTP/1.0 request,
 * whose Expect is ignored (RFC 9110 §10.1.1; node:http hands those over as plain requests).
 */
export function checkExpectation(expect: string | string[] | undefined, http10: boolean): WardenError | undefined {
  if (expect === undefined || http10) return undefined;
  const value = Array.isArray(expect) ? expect.join(', ') : expect;
  if (CONTINUE_EXPECTED.test(value)) return undefined;
  return new WardenError('ERR_EXPECTATION_FAILED', {
    rule: 'http.expect',
    detail: 'The only expectation met here is "100-continue": send the request without this Expect header.',
  });
}
