/**
 * When to renew: at `renewAt` of the certificate's lifetime ± `jitter` (so replicas enrolled together
 * do not renew together), and while the CA fails, again after an exponential, jittered backoff capped
 * at `maxBackoff` — the current certificate stays in use meanwhile.
 */

export interface RenewalPolicy {
  renewAt: number;
  jitter: number;
  maxBackoff: number;
}

/** Milliseconds from `now` until the planned renewal of a certificate valid [notBefore, notAfter]. */
export function renewalDelay(notBefore: Date, notAfter: Date, now: number, policy: RenewalPolicy, random = Math.random): number {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const fraction = policy.renewAt + (random() * 2 - 1) * policy.jitter;
  return Math.max(0, Math.round(notBefore.getTime() + lifetime * fraction - now));
}

/** Delay before retry number `attempt` (0-based): 1 s, 2 s, 4 s … capped, each between half and all of it. */
export function backoffDelay(attempt: number, maxBackoff: number, random = Math.random): number {
  const ceiling = Math.min(maxBackoff, 1000 * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** True in the last 10 % of the lifetime: time to shout. */
export function isExpiring(notBefore: Date, notAfter: Date, now: number): boolean {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return notAfter.getTime() - now < lifetime * 0.1;
}

export interface RenewalScheduler {
  /** Plans the next renewal from the current certificate (after start and after each renewal). */
  reschedule(): void;
  /** Renews now (the certificate was revoked), unless a renewal is under way. */
  renewNow(): void;
  readonly nextAt: Date | undefined;
  stop(): void;
}

export interface RenewalSchedulerOptions {
  policy: RenewalPolicy;
  current(): { notBefore: Date; notAfter: Date };
  /** Renews; throws when the CA fails or refuses. */
  renew(): Promise<void>;
  onFailure(err: unknown, retryInMs: number, attempt: number): void;
}

export function createRenewalScheduler(options: RenewalSchedulerOptions): RenewalScheduler {
  let timer: NodeJS.Timeout | undefined;
  let nextAt: Date | undefined;
  let due = 0;
  let stopped = false;
  let attempt = 0;
  let running = false;

  const plan = (delay: number) => {
    clearTimeout(timer);
    if (stopped) return;
    due = Date.now() + delay;
    nextAt = new Date(due);
    // Node timers overflow past 2^31-1 ms (24.8 days): wake up and re-plan instead.
    timer = setTimeout(() => void run(), Math.min(delay, 2 ** 31 - 1));
    timer.unref();
  };

  const run = async () => {
    if (stopped || running) return; // one under way plans the next itself
    if (Date.now() < due - 1000) return plan(due - Date.now()); // woken by the timer cap, not due yet
    running = true;
    try {
      await options.renew();
      attempt = 0;
      const cert = options.current();
      plan(renewalDelay(cert.notBefore, cert.notAfter, Date.now(), options.policy));
    } catch (err) {
      const delay = backoffDelay(attempt, options.policy.maxBackoff);
      attempt++;
      options.onFailure(err, delay, attempt);
      plan(delay);
    } finally {
      running = false;
    }
  };

  return {
    reschedule() {
      attempt = 0;
      const { notBefore, notAfter } = options.current();
      plan(renewalDelay(notBefore, notAfter, Date.now(), options.policy));
    },
    renewNow() {
      attempt = 0;
      if (!running) plan(0);
    },
    get nextAt() {
      return nextAt;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
