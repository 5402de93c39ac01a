/**
 * Says when a CRL of `listeners.inbound.tls.client_crl` passes its nextUpdate. The CRL stays in
 * force — refusing every client certificate would turn a CRL file nobody refreshed into an outage,
 * which is why Warden checks CRLs itself (src/net/client-crl.ts) — so it is said loudly instead, as
 * the mesh says it of its own CRL (src/mesh/identity.ts `watchStaleness`): once per CRL, an
 * error-level line and `warden.tls.client_crl_stale`; `warden_crl_stale_seconds` and the /readyz
 * detail say it for as long as it lasts (src/proxy/sidecar.ts).
 */
import { describeClientCrl, staleCrls, type ClientCrl } from '../net/client-crl.js';
import type { EventBus } from '../telemetry/events.js';
import type { Logger } from '../telemetry/logger.js';

export interface ClientCrlWatch {
  /** The client_crl now in force (at start and after each reload), or undefined without one. */
  apply(crl: ClientCrl | undefined): void;
  stop(): void;
}

export function createClientCrlWatch(deps: { events: EventBus; logger: Logger }): ClientCrlWatch {
  let timer: NodeJS.Timeout | undefined;
  let current: ClientCrl | undefined;
  /** The CRLs said stale, by CA and nextUpdate: a reload of the same file does not say it again. */
  let said = new Set<string>();

  const check = (): void => {
    clearTimeout(timer);
    const crl = current;
    if (crl === undefined) return;
    const now = Date.now();
    const stale = staleCrls(crl, now);
    const keys = new Set(stale.map((c) => `${c.issuer}|${c.nextUpdate?.getTime() ?? ''}`));
    for (const c of stale) {
      const key = `${c.issuer}|${c.nextUpdate?.getTime() ?? ''}`;
      if (said.has(key)) continue;
      const detail = `${crl.file}: the ${describeClientCrl(c)} is past its nextUpdate; it stays in force (the certificates it lists are still refused), revocations made since are not known: replace the file with the CA's current CRL and reload (SIGHUP)`;
      deps.events.emit('warden.tls.client_crl_stale', { 'warden.detail': detail });
      deps.logger.error({ 'warden.config.field': 'listeners.inbound.tls.client_crl' }, detail);
    }
    said = keys;
    const next = Math.min(...crl.crls.map((c) => c.nextUpdate?.getTime() ?? Infinity).filter((t) => t > now));
    if (Number.isFinite(next)) {
      timer = setTimeout(check, Math.min(next - now + 1, 2 ** 31 - 1));
      timer.unref();
    }
  };

  return {
    apply(crl) {
      current = crl;
      check();
    },
    stop() {
      clearTimeout(timer);
      current = undefined;
    },
  };
}
