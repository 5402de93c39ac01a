/**
 * The deployment files, checked without a container engine: compose/docker-compose.yml against the
 * Compose Specification's JSON schema (vendored in test/fixtures/schemas), the Kubernetes manifests
 * against the API's schemas (kubernetes-models), and every cross-reference the code depends on —
 * the sidecar and CA configurations they mount load and validate like `warden config check` does,
 * the paths those configurations read are mounted, the services, ports, volumes, metric names and
 * image entrypoint they name exist.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigMap, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parseCaConfig } from '../../../src/config/ca-load.js';
import { parseSidecarConfig } from '../../../src/config/load.js';
import { checkSidecarConfig } from '../../../src/cli/config-check.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { repoRoot } from '../../support/sidecar.js';

type Json = Record<string, unknown>;
const compose = join(repoRoot, 'compose');
const read = (...parts: string[]) => readFileSync(join(...parts), 'utf8');

/** A real CA (warden ca init), for the bundle and fingerprint the configurations refer to. */
const caDir = join(mkdtempSync(join(tmpdir(), 'warden-deploy-')), 'ca');
const init = spawnSync(
  process.execPath,
  [join(repoRoot, 'bin/warden.js'), 'ca', 'init', '--trust-domain', 'demo.warden.test', '--dir', caDir],
  {
    encoding: 'utf8',
  },
);
const fingerprint = /root fingerprint: (sha256:[0-9a-f]+)/.exec(init.stdout)?.[1] ?? '';

/** The compose-spec schema as Ajv 2019 takes it (the spec still uses draft-04 style `id`s). */
function composeValidator() {
  const schema = JSON.parse(read(repoRoot, 'test/fixtures/schemas/compose-spec.json')) as Json;
  const strip = (node: unknown, parentKey?: string): void => {
    if (Array.isArray(node)) return node.forEach((n) => strip(n));
    if (!node || typeof node !== 'object') return;
    const o = node as Json;
    if (parentKey !== 'properties' && typeof o.id === 'string') delete o.id;
    for (const [k, v] of Object.entries(o)) strip(v, k);
  };
  strip(schema);
  delete schema.$schema;
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\d{1,3}\.){3}\d{1,3}:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat('subnet_ip_address', /./);
  return ajv.compile(schema);
}

/** What `warden config check` does: load (with the container's environment), then compile offline. */
async function configCheck(file: string, text: string, env: NodeJS.ProcessEnv) {
  const loaded = parseSidecarConfig(file, text, env);
  await checkSidecarConfig(loaded);
  return loaded.config;
}

/** The named volumes (not bind mounts) a compose service mounts. */
const volumesOf = (svc: Json) =>
  ((svc.volumes as string[] | undefined) ?? []).map((v) => v.split(':')[0] ?? '').filter((v) => !v.startsWith('.'));

/** Whether `path` in a container lies under one of its mounts. */
const mounted = (mounts: string[], path: string) => mounts.some((m) => path === m || path.startsWith(`${m.replace(/\/$/, '')}/`));

