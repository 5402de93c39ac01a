/** The sidecar configuration `warden dev` writes next to its certificate (readable, reloadable). */

export interface DemoPorts {
  port: number;
  adminPort: number;
  backendPort: number;
}

export function demoSidecarYaml({ port, adminPort, backendPort }: DemoPorts): string {
  return `# Written by \`warden dev\`. Edit it and send SIGHUP to reload (an invalid edit is refused, the
# running configuration stays). Every key is documented in sidecar.yaml.example.
service:
  name: demo
listeners:
  inbound:
    host: 127.0.0.1
    port: ${port}
    tls:
      cert: ./tls.crt
      key: ./tls.key
  admin:
    port: ${adminPort}
upstream:
  url: http://127.0.0.1:${backendPort}
  health_path: /healthz
headers:
  internal: ["x-warden-*", "x-internal-token"]
routing:
  unmatched: refuse
routes:
  - id: api
    path: /api/*
    methods: [GET, POST]
    limits:
      max_body_bytes: 1MiB
  - id: health
    path: /healthz
    methods: [GET]
  - id: admin
    path: /admin/*
    access:
      action: deny
`;
}
