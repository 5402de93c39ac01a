/** The sidecar configuration `warden dev` writes next to its certificate (readable, reloadable). */

export interface DemoSettings {
  port: number;
  adminPort: number;
  backendPort: number;
  mesh: { spiffeId: string; caUrl: string; bundleFile: string; token: string; stateDir: string; allowPrefix: string };
}

export function demoSidecarYaml({ port, adminPort, backendPort, mesh }: DemoSettings): string {
  return `# Written by \`warden dev\`. Edit it and send SIGHUP to reload (an invalid edit is refused, the
# running configuration stays). Every key is documented in sidecar.yaml.example.
service:
  name: demo
listeners:
  inbound:
    host: 127.0.0.1
    port: ${port}
  admin:
    port: ${adminPort}
upstream:
  url: http://127.0.0.1:${backendPort}
  health_path: /healthz
headers:
  internal: ["x-warden-*", "x-internal-token"]
# The sidecar's workload identity: enrolled at the demo CA with a one-time token, kept in state_dir,
# renewed at 70 % of its lifetime. Inbound mTLS uses it; callers need a certificate from the same CA.
mesh:
  spiffe_id: ${mesh.spiffeId}
  dns_names: [localhost]
  ca:
    url: ${mesh.caUrl}
    bundle: ${mesh.bundleFile}
  bootstrap_token: ${mesh.token}
  state_dir: ${mesh.stateDir}
  refresh:
    crl: 5s
peers:
  allow: ["${mesh.allowPrefix}"]
routing:
  unmatched: refuse
routes:
  - id: api
    path: /api/*
    methods: [GET, POST]
    limits:
      max_body_bytes: 1MiB
  - id: public
    path: /public/*
    methods: [GET]
    mtls: optional
  - id: health
    path: /healthz
    methods: [GET]
    mtls: optional
  - id: admin
    path: /admin/*
    access:
      action: deny
`;
}