t.test('the Compose file', async (t) => {
  t.ok(fingerprint, `a CA was created for the checks (${init.stderr.trim().split('\n').at(-1) ?? ''})`);
  const text = read(compose, 'docker-compose.yml');
  const doc = parse(text, { merge: true }) as { services: Record<string, Json>; volumes: Record<string, unknown> };
  const validate = composeValidator();
  t.ok(validate(doc), `valid against the compose-spec schema ${JSON.stringify(validate.errors?.slice(0, 3))}`);
  const typo = structuredClone(doc) as { services: Record<string, Json> };
  (typo.services.redis as Json).comand = ['x'];
  t.notOk(validate(typo), 'and the schema does catch a misspelt key');

  const services = doc.services;
  const names = new Set(Object.keys(services));
  for (const [name, svc] of Object.entries(services)) {
    const deps = svc.depends_on as Record<string, unknown> | string[] | undefined;
    for (const dep of Array.isArray(deps) ? deps : Object.keys(deps ?? {})) t.ok(names.has(dep), `${name} depends on ${dep}, a service`);
    const netns = typeof svc.network_mode === 'string' ? /^service:(.+)$/.exec(svc.network_mode)?.[1] : undefined;
    if (netns) t.ok(names.has(netns), `${name} shares ${netns}'s network namespace`);
    for (const v of (svc.volumes as string[] | undefined) ?? []) {
      const [source = ''] = v.split(':');
      if (source.startsWith('.')) t.ok(existsSync(join(compose, source)), `${name} mounts ${source}, which exists`);
      else t.ok(source in doc.volumes, `${name} mounts the declared volume ${source}`);
    }
  }

  // The Dockerfile the stack builds: non-root, entrypoint present, and no health check of its own:
  // the image runs the sidecar (admin /healthz), the CA (no admin listener) and one-shot commands;
  // its check of the admin port left every `ca serve` container unhealthy for ever. Each compose
  // service that keeps running has its own (below).
  const dockerfile = read(repoRoot, 'Dockerfile');
  t.match(dockerfile, /^USER node$/m, 'the image runs as a non-root user');
  t.match(dockerfile, /^HEALTHCHECK NONE$/m, 'with no image-wide health check');
  t.equal(dockerfile.match(/^HEALTHCHECK/gm)?.length, 1, 'and no other');
  t.match(dockerfile, /ENTRYPOINT \["node", "\/opt\/warden\/bin\/warden\.js"\]/);
  t.ok(existsSync(join(repoRoot, 'bin/warden.js')));

  // The root key: ca-init moves it out of the CA's directory into a volume nothing else mounts
  // (`ca serve` never reads it; docs/ca.md says keep it offline).
  const caInit = services['ca-init'] as Json;
  const rootKeyMove = /mv \/var\/lib\/warden-ca\/root\.key (\S+)/.exec(String(caInit.command));
  t.ok(rootKeyMove, 'ca-init moves root.key out of the CA directory');
  const rootKeyVolume = ((caInit.volumes as string[])
    .map((v) => v.split(':'))
    .find(([, target = '']) => mounted([target], rootKeyMove?.[1] ?? '?')) ?? [])[0];
  t.ok(rootKeyVolume && rootKeyVolume in doc.volumes, 'into a named volume');
  t.same(
    Object.keys(services).filter((n) => volumesOf(services[n] as Json).includes(rootKeyVolume ?? '?')),
    ['ca-init'],
    'which no other service mounts',
  );

  // Every port on the host's loopback only: the IdP mints a token for anyone, Jaeger shows every
  // request, Grafana lets anyone in as Viewer, and the demo is not meant to face a network.
  for (const [name, svc] of Object.entries(services)) {
    for (const p of (svc.ports as string[] | undefined) ?? [])
      t.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p} on 127.0.0.1 only`);
  }
  // Hardening: no privilege by exec, no capabilities for Warden's containers and the backends; the
  // backends run as node with a read-only root.
  const hardened = (svc: Json) =>
    ((svc.security_opt as string[] | undefined) ?? []).includes('no-new-privileges:true') &&
    ((svc.cap_drop as string[] | undefined) ?? []).includes('ALL');
  for (const [name, svc] of Object.entries(services)) {
    if (svc.image === 'warden:dev')
      t.ok(hardened(svc) && svc.read_only === true, `${name}: no-new-privileges, cap_drop ALL, read-only root`);
  }
  for (const backend of ['orders', 'inventory']) {
    const svc = services[backend] as Json;
    t.ok(hardened(svc), `${backend}: no-new-privileges, cap_drop ALL`);
    t.equal(svc.user, 'node', `${backend} runs as node, not root`);
    t.equal(svc.read_only, true, `${backend} has a read-only root`);
  }

  const ca = services['warden-ca'] as Json;
  const caMounts = (ca.volumes as string[]).map((v) => v.split(':'));
  const caConfigHost = caMounts.find(([, target]) => target === '/etc/warden/ca.yaml')?.[0] ?? '';
  t.same(ca.command, ['ca', 'serve', '-c', '/etc/warden/ca.yaml'], 'the CA serves the mounted ca.yaml');
  const caText = read(compose, caConfigHost).replace('dir: /var/lib/warden-ca', `dir: ${caDir}`);
  const caConfig = (await parseCaConfig('ca.yaml', caText)).config;
  t.equal(caConfig.listen.port, 8444);
  t.ok(caConfig.server.dns_names.includes('warden-ca'), 'the CA certificate names the service the sidecars dial');
  const caCheck = ((ca.healthcheck as Json | undefined)?.test as string[] | undefined)?.join(' ') ?? '';
  t.match(
    caCheck,
    new RegExp(`connect\\(${caConfig.listen.port}, '127\\.0\\.0\\.1'\\)`),
    'warden-ca is health-checked on the port it serves',
  );

  const publishedBy = (svc: Json) => ((svc.ports as string[] | undefined) ?? []).map((p) => Number(p.split(':').pop()));
  for (const sidecar of Object.keys(services).filter((n) => n.endsWith('-warden'))) {
    await t.test(sidecar, async (t) => {
      const svc = services[sidecar] as Json;
      const backendName = /^service:(.+)$/.exec(String(svc.network_mode))?.[1] ?? '';
      const backend = services[backendName] as Json;
      const mounts = (svc.volumes as string[]).map((v) => v.split(':'));
      const configHost = mounts.find(([, target]) => target === '/etc/warden/sidecar.yaml')?.[0] ?? '';
      t.same(svc.command, ['proxy', '-c', '/etc/warden/sidecar.yaml']);
      const env = svc.environment as Record<string, string>;
      // The file as the container sees it, with its paths mapped to this test's files.
      const tokenPath = /bootstrap_token: \$\{file:([^}]+)\}/.exec(read(compose, configHost))?.[1] ?? '?';
      const tokenFile = join(dirname(caDir), `${backendName}.token`);
      writeFileSync(tokenFile, 'not-a-real-token');
      const text = read(compose, configHost).replace(`\${file:${tokenPath}}`, `\${file:${tokenFile}}`);
      const config = await configCheck(configHost, text, { ...env, WARDEN_CA_BUNDLE: join(caDir, 'bundle.pem') });
      const mountTargets = mounts.map(([, target = '']) => target);
      t.ok(mounted(mountTargets, env.WARDEN_CA_BUNDLE as string), 'the CA bundle it reads is mounted');
      t.ok(mounted(mountTargets, tokenPath), `its bootstrap token file ${tokenPath} is mounted`);
      t.ok(mounted(mountTargets, config.mesh?.state_dir ?? '?'), 'its state_dir is a volume');

      // What a sidecar holds: the public bundle and its own token, read-only; none of the CA's keys
      // (the CA's directory holds the intermediate key and the admin credential, with which anything
      // running in a sidecar could mint tokens for any identity) and no other service's token.
      const volumeAt = (path: string) =>
        mounts.filter(([, target = '']) => mounted([target], path)).sort((a, b) => (b[1] ?? '').length - (a[1] ?? '').length)[0];
      const [tokenVolume = '', , tokenMode] = volumeAt(tokenPath) ?? [];
      t.equal(volumeAt(env.WARDEN_CA_BUNDLE as string)?.[0], tokenVolume, 'the bundle comes with the token, in the same volume');
      t.equal(tokenMode, 'ro', 'mounted read-only');
      for (const [source = '', target = '', mode] of mounts) {
        if (target === config.mesh?.state_dir) continue;
        t.equal(mode, 'ro', `${source} is mounted read-only`);
        for (const ca of ['ca-init', 'warden-ca']) t.notOk(volumesOf(services[ca] as Json).includes(source), `${source} is not ${ca}'s`);
      }
      const others = Object.keys(services).filter((n) => n.endsWith('-warden') && n !== sidecar);
      for (const other of others)
        t.notOk(volumesOf(services[other] as Json).includes(tokenVolume), `no other sidecar (${other}) mounts it`);
      const writers = Object.entries(services).filter(([n, s]) => n !== sidecar && volumesOf(s).includes(tokenVolume));
      t.same(
        writers.map(([, s]) => (s.environment as Json | undefined)?.SERVICE),
        [backendName],
        "the one service that writes it makes this service's token",
      );
      t.equal(config.mesh?.ca.url, `https://warden-ca:${caConfig.listen.port}`, 'it dials the CA service');
      t.equal(config.service.name, backendName);
      const check = ((svc.healthcheck as Json | undefined)?.test as string[] | undefined)?.join(' ') ?? '';
      t.match(check, new RegExp(`http://127\\.0\\.0\\.1:${config.listeners.admin.port}/healthz`), 'health-checked on its admin /healthz');
      // Callers need a mesh certificate on every route but the one that says otherwise (/health).
      t.equal(config.mesh?.mtls, 'require', 'mTLS required by default');
      t.same(
        config.routes.filter((r) => r.mtls === 'optional').map((r) => r.path),
        ['/health'],
        'optional only on /health',
      );
      t.equal(config.upstream.url, 'http://127.0.0.1:8080', 'the backend is on loopback');
      t.match(read(compose, 'backend/echo.js'), /listen\(8080, '127\.0\.0\.1'/, 'where the demo backend listens');
      t.same(
        publishedBy(backend).sort(),
        [config.listeners.admin.port, config.listeners.inbound.port].sort(),
        'the namespace owner publishes the inbound and admin ports',
      );
      t.match(config.threats?.malware?.clamd, /^tcp:\/\/clamav:3310$/);
      t.ok(names.has('clamav') && names.has('redis'));
      const otlp = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT as string);
      t.ok(names.has(otlp.hostname), 'OTLP goes to the collector service');
      t.match(read(compose, 'otel-collector.yaml'), new RegExp(`endpoint: 0\\.0\\.0\\.0:${otlp.port}`), 'on the port it receives on');
    });
  }

  const prometheus = parse(read(compose, 'prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
  for (const target of prometheus.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets))) {
    t.ok(names.has(target.split(':')[0] as string), `Prometheus scrapes ${target}, a service`);
  }
  const dashboard = JSON.parse(read(compose, 'grafana/dashboards/warden-security.json')) as { panels: { targets: { expr: string }[] }[] };
  // What a sidecar's /metrics declares (the expiry gauge exists once a certificate is tracked).
  const metrics = createMetrics({ serviceName: 'orders', processMetrics: false });
  metrics.trackCertificateExpiry(() => 1);
  const exported = new Map([...(await metrics.registry.metrics()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  for (const expr of dashboard.panels.flatMap((p) => p.targets.map((x) => x.expr))) {
    for (const metric of expr.match(/warden_[a-z_]+/g) ?? []) {
      const histogram = /^(.*)_(bucket|count|sum)$/.exec(metric)?.[1];
      const name = histogram !== undefined && exported.get(histogram) === 'histogram' ? histogram : metric;
      t.ok(exported.has(name), `the dashboard's ${metric} is a metric the sidecar exports`);
    }
  }
});

type Container = {
  name: string;
  image?: string;
  args?: string[];
  restartPolicy?: string;
  ports?: { name: string }[];
  env?: Json[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type?: string };
  };
} & Json;
type Pod = {
  initContainers?: Container[];
  containers: Container[];
  volumes: Json[];
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type?: string } };
};
const podOf = (workload: Json) => ((workload.spec as Json).template as Json).spec as Pod;

