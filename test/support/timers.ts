/**
 * Timers active in this process, for in-process tests that check a request leaves nothing running
 * once it is answered (a body read, a timeout) — what held a refused request's body for 60 s in
 * docs/adversarial.md defect 35.
 */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/**
 * The number of active timers once it is back to `baseline`, or after a bounded wait (the refusals'
 * own short guards, like the 1 s socket timeout after a refusal, go first). Not a timing assertion:
 * a leaked timer stays for the request timeout, minutes past this wait.
 */
export async function timersBackTo(baseline: number, waitMs = 5000): Promise<number> {
  for (let waited = 0; waited < waitMs && activeTimers() > baseline; waited += 100) await new Promise((r) => setTimeout(r, 100));
  return activeTimers();
}
