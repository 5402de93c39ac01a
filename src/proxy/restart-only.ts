/**
 * Settings a reload does not apply (the listeners, the mesh identity and egress are started once):
 * which of them a file changes, for the warning, and the configuration a new generation is compiled
 * from, holding their start values, so that no part of the sidecar runs a value the warning says
 * is not applied.
 */
import type { LoadedSidecarConfig } from '../config/load.js';
import type { SidecarConfig } from '../config/types.js';
import { inboundTlsSettings } from './inbound-tls.js';

/**
 * Settings that the running listeners cannot change, by the field an operator would edit; a reload
 * that changes them names which (it said only "listener addresses … change only on restart", so a
 * changed `mesh.spiffe_id` or `egress.services` left the operator guessing what was not applied).
 */
export function restartOnlySettings(config: SidecarConfig): Record<string, unknown> {
  const limits = config.limits;
  return {
    // The egress listener and its services, and the mesh identity, are started once.
    egress: config.egress ?? null,
    mesh: config.mesh ?? null,
    // The log lines' and /metrics' service, the realm of challenges, OTel's resource and the default
    // Redis prefixes: all or none (a rename half applied told clients and collectors two names).
    'service.name': config.service.name,
    'listeners.inbound.host': config.listeners.inbound.host,
    'listeners.inbound.port': config.listeners.inbound.port,
    'listeners.inbound.tls.client_certificates': inboundTlsSettings(config).client_certificates,
    'listeners.admin': config.listeners.admin,
    ...Object.fromEntries(RESTART_ONLY_LIMITS.map((name) => [`limits.${name}`, limits[name]])),
  };
}

/** The connection-level limits, which the listeners take at start. */
const RESTART_ONLY_LIMITS = [
  'max_requests_per_connection',
  'max_concurrent_streams',
  'max_header_bytes',
  'max_header_count',
  'max_connections',
  'handshake_timeout',
  'handshake_failures',
  'headers_timeout',
  'request_timeout',
  'idle_timeout',
  'max_pipelined_requests',
  'send_timeout',
] as const;

/**
 * The restart-only settings the file read now holds at other values than those in force, which
 * were not so in the last file applied: the same file again warns no more, and a file put back to
 * the values in force warns not at all (comparing with the last file alone said "still running
 * with the old value" of a revert to it).
 */
export function restartOnlyChanges(started: SidecarConfig, last: SidecarConfig, next: SidecarConfig): string[] {
  const inForce = restartOnlySettings(started);
  const before = restartOnlySettings(last);
  const after = restartOnlySettings(next);
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  return Object.keys(after).filter((name) => !same(after[name], inForce[name]) && !same(after[name], before[name]));
}

/**
 * `read` with the values the sidecar started with for the restart-only settings a generation uses:
 * `service.name`, `mesh`, `egress` and every connection-level limit (the plan read a reload's
 * `mesh.mtls`: `require` → `optional` stopped asking callers for certificates while the warning
 * said the old value ran). The listeners keep theirs, and the handler
 * read the new file's (a reload to `max_header_count: 10`, `request_timeout: 2s` warned "still
 * running with the old values" and refused requests by the new ones). So every part of the
 * sidecar reads the values in force.
 */
export function withStartValues(read: LoadedSidecarConfig, started: SidecarConfig): LoadedSidecarConfig {
  const { config } = read;
  const kept = Object.fromEntries(RESTART_ONLY_LIMITS.map((name) => [name, started.limits[name]])) as Pick<
    SidecarConfig['limits'],
    (typeof RESTART_ONLY_LIMITS)[number]
  >;
  const inForce = { service: started.service, mesh: started.mesh, egress: started.egress, limits: { ...config.limits, ...kept } };
  return { ...read, config: { ...config, ...inForce } };
}