/**
 * What the Pod Security Standards' "restricted" profile refuses in a pod
 * (https://kubernetes.io/docs/concepts/security/pod-security-standards/), plus a read-only root
 * (docs/deploy.md promises it); [] when it passes. A namespace labelled
 * `pod-security.kubernetes.io/enforce: restricted` rejects a pod with any of these.
 */
function restrictedViolations(pod: Pod): string[] {
  const found: string[] = [];
  const psc = pod.securityContext ?? {};
  if (psc.runAsNonRoot !== true) found.push('pod: runAsNonRoot is not true');
  if (psc.runAsUser === 0) found.push('pod: runAsUser 0');
  if (psc.seccompProfile?.type !== 'RuntimeDefault') found.push('pod: seccompProfile is not RuntimeDefault');
  for (const k of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (pod[k]) found.push(`pod: ${k}`);
  for (const v of pod.volumes) if (v.hostPath) found.push(`pod: hostPath volume ${String(v.name)}`);
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) found.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) found.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) found.push(`${c.name}: capabilities.drop lacks ALL`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== 'NET_BIND_SERVICE')) found.push(`${c.name}: adds capabilities`);
    if (sc.runAsNonRoot === false || sc.runAsUser === 0) found.push(`${c.name}: runs as root`);
    if (sc.seccompProfile && !['RuntimeDefault', 'Localhost'].includes(sc.seccompProfile.type ?? ''))
      found.push(`${c.name}: seccomp unconfined`);
    if (sc.readOnlyRootFilesystem !== true) found.push(`${c.name}: root filesystem not read-only`);
  }
  return found;
}

