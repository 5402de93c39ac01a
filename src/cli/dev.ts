/**
 * `warden dev` (what `npm start` runs): the whole product on an embedded default — a demo backend,
 * a self-signed development certificate and a sidecar in front of the backend — with curl lines to
 * try and the requests and security events printed as they happen.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadSidecarConfig } from '../config/load.js';
import { createDevLogDestination } from '../dev/console-printer.js';
import { startDemoBackend } from '../dev/demo-backend.js';
import { demoSidecarYaml } from '../dev/demo-config.js';
import { createSelfSignedCertificate } from '../dev/self-signed-certificate.js';
import { startSidecar } from '../proxy/sidecar.js';
import { createLogger, flushLogger } from '../telemetry/logger.js';
import { EXIT, parseCommandArgs } from './args.js';

export const devHelp = `Usage: warden dev [--dir DIR] [--port N] [--admin-port N] [--backend-port N]

Runs the embedded demo: a demo backend, a self-signed development certificate and a Warden sidecar
in front of it, then prints curl lines to try and shows requests and security events as they happen.
Everything it writes (certificate, sidecar.yaml, warden.log) goes to DIR.

Options:
  --dir DIR            working folder (default .warden-dev)
  --port N             sidecar HTTPS port (default 8443)
  --admin-port N       admin port on 127.0.0.1 (default 9901)
  --backend-port N     demo backend port on 127.0.0.1 (default 8080)
  --once               start, print the instructions, and exit (smoke test)
  -h, --help           show this help`;

function portOption(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--${name} must be an integer 0–65535, got "${value}"`);
  return n;
}

export async function runDev(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('dev', argv, {
    dir: { type: 'string' },
    port: { type: 'string' },
    'admin-port': { type: 'string' },
    'backend-port': { type: 'string' },
    once: { type: 'boolean' },
  });
  if (values.help) {
    console.log(devHelp);
    return EXIT.ok;
  }
  const dir = resolve(values.dir ?? '.warden-dev');
  const port = portOption('port', values.port, 8443);
  const adminPort = portOption('admin-port', values['admin-port'], 9901);
  const backendPort = portOption('backend-port', values['backend-port'], 8080);
  mkdirSync(dir, { recursive: true });

  const backend = await startDemoBackend(backendPort);
  const { certPem, keyPem } = await createSelfSignedCertificate({ commonName: 'localhost' });
  writeFileSync(join(dir, 'tls.crt'), certPem);
  writeFileSync(join(dir, 'tls.key'), keyPem, { mode: 0o600 });
  const configFile = join(dir, 'sidecar.yaml');
  writeFileSync(configFile, demoSidecarYaml({ port, adminPort, backendPort: backend.address.port }));

  const loaded = loadSidecarConfig(configFile);
  const logger = createLogger({ level: 'info', destination: createDevLogDestination(join(dir, 'warden.log')), base: { service: 'demo' } });
  const sidecar = await startSidecar(loaded, { logger });
  const base = `https://localhost:${sidecar.inbound.port}`;
  const ca = `--cacert ${join(dir, 'tls.crt')}`;
  const admin = `http://127.0.0.1:${sidecar.admin.port}`;

  console.log(`
Warden dev — a sidecar on ${base} in front of the demo backend on http://127.0.0.1:${backend.address.port}
  config   ${configFile}   (reload: kill -HUP ${process.pid})
  log      ${join(dir, 'warden.log')}

Try:
  curl ${ca} ${base}/api/hello                        # forwarded; the backend echoes what it got
  curl ${ca} --http2 ${base}/api/hello                # the same over HTTP/2
  curl ${ca} -H 'x-warden-user: admin' ${base}/api/hello   # internal header: stripped before the backend
  curl ${ca} ${base}/admin/stats                      # 403: the access stage denies this route
  curl ${ca} ${base}/%61dmin/stats                    # 403 as well: paths are normalised before policy
  curl ${ca} ${base}/nowhere                          # 404: no route declares it
  curl ${ca} -X DELETE ${base}/api/hello              # 405: method not declared
  curl ${ca} --http1.1 -H 'Transfer-Encoding: chunked' -H 'Content-Length: 3' -d abc ${base}/api/echo   # 400: smuggling shape
  head -c 2000000 /dev/zero | curl ${ca} --data-binary @- ${base}/api/echo   # 413: body over the route's 1 MiB
  curl ${admin}/readyz ; curl ${admin}/metrics | grep warden_

Requests and security events appear below. Ctrl-C stops.
`);

  const stop = async () => {
    await sidecar.drain();
    await backend.close();
    flushLogger(logger);
  };
  if (values.once) {
    await stop();
    return EXIT.ok;
  }
  return new Promise<number>((done) => {
    const onSignal = () => void stop().then(() => done(EXIT.ok));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.on('SIGHUP', () => void sidecar.reload(() => loadSidecarConfig(configFile)));
  });
}
