/**
 * A circuit breaker for calls to an identity provider: after `failures` consecutive failures it
 * opens and refuses calls for `openFor` ms (so an outage costs each request nothing, instead of a
 * timeout); then one trial call is let through (half-open), whose result closes or re-opens it.
 * A call that says nothing about the IdP's health — a 429, back-pressure from an IdP that is up —
 * is `neither`: it counts neither way (it only ends a half-open trial, so another may go).
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreaker {
  /** May a call go out now? In half-open state only one trial at a time gets true. */
  allow(): boolean;
  success(): void;
  failure(): void;
  /** The call ended without telling whether the IdP is healthy (it asked us to slow down). */
  neither(): void;
  readonly state: BreakerState;
}

export function createCircuitBreaker(options: { failures: number; openFor: number; now?: () => number }): CircuitBreaker {
  const now = options.now ?? Date.now;
  let consecutive = 0;
  let openedAt = 0;
  let open = false;
  let trialInFlight = false;

  const state = (): BreakerState => (!open ? 'closed' : now() - openedAt >= options.openFor ? 'half-open' : 'open');

  return {
    get state() {
      return state();
    },
    allow() {
      const s = state();
      if (s === 'closed') return true;
      if (s === 'open' || trialInFlight) return false;
      trialInFlight = true;
      return true;
    },
    success() {
      consecutive = 0;
      open = false;
      trialInFlight = false;
    },
    neither() {
      trialInFlight = false;
    },
    failure() {
      trialInFlight = false;
      consecutive++;
      if (open || consecutive >= options.failures) {
        open = true;
        openedAt = now();
      }
    },
  };
}
