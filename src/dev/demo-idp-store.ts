/**
 * In-memory storage adapter for the demo IdP. oidc-provider's own memory adapter is an LRU capped
 * at 1000 entries (a load test would see live tokens evicted and introspected as inactive) and
 * warns on every start; this one keeps every artifact until it expires.
 */

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; userCode?: string; consumed?: number };

interface Entry {
  payload: Payload;
  expiresAt: number; // epoch ms; Infinity for artifacts without expiry (clients)
}

export interface DemoIdpStore {
  /** The `adapter` setting of the Provider: one adapter per model name, all sharing this store. */
  adapter: (model: string) => ModelAdapter;
  /** Registers a client as if dynamically registered (oidc-provider falls back to the adapter for unknown ids). */
  putClient(metadata: Payload & { client_id: string }): void;
  /** The client an opaque access token was issued to (opaque token values are their storage ids). */
  ownerOf(token: string): string | undefined;
}

interface ModelAdapter {
  upsert(id: string, payload: Payload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Payload | undefined>;
  findByUid(uid: string): Promise<Payload | undefined>;
  findByUserCode(userCode: string): Promise<Payload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

const SWEEP_EVERY = 1000;

export function createDemoIdpStore(): DemoIdpStore {
  const entries = new Map<string, Entry>();
  let writes = 0;

  const live = (key: string): Payload | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) entries.delete(key);
    else return entry?.payload;
    return undefined;
  };
  const sweep = () => {
    const now = Date.now();
    for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
  };
  const scan = (model: string, match: (payload: Payload) => boolean) => {
    for (const key of entries.keys()) {
      const payload = key.startsWith(`${model}:`) ? live(key) : undefined;
      if (payload && match(payload)) return payload;
    }
    return undefined;
  };

  const adapter = (model: string): ModelAdapter => {
    const key = (id: string) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        entries.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
        if (++writes % SWEEP_EVERY === 0) sweep();
      },
      find: async (id) => live(key(id)),
      findByUid: async (uid) => scan(model, (p) => p.uid === uid),
      findByUserCode: async (userCode) => scan(model, (p) => p.userCode === userCode),
      async consume(id) {
        const payload = live(key(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        entries.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const [k, entry] of entries) if (entry.payload.grantId === grantId) entries.delete(k);
      },
    };
  };

  return {
    adapter,
    putClient: (metadata) => void entries.set(`Client:${metadata.client_id}`, { payload: metadata, expiresAt: Infinity }),
    ownerOf: (token) => {
      const payload = live(`ClientCredentials:${token}`) ?? live(`AccessToken:${token}`);
      return typeof payload?.clientId === 'string' ? payload.clientId : undefined;
    },
  };
}
