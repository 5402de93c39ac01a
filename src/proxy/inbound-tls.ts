/**
 * What the inbound listener's TLS is made of: certificate files (file mode) or the workload
 * certificate the mesh identity keeps current, and which client-certificate policy the handshake
 * enforces.
 */
import type { TlsMaterial } from '../config/load.js';
import type { ClientCertificateMode, SidecarConfig, TlsFilesConfig } from '../config/types.js';
import type { MeshIdentity } from '../mesh/identity.js';

/**
 * With mesh, the handshake itself refuses callers without a valid certificate when every route
 * requires one (fail fast, no HTTP parsing for them); when some route (or OpenAPI operation) is
 * `mtls: optional`, the
 * certificate is requested and the `peer-authz` stage decides per route.
 */
export function inboundClientCertificates(config: SidecarConfig): ClientCertificateMode {
  const mesh = config.mesh;
  if (!mesh) return config.listeners.inbound.tls.client_certificates;
  const optional =
    mesh.mtls === 'optional' ||
    config.routes.some((r) => r.mtls === 'optional') ||
    Object.values(config.openapi?.operations ?? {}).some((o) => o.mtls === 'optional');
  return optional ? 'request' : 'require';
}

export function inboundTlsSettings(config: SidecarConfig): TlsFilesConfig {
  return { ...config.listeners.inbound.tls, client_certificates: inboundClientCertificates(config) };
}

export function meshTlsMaterial(mesh: MeshIdentity): TlsMaterial {
  const m = mesh.material();
  return { cert: Buffer.from(m.cert), key: Buffer.from(m.key), passphrase: undefined, clientCa: Buffer.from(m.ca) };
}
