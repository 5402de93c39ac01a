/** The sidecar configuration `warden dev` writes next to its certificate (readable, reloadable). */

export interface DemoSettings {
  port: number;
  adminPort: number;
  backendPort: number;
  mesh: { spiffeId: string; caUrl: string; bundleFile: string; token: string; stateDir: string; allowPrefix: string };
  idp: { issuer: string; audience: string; clientId: string; clientSecret: string };
  openapiFile: string;
}

export function demoSidecarYaml({ port, adminPort, backendPort, mesh, idp, openapiFile }: DemoSettings): string {
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
# Token translation: callers send the demo IdP's tokens (opaque ones are introspected, JWTs verified
# with its keys); the backend receives a 5-minute ES256 token this sidecar minted instead.
tokens:
  issuers:
    - id: demo-idp
      issuer: ${idp.issuer}
      audience: ["${idp.audience}"]
      jwt: { typ: at+jwt }
      introspection:
        client_id: ${idp.clientId}
        client_secret: ${idp.clientSecret}
  cache:
    max_ttl: 30s
  mint:
    audience: demo-backend
    jwks_path: /.well-known/jwks.json
routing:
  unmatched: refuse
# The routes are the operations of the demo's OpenAPI document: its \`security\` gives their scopes,
# x-warden-rate-limit their limits, and requests are validated against it (400 / 415).
openapi:
  document: ${openapiFile}
  allow_public: true
  operations:
    echo: { limits: { max_body_bytes: 1MiB } }
    # No peers list here: a list needs a certificate, and these two admit callers without one.
    publicInfo: { mtls: optional, peers: { allow: [] } }
    health: { mtls: optional, peers: { allow: [] } }
    adminStats: { access: { action: deny } }
# SQL injection, XSS, traversal, command injection, SSRF and NoSQL operators in any parameter or
# JSON body: 403 (docs/threats.md). Malware scanning needs a clamd, so the demo leaves it out.
threats:
  waf: { mode: block, paranoia: 1 }
`;
}