t.test('the "restricted" check catches what it is there for', async (t) => {
  const ok = (): Pod => ({
    securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
    volumes: [],
    containers: [
      { name: 'app', securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } } },
    ],
  });
  t.same(restrictedViolations(ok()), []);
  const broken: [string, (p: Pod) => void][] = [
    ['no seccomp', (p) => delete p.securityContext?.seccompProfile],
    ['root allowed', (p) => delete p.securityContext?.runAsNonRoot],
    ['hostNetwork', (p) => (p.hostNetwork = true)],
    ['hostPath', (p) => p.volumes.push({ name: 'h', hostPath: { path: '/' } })],
    ['privileged', (p) => ((p.containers[0] as Container).securityContext!.privileged = true)],
    ['escalation', (p) => delete (p.containers[0] as Container).securityContext!.allowPrivilegeEscalation],
    ['capabilities kept', (p) => ((p.containers[0] as Container).securityContext!.capabilities = {})],
    ['an init container', (p) => (p.initContainers = [{ name: 'init' }])],
  ];
  for (const [what, breakIt] of broken) {
    const pod = ok();
    breakIt(pod);
    t.not(restrictedViolations(pod).length, 0, what);
  }
});

t.test('the Kubernetes manifests', async (t) => {
  const models: Record<string, new (o: Json) => { validate(): void }> = {
    ConfigMap,
    Secret,
    PersistentVolumeClaim,
    Service,
    Deployment,
    NetworkPolicy,
  };
  const all: Json[] = [];
  for (const file of ['warden-ca.yaml', 'orders.yaml']) {
    for (const d of parseAllDocuments(read(compose, 'kubernetes', file))) all.push(d.toJSON() as Json);
  }
  for (const doc of all) {
    const kind = String(doc.kind);
    const name = String((doc.metadata as Json).name);
    const Model = models[kind];
    t.ok(Model, `${kind} ${name}: a known kind`);
    if (Model) t.doesNotThrow(() => new Model(doc).validate(), `${kind} ${name} is valid against the API schema`);
  }
  const named = (kind: string) => new Set(all.filter((d) => d.kind === kind).map((d) => String((d.metadata as Json).name)));
  for (const deployment of all.filter((d) => d.kind === 'Deployment')) {
    const name = String((deployment.metadata as Json).name);
    const pod = podOf(deployment);
    t.same(restrictedViolations(pod), [], `${name}: every container passes Pod Security "restricted"`);
    t.equal(pod.automountServiceAccountToken, false, `${name}: no Kubernetes API token is mounted`);
    const volumes = new Set(pod.volumes.map((v) => String(v.name)));
    for (const v of pod.volumes) {
      if (v.configMap) t.ok(named('ConfigMap').has(String((v.configMap as Json).name)), `volume ${String(v.name)}: its ConfigMap exists`);
      if (v.secret) t.ok(named('Secret').has(String((v.secret as Json).secretName)), `volume ${String(v.name)}: its Secret exists`);
      if (v.persistentVolumeClaim)
        t.ok(named('PersistentVolumeClaim').has(String((v.persistentVolumeClaim as Json).claimName)), 'its PVC exists');
    }
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const m of c.volumeMounts ?? []) t.ok(volumes.has(m.name), `${c.name} mounts volume ${m.name}, which exists`);
      const ports = new Set((c.ports ?? []).map((p) => p.name));
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        const p = c[probe] as { httpGet?: { port: string; path: string }; tcpSocket?: { port: string } } | undefined;
        const port = p?.httpGet?.port ?? p?.tcpSocket?.port;
        if (port) t.ok(ports.has(port), `${c.name} ${probe} uses its port ${port}`);
      }
      for (const e of c.env ?? []) {
        const ref = ((e.valueFrom as Json | undefined)?.secretKeyRef as { name?: string } | undefined)?.name;
        if (ref) t.ok(named('Secret').has(ref), `${c.name} reads Secret ${ref}, which exists`);
      }
    }
    const sidecar = pod.initContainers?.find((c) => c.args?.[0] === 'proxy');
    if (!sidecar) continue;
    t.equal(sidecar.restartPolicy, 'Always', 'Warden is a native sidecar (an init container with restartPolicy: Always)');
    // A native sidecar's startupProbe gates the app containers: Kubernetes starts the backend only
    // once it has passed. /readyz includes the backend check, so a startupProbe on /readyz waits for
    // a backend that waits for it: the pod never starts (the kubelet restarts the sidecar every
    // failureThreshold × periodSeconds). The startupProbe must be /healthz; /readyz is for readiness.
    const path = (probe: string) => (sidecar[probe] as { httpGet?: { path?: string } } | undefined)?.httpGet?.path;
    t.equal(path('startupProbe'), '/healthz', "the sidecar's startupProbe does not wait for the backend (/healthz, not /readyz)");
    t.equal(path('livenessProbe'), '/healthz', 'its livenessProbe is /healthz (a slow backend must not get the sidecar restarted)');
    t.equal(path('readinessProbe'), '/readyz', 'its readinessProbe is /readyz (inbound, backend, certificate, CRL)');
    const mount = sidecar.volumeMounts?.find((m) => m.mountPath === '/etc/warden');
    const configMap = all.find(
      (d) =>
        d.kind === 'ConfigMap' &&
        pod.volumes.some((v) => v.name === mount?.name && (v.configMap as Json | undefined)?.name === (d.metadata as Json).name),
    );
    const text = (configMap?.data as Record<string, string> | undefined)?.['sidecar.yaml'] ?? '';
    // The bootstrap token is a file of the mounted Secret (`${file:…}`), not an environment variable.
    const tokenPath = /bootstrap_token: \$\{file:([^}]+)\}/.exec(text)?.[1] ?? '';
    const secretMount = sidecar.volumeMounts?.find((m) => tokenPath.startsWith(`${m.mountPath}/`));
    const secretVolume = pod.volumes.find((v) => v.name === secretMount?.name)?.secret as Json | undefined;
    t.ok(
      secretVolume && named('Secret').has(String(secretVolume.secretName)),
      `the bootstrap token ${tokenPath} is a file of a mounted Secret`,
    );
    t.equal((secretMount as Json | undefined)?.readOnly, true, 'mounted read-only');
    t.notOk(
      sidecar.env?.some((e) => e.valueFrom),
      'no Secret is passed in an environment variable',
    );
    const tokenFile = join(dirname(caDir), 'k8s-bootstrap-token');
    writeFileSync(tokenFile, 'from-the-secret');
    const env: NodeJS.ProcessEnv = { WARDEN_CA_FINGERPRINT: fingerprint };
    const config = await configCheck('sidecar.yaml', text.replace(`\${file:${tokenPath}}`, `\${file:${tokenFile}}`), env);
    t.equal(config.mesh?.ca.url, 'https://warden-ca.warden.svc:8444', 'the sidecar dials the CA Service');
    t.ok(named('Service').has('warden-ca'));
    // Under the mount, not its root: an emptyDir's root is root's and world-writable, which Warden refuses.
    t.ok(
      sidecar.volumeMounts?.some((m) => (config.mesh?.state_dir ?? '').startsWith(`${m.mountPath}/`)),
      'its state_dir is a directory on a mounted (emptyDir) volume',
    );
    t.ok(
      sidecar.env?.some((e) => e.name === 'WARDEN_CA_FINGERPRINT'),
      'WARDEN_CA_FINGERPRINT is set',
    );
    const ports = new Set((sidecar.ports ?? []).map((p) => p.name));
    t.ok(ports.has('https') && ports.has('admin'));

    // The NetworkPolicy: the inbound port open (callers are held to mTLS and tokens there), the
    // admin port (/metrics, console events, token revocation) only from the observability namespace.
    const labels = ((deployment.spec as Json).template as { metadata: { labels: Record<string, string> } }).metadata.labels;
    const policy = all.find(
      (d) =>
        d.kind === 'NetworkPolicy' &&
        Object.entries(((d.spec as Json).podSelector as { matchLabels: Record<string, string> }).matchLabels).every(
          ([k, v]) => labels[k] === v,
        ),
    );
    t.ok(policy, `a NetworkPolicy selects the ${name} pods`);
    const spec = policy?.spec as { policyTypes: string[]; ingress: { from?: Json[]; ports?: { port: number }[] }[] } | undefined;
    t.ok(spec?.policyTypes.includes('Ingress'), 'it restricts ingress');
    const rulesFor = (port: number) => (spec?.ingress ?? []).filter((r) => !r.ports || r.ports.some((p) => p.port === port));
    t.same(
      rulesFor(config.listeners.inbound.port).map((r) => r.from ?? 'anyone'),
      ['anyone'],
      `the inbound port ${config.listeners.inbound.port} is reachable`,
    );
    t.same(
      rulesFor(config.listeners.admin.port).map((r) => r.from),
      [[{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }]],
      `the admin port ${config.listeners.admin.port} only from the observability namespace`,
    );
  }
  const caConfigMap = all.find((d) => d.kind === 'ConfigMap' && (d.metadata as Json).name === 'warden-ca-config');
  const caText = String((caConfigMap?.data as Json)['ca.yaml']).replace('dir: /var/lib/warden-ca/ca', `dir: ${caDir}`);
  const caConfig = (await parseCaConfig('ca.yaml', caText)).config;
  t.ok(caConfig.server.dns_names.includes('warden-ca.warden.svc'), 'the CA certificate names the Service DNS name');
  mkdirSync(join(dirname(caDir), 'unused'), { recursive: true });
});
