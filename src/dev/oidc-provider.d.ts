/**
 * oidc-provider ships no TypeScript types (and @types/oidc-provider lags behind v9): this declares
 * only the surface the demo IdP uses, so type-aware lint stays strict around it.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface Client {
    readonly clientId: string;
    readonly clientAuthMethod: string;
  }

  /** The token an introspection or revocation request is about. */
  export interface Token {
    readonly kind: string;
    readonly clientId: string;
  }

  export interface KoaContextWithOIDC {
    readonly path: string;
    readonly method: string;
  }

  export type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

  export interface ResourceServerInfo {
    scope: string;
    audience?: string;
    accessTokenTTL?: number;
    accessTokenFormat?: 'opaque' | 'jwt';
    jwt?: { sign?: { alg: string } };
  }

  /** Loosely typed: the provider validates its configuration itself at construction. */
  export interface Configuration {
    [key: string]: unknown;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    use(middleware: Middleware): void;
  }

  export const errors: {
    InvalidTarget: new (description?: string) => Error;
    InvalidRequest: new (description?: string) => Error;
  };
}
