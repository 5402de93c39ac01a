/**
 * The backend check behind /readyz. Each call used to start a probe of its own, over the pool the
 * requests use: 100 callers of /readyz against a health path answering in 200 ms held the pool's
 * 16 connections, real requests queued behind them (10 → 960 ms) and most of the probes timed out,
 * so the pod was reported not ready. Now one probe runs at a time, whoever asks while it runs gets
 * its answer, the answer stands for PROBE_REUSE_MS, and an HTTP probe has a connection of its own.
 */
import { connect } from 'node:net';
import { Client } from 'undici';
import type { UpstreamConfig } from '../config/types.js';
import { upstreamAddressOf } from './upstream-address.js';

/** How long a probe's answer is given to later callers: /readyz costs the backend at most one probe per this. */
export const PROBE_REUSE_MS = 1000;

export interface BackendProbe {
  /** True when a connection to the backend opens (and the health path answers < 500, if configured). */
  check(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export function createBackendProbe(cfg: UpstreamConfig): BackendProbe {
  const healthPath = cfg.health_path;
  // One connection, apart from the pool: probes never take a connection from a request, nor wait for one.
  const client = healthPath === undefined ? undefined : probeClient(cfg.url);
  let running: Promise<boolean> | undefined;
  let last: { ok: boolean; at: number } | undefined;

  return {
    check(timeoutMs) {
      if (running !== undefined) return running;
      if (last !== undefined && performance.now() - last.at < PROBE_REUSE_MS) return Promise.resolve(last.ok);
      const probe =
        client !== undefined && healthPath !== undefined ? httpProbe(client, healthPath, timeoutMs) : tcpProbe(cfg.url, timeoutMs);
      running = probe.then((ok) => {
        running = undefined;
        last = { ok, at: performance.now() };
        return ok;
      });
      return running;
    },
    async close() {
      await client?.close();
    },
  };
}

function probeClient(url: string): Client {
  const { origin, socketPath } = upstreamAddressOf(url);
  return new Client(origin, { pipelining: 1, ...(socketPath !== undefined ? { socketPath } : {}) });
}

async function httpProbe(client: Client, path: string, timeoutMs: number): Promise<boolean> {
  try {
    const { statusCode, body } = await client.request({
      method: 'GET',
      path,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await body.dump();
    return statusCode < 500;
  } catch {
    return false;
  }
}

/** Opens and closes one connection: the backend is listening. No request, so no backend side effects. */
function tcpProbe(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const { origin, socketPath } = upstreamAddressOf(url);
    const { port, hostname } = new URL(origin);
    const socket = socketPath !== undefined ? connect(socketPath) : connect(Number(port || 80), hostname.replace(/^\[|\]$/g, ''));
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
