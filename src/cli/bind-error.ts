/** What a listen error says about the config: the field to name (host or port) and the message. */
export interface BindProblem {
  field: 'host' | 'port';
  message: string;
}

/**
 * The bind error of a listener at `host`:`port` as a config problem, or undefined for another error.
 * EADDRNOTAVAIL is about the address, so it names the host field: naming the port sent operators
 * looking at the wrong line.
 */
export function bindProblem(error: NodeJS.ErrnoException, host: string, port: number | string): BindProblem | undefined {
  switch (error.code) {
    case 'EADDRINUSE':
      return { field: 'port', message: `${port} is already in use (EADDRINUSE)` };
    case 'EACCES':
      return { field: 'port', message: `${port} needs privileges to bind (EACCES)` };
    case 'EADDRNOTAVAIL':
      return { field: 'host', message: `${host} is not an address of this host (EADDRNOTAVAIL)` };
    default:
      return undefined;
  }
}
