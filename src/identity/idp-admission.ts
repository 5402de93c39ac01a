/**
 * Who answers for an IdP call about to be made on a request's behalf. The failed-authentication
 * limit (stages/failed-authn-limit.ts) sets `current` for the synchronous extent of its authn
 * stage's run, and the introspector asks it on a cache miss, just before it would call the IdP: a
 * cached answer, a negative one, or a call already in flight for the same token never asks, so
 * they stay free. A slot rather than a parameter, so that the cached path allocates nothing and
 * the token runtime between the two need not know: it is only ever read synchronously inside
 * that run (JavaScript runs one request's synchronous code at a time).
 */
import type { WardenError } from '../errors.js';

export interface IdpAdmission {
  /** undefined: the call may go out (reserved to the request's client); otherwise why not (429). */
  admit(): WardenError | undefined;
}

export const idpAdmission: { current: IdpAdmission | undefined } = { current: undefined };
