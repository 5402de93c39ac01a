/** `warden proxy -c FILE`: run the sidecar until SIGTERM/SIGINT; SIGHUP reloads the file. */
import { ConfigError } from '../config/config-error.js';
import { loadSidecarConfig, type LoadedSidecarConfig } from '../config/load.js';
import { startSidecar, type Sidecar } from '../proxy/sidecar.js';
import { flushLogger } from '../telemetry/logger.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';
import { bindProblem } from './bind-error.js';
import { reloadOnSignal } from './reload-signal.js';

export const proxyHelp = `Usage: warden proxy -c FILE

Runs the sidecar: terminates TLS on the inbound listener, applies each route's pipeline and
forwards to the backend. The admin listener serves /healthz, /readyz and /metrics.

Options:
  -c, --config FILE   sidecar configuration (see sidecar.yaml.example)
  -h, --help          show this help

Signals:
  SIGHUP              reload FILE; an invalid file is reported and the running configuration kept;
                      signals during a reload are merged into one more reload after it
  SIGTERM, SIGINT     drain: stop accepting, finish in-flight requests (lifecycle.drain_timeout), exit 0
                      a second signal exits at once
Exit codes: 0 stopped cleanly, 1 runtime failure, 2 invalid configuration or usage`;

export async function runProxy(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('proxy', argv, { config: { type: 'string', short: 'c' } });
  if (values.help) {
    console.log(proxyHelp);
    return EXIT.ok;
  }
  if (!values.config) throw new UsageError('warden proxy: missing -c FILE (the sidecar configuration; see warden proxy --help)');
  const file = values.config;
  const loaded = loadSidecarConfig(file);
  // Installed before the start, which can take seconds (mesh enrollment, an OpenAPI document by
  // URL, the IdPs' prefetch): until then SIGHUP's default action ended the process without a word.
  // One that comes meanwhile is run once the sidecar is up.
  const running: { sidecar?: Sidecar; reloadAsked: boolean } = { reloadAsked: false };
  const reload = reloadOnSignal(file, () => running.sidecar);
  process.on('SIGHUP', () => (running.sidecar ? reload('SIGHUP') : (running.reloadAsked = true)));
  const sidecar = await startOrExplain(loaded);
  running.sidecar = sidecar;
  if (running.reloadAsked) reload('SIGHUP came while starting');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        sidecar.logger.warn({ signal }, 'second signal: exiting without waiting');
        flushLogger(sidecar.logger);
        resolve(EXIT.failure);
        return;
      }
      stopping = true;
      sidecar.logger.info({ signal }, 'stopping');
      void sidecar.drain().then(() => {
        flushLogger(sidecar.logger);
        resolve(EXIT.ok);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

/** Starts the sidecar; a port that cannot be bound is reported against the config field that names it. */
async function startOrExplain(loaded: LoadedSidecarConfig): Promise<Sidecar> {
  try {
    return await startSidecar(loaded);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    // The listener by address and port (Node leaves `port` out for port 0): by port alone, an admin
    // host that could not be bound was blamed on the inbound listener.
    const { admin, inbound } = loaded.config.listeners;
    const egress = loaded.config.egress;
    const at = (l: { host: string; port: number }) =>
      (e.address === undefined || e.address === l.host) && (e.port === undefined || e.port === l.port);
    // Inbound unless the error names another listener alone: egress's port had been blamed on inbound.
    const candidates: { path: string[]; listener: { host: string; port: number } }[] = [
      { path: ['listeners', 'admin'], listener: admin },
      ...(egress ? [{ path: ['egress'], listener: egress }] : []),
    ];
    const other = at(inbound) ? undefined : candidates.find((c) => at(c.listener));
    const { path, listener } = other ?? { path: ['listeners', 'inbound'], listener: inbound };
    const problem = bindProblem(e, listener.host, e.port ?? listener.port);
    if (problem) throw new ConfigError([loaded.issue([...path, problem.field], problem.message)]);
    // Printed by main: a library's message may quote a configured URL whole (red team 29 F2).
    if (err instanceof Error && !(err instanceof ConfigError)) err.message = loaded.mask(err.message);
    throw err;
  }
}
