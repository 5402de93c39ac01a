/**
 * SIGHUP → reload of the sidecar's file (warden proxy, warden dev), merged: at most one reload
 * running and one waiting. Each compiles the whole plan on the event loop (~2 s for a 300-operation
 * OpenAPI document; requests wait meanwhile) and keeps the generation it replaced alive for
 * drain_timeout, so 100 signals in a burst each ran one — minutes of stalled requests and twice the
 * memory — although all but the last read the same file. The waiting reload reads the file when it
 * runs, so a signal while one waits adds nothing: the last file written before it runs is in force.
 * Sidecar.reload(load) itself is not merged: each call applies the configuration its `load` gives.
 */
import { loadSidecarConfig } from '../config/load.js';
import type { Sidecar } from '../proxy/sidecar.js';

/** What a signal did: started a reload, queued one after the running one, or merged into the one queued. */
export type ReloadAsk = 'started' | 'queued' | 'merged';

/** `run` reads the file and applies it; the returned function asks for a reload. */
export function mergedReloads(run: () => Promise<unknown>): () => ReloadAsk {
  let running = false;
  let waiting = false;
  const start = (): void => {
    running = true;
    void run()
      .catch(() => undefined) // the reload reports its own failure (warden.config.reload_failed)
      .finally(() => {
        running = false;
        if (!waiting) return;
        waiting = false;
        start();
      });
  };
  return () => {
    if (!running) {
      start();
      return 'started';
    }
    if (waiting) return 'merged';
    waiting = true;
    return 'queued';
  };
}

/**
 * Reloads `file` on a signal, merged (mergedReloads): one running, one waiting, and a signal while
 * one waits changes nothing, as the waiting one reads the file when it runs.
 */
export function reloadOnSignal(file: string, sidecarOf: () => Sidecar | undefined): (why: string) => void {
  const ask = mergedReloads(async () => sidecarOf()?.reload(() => loadSidecarConfig(file, process.env, true)));
  return (why) => {
    const asked = ask();
    const logger = sidecarOf()?.logger;
    if (asked === 'started') logger?.info({ file }, `${why}: reloading configuration`);
    else if (asked === 'queued') logger?.info({ file }, `${why}: a reload is running; one more follows it, reading the file then`);
    else logger?.debug({ file }, `${why}: merged into the reload waiting to run (it reads the file when it runs)`);
  };
}
