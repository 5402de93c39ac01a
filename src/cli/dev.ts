/**
 * `warden dev` (what `npm start` runs): the whole product on an embedded default — a Warden CA, an
 * OpenID provider, a demo backend and a sidecar in front of it that enrolls at the CA, serves mTLS
 * and translates the IdP's tokens into minted ones — with curl lines to try and the requests and
 * security events printed as they happen.
 */
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadSidecarConfig } from '../config/load.js';
import { createDevLogDestination } from '../dev/console-printer.js';
import { startDemoBackend } from '../dev/demo-backend.js';
import { demoId, startDemoCa } from '../dev/demo-ca.js';
import { demoSidecarYaml } from '../dev/demo-config.js';
import { DEMO_OPENAPI_YAML } from '../dev/demo-openapi.js';
import { startSidecar } from '../proxy/sidecar.js';
import { createLogger, flushLogger } from '../telemetry/logger.js';
import { EXIT, parseCommandArgs, UsageError } from './args.js';
import { reloadOnSignal } from './reload-signal.js';

const devHelp = `Usage: warden dev [--dir DIR] [--port N] [--admin-port N] [--backend-port N] [--ca-port N] [--idp-port N] [--once]

Runs the embedded demo: a Warden CA, an OpenID provider, a demo backend and a Warden sidecar in
front of it that enrolls at the CA for its workload certificate, requires mTLS from callers and an
access token from the IdP, and hands the backend a token it minted. Prints curl lines to try (with
enrolled caller certificates and issued tokens) and shows requests and security events as they happen.
Everything it writes (CA, sidecar state, caller certificates, tokens, sidecar.yaml, warden.log) goes to DIR.

Options:
  --dir DIR            working folder (default .warden-dev)
  --port N             sidecar HTTPS port (default 8443)
  --admin-port N       admin port on 127.0.0.1 (default 9901)
  --backend-port N     demo backend port on 127.0.0.1 (default 8080)
  --ca-port N          Warden CA port on 127.0.0.1 (default 8444)
  --idp-port N         OpenID provider port on 127.0.0.1 (default 8445)
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
    'ca-port': { type: 'string' },
    'idp-port': { type: 'string' },
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
  const caPort = portOption('ca-port', values['ca-port'], 8444);
  const idpPort = portOption('idp-port', values['idp-port'], 8445);
  ownPrivateDir(dir);

  const logger = createLogger({ level: 'info', destination: createDevLogDestination(join(dir, 'warden.log')), base: { service: 'demo' } });
  const backend = await startDemoBackend(backendPort);
  const ca = await startDemoCa(dir, caPort, { logger });
  // oidc-provider is loaded only here: `warden proxy` never needs it.
  const { startDemoIdp } = await import('../dev/demo-idp.js');
  const idp = await startDemoIdp({ port: idpPort, accessTokenTtlSeconds: 3600 });
  const introspector = idp.introspectionClients.basic;
  const sidecarId = demoId('ns/demo/sa/orders');
  const configFile = join(dir, 'sidecar.yaml');
  const openapiFile = join(dir, 'openapi.yaml');
  writeFileSync(openapiFile, DEMO_OPENAPI_YAML);
  // It holds the bootstrap token and the IdP client secret: this user's alone, as the keys are.
  writeFileSync(
    configFile,
    demoSidecarYaml({
      port,
      adminPort,
      backendPort: backend.address.port,
      mesh: {
        spiffeId: sidecarId,
        caUrl: ca.server.url,
        bundleFile: ca.bundleFile,
        token: ca.tokenFor(sidecarId),
        stateDir: join(dir, 'sidecar-state'),
        allowPrefix: demoId('ns/demo/*'),
      },
      idp: { issuer: idp.issuer, audience: idp.audience, clientId: introspector.clientId, clientSecret: introspector.clientSecret },
      openapiFile,
    }),
    { mode: 0o600 },
  );
  chmodSync(configFile, 0o600); // a file left by an earlier run keeps its mode otherwise
  // Tokens for curl: opaque (introspected) with both scopes, read-only, and an RFC 9068 JWT (verified locally).
  const tokenFile = (name: string, token: string) => {
    const file = join(dir, name);
    writeFileSync(file, token, { mode: 0o600 }); // no newline: curl's token@FILE sends the file as is
    return file;
  };
  const opaqueFile = tokenFile('token.txt', (await idp.issueToken({ scope: 'orders:read orders:write' })).accessToken);
  const readOnlyFile = tokenFile('token-read.txt', (await idp.issueToken({ scope: 'orders:read' })).accessToken);
  const jwtFile = tokenFile('token-jwt.txt', (await idp.issueToken({ scope: 'orders:read', resource: idp.audience })).accessToken);
  const client = await ca.enrollCaller(demoId('ns/demo/sa/client'), 'client');
  const stranger = await ca.enrollCaller(demoId('ns/other/sa/batch'), 'stranger');

  const loaded = loadSidecarConfig(configFile);
  const sidecar = await startSidecar(loaded, { logger });
  // Its token is spent, or was never needed (the state dir held credentials from an earlier run):
  // either way no token for the sidecar's identity is left for someone else to enroll with.
  ca.server.revokeTokens({ spiffe_id: sidecarId });
  const base = `https://localhost:${sidecar.inbound.port}`;
  const tls = `--cacert ${ca.bundleFile} --cert ${client.certFile} --key ${client.keyFile}`;
  const admin = `http://127.0.0.1:${sidecar.admin.port}`;
  backend.verifyMintedTokens({ jwksUrl: `${admin}/.well-known/jwks.json`, audience: 'demo-backend' });
  const bearer = (file: string) => `-H "Authorization: Bearer $(cat ${file})"`;
  const demo = idp.demoClient;
  const caAdmin = `--url ${ca.server.url} --dir ${ca.dir}`;
  // The CLI as it was started (an absolute path): the printed commands work from any directory.
  const warden = `node ${process.argv[1] ?? 'bin/warden.js'}`;

  console.log(`
Warden dev — a sidecar on ${base} in front of the demo backend on http://127.0.0.1:${backend.address.port}
  identity ${sidecarId} (enrolled at the Warden CA on ${ca.server.url})
  config   ${configFile}   (reload: kill -HUP ${process.pid})
  log      ${join(dir, 'warden.log')}
  console  ${admin}/   (open it in a browser: identity, request rates, live security events)
  idp      ${idp.issuer} (OpenID provider; client ${demo.clientId} / ${demo.clientSecret})

Try (callers present a certificate from the demo CA: ${client.spiffeId},
and an access token from the IdP; ${opaqueFile} is opaque, ${jwtFile} a JWT):
  curl ${tls} ${bearer(opaqueFile)} ${base}/api/hello
        # the token is introspected, the backend gets a token minted by the sidecar (see token_claims)
        # and X-Forwarded-Client-Cert with the caller's SPIFFE ID
  curl ${tls} ${bearer(jwtFile)} ${base}/api/hello   # a JWT access token: verified with the IdP's keys
  curl ${tls} ${base}/api/hello                         # 401: no token (WWW-Authenticate: Bearer)
  curl ${tls} -H "Authorization: Bearer made-up" ${base}/api/hello   # 401: the IdP says inactive
  curl ${tls} ${bearer(readOnlyFile)} -d '{}' ${base}/api/orders   # 403: insufficient_scope (orders:write)
  curl ${tls} ${bearer(opaqueFile)} -H 'content-type: application/json' -d '{"item":"tea","quantity":2}' ${base}/api/orders
        # 200: valid against the OpenAPI document (${openapiFile}); 5 a minute, then 429
  curl ${tls} ${bearer(opaqueFile)} -H 'content-type: application/json' -d '{"item":"tea","quantity":0}' ${base}/api/orders
        # 400: the problem lists each violation (pointer + message); the backend never sees it
  curl ${tls} ${bearer(opaqueFile)} -d 'item=tea' ${base}/api/orders   # 415: the operation takes JSON
  curl ${tls} ${bearer(opaqueFile)} '${base}/api/orders?limit=1000'   # 400: /query/limit must be <= 100
  curl ${tls} ${bearer(opaqueFile)} -H 'content-type: application/json' -d '{"note":"<script>alert(1)</script>"}' ${base}/api/echo
        # 403: the waf (warden.input.xss at /body/note); try "' OR 1=1 --" or "http://169.254.169.254/" too
  curl -s -u ${demo.clientId}:${demo.clientSecret} -d grant_type=client_credentials -d scope=orders:read ${idp.issuer}/token
        # a new token; add -d resource=${idp.audience} for a JWT
  curl -X POST --data-urlencode token@${opaqueFile} ${admin}/tokens/revoke   # revoke: 401 from now on
  curl ${admin}/.well-known/jwks.json                  # the keys the backend verifies minted tokens with
  curl ${tls} --http2 ${bearer(opaqueFile)} -H 'x-warden-user: admin' ${base}/api/hello   # HTTP/2; internal header stripped
  curl --cacert ${ca.bundleFile} ${bearer(opaqueFile)} ${base}/api/hello   # 401: this route needs a client certificate
  curl --cacert ${ca.bundleFile} ${base}/public/info        # 200: mtls: optional on this route
  curl --cacert ${ca.bundleFile} --cert ${stranger.certFile} --key ${stranger.keyFile} ${base}/api/hello
        # 403: ${stranger.spiffeId} is not in peers.allow
  curl ${tls} ${base}/%61dmin/stats                    # 403: access stage (openapi.operations); paths normalised first
  curl ${tls} ${base}/nowhere                          # 404: the document declares no such operation
  curl ${tls} ${bearer(opaqueFile)} '${base}/api/orders?limit[]=1000'   # 400: qs, PHP and Rails read limit[] as limit
  curl ${tls} ${bearer(opaqueFile)} -H 'X-HTTP-Method-Override: DELETE' ${base}/api/hello   # 400: a method override
  curl ${tls} --http1.1 -H 'Transfer-Encoding: chunked' -H 'Content-Length: 3' -d abc ${base}/api/echo   # 400: smuggling
  head -c 2000000 /dev/zero | curl ${tls} ${bearer(opaqueFile)} --data-binary @- ${base}/api/echo   # 413: over the route's 1 MiB
  ${warden} ca revoke --serial ${client.serial} ${caAdmin}
        # revoke the client: refused within 5 s (the demo's CRL refresh), even on open connections
  ${warden} ca list ${caAdmin}
  curl ${admin}/readyz ; curl ${admin}/metrics | grep warden_

Requests and security events appear below. Ctrl-C stops.
`);

  const stop = async () => {
    await sidecar.drain();
    await ca.close();
    await idp.close();
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
    const reload = reloadOnSignal(configFile, () => sidecar);
    process.on('SIGHUP', () => reload('SIGHUP'));
  });
}

/**
 * The dev directory holds a bootstrap token, the IdP's client secret and the demo CA's keys, each
 * in a file of its own user's alone (0600, the CA's directory 0700). One it creates is 0700; an
 * existing one (`--dir .`, a project's) keeps its mode, but one of another user's is refused (a
 * directory someone else prepared could hand them our secrets, or us their CA).
 */
function ownPrivateDir(dir: string): void {
  if (mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined) return;
  const owner = statSync(dir).uid;
  const uid = process.getuid?.();
  if (uid !== undefined && owner !== uid)
    throw new UsageError(`warden dev: ${dir} belongs to another user (uid ${owner}); give --dir a directory of your own`);
}
