/**
 * `warden enroll -c FILE`: the one-shot enrollment of an init container. Gets (or confirms) the
 * workload credentials in mesh.state_dir, fetches the trust bundle and CRL, and exits, so the main
 * container starts with everything in place and needs no token itself.
 */
import { loadSidecarConfig } from '../config/load.js';
import { createEventBus } from '../telemetry/events.js';
import { pinoEventSink } from '../telemetry/event-sinks.js';
import { createLogger, flushLogger } from '../telemetry/logger.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';

export const enrollHelp = `Usage: warden enroll -c FILE

Enrolls this workload at the Warden CA with mesh.bootstrap_token (or confirms that mesh.state_dir
already holds valid credentials), stores key, certificate, trust bundle and CRL in mesh.state_dir,
and exits. Meant for an init container; \`warden proxy\` does the same by itself at startup.

Options:
  -c, --config FILE   sidecar configuration with a mesh section
  -h, --help          show this help
Exit codes: 0 credentials in place, 1 the CA refused or could not be reached (or mesh.state_dir cannot be written, or another process holds it), 2 invalid configuration or usage`;

export async function runEnroll(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('enroll', argv, { config: { type: 'string', short: 'c' } });
  if (values.help) {
    console.log(enrollHelp);
    return EXIT.ok;
  }
  if (!values.config) throw new UsageError('warden enroll: missing -c FILE (the sidecar configuration; see warden enroll --help)');
  const { config, file } = loadSidecarConfig(values.config);
  if (!config.mesh) throw new UsageError(`warden enroll: ${file} has no mesh section (mesh.spiffe_id, mesh.ca, mesh.bootstrap_token)`);
  const logger = createLogger({ level: config.log.level === 'info' ? 'warn' : config.log.level, base: { service: config.service.name } });
  const events = createEventBus([pinoEventSink(logger)]);
  const { startMeshIdentity, MeshStartupError } = await import('../mesh/identity.js');
  let identity;
  try {
    identity = await startMeshIdentity(config.mesh, { events, logger });
  } catch (err) {
    // No credentials and no token is the operator's configuration to fix (exit 2); a CA refusal
    // or outage is a failure naming the CA's code (exit 1, via main).
    if (err instanceof MeshStartupError && err.code === 'ERR_MESH_TOKEN_REQUIRED') throw new UsageError(`warden enroll: ${err.message}`);
    throw err;
  } finally {
    flushLogger(logger);
  }
  await identity.stop();
  const status = identity.status();
  console.log(`${status.spiffeId}: certificate ${status.serial} valid until ${status.notAfter}, stored in ${config.mesh.state_dir}`);
  flushLogger(logger);
  return EXIT.ok;
}
