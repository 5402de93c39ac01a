/**
 * undici 7's HTTP/1 parser asserts `!this.paused` in `Parser.finish()`. The forwarder pauses undici
 * while a client's socket is full (forward.ts onResponseData: that pause bounds memory); a backend
 * that closes its connection after a large answer (`Connection: close`: gunicorn's sync worker,
 * HTTP/1.0-style servers) while the parser is paused made `finish()` throw from the socket's 'end'
 * handler, and the uncaught AssertionError ended the process (red team 27d F1, nodejs/undici#5360).
 * Upstream fixed it in undici 8 (#5474), not in 7; patches/undici+7.30.2.patch applies that fix at
 * `npm ci` (patch-package, package.json postinstall). An install that ran no install scripts
 * (`npm ci --ignore-scripts`, another package manager, a copied node_modules) has the crash back,
 * silently: the sidecar says so at start. It reads the installed source once; nothing per request.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type PausedFinish = 'fixed' | 'asserts' | 'unknown';

/** What `finish()` in client-h1.js source does with a paused parser: 'unknown' when no `finish ()` method is found. */
export function pausedFinishOf(source: string): PausedFinish {
  const start = source.indexOf('\n  finish () {');
  if (start < 0) return 'unknown';
  const end = source.indexOf('\n  }\n', start);
  if (end < 0) return 'unknown';
  return source.slice(start, end).includes('assert(!this.paused)') ? 'asserts' : 'fixed';
}

export interface InstalledUndici {
  file: string;
  version: string;
  finish: PausedFinish;
}

/** The undici this process loads (the one `import 'undici'` resolves to) and what its `finish()` does. */
export function installedUndici(): InstalledUndici {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('undici/package.json'));
  const file = join(root, 'lib/dispatcher/client-h1.js');
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return { file, version, finish: 'unknown' };
  }
  return { file, version, finish: pausedFinishOf(source) };
}

/** Logs a warning at start when the installed undici still asserts (the patch did not apply). */
export function warnIfUndiciUnpatched(logger: { warn(fields: object, msg: string): void }): void {
  let undici: InstalledUndici;
  try {
    undici = installedUndici();
  } catch {
    return; // a bundled or unusual layout: nothing to read, nothing to say
  }
  if (undici.finish !== 'asserts') return;
  logger.warn(
    { undici: undici.version, file: undici.file },
    'undici lacks the fix for nodejs/undici#5360 (patches/undici+7.30.2.patch was not applied: installed with --ignore-scripts?): ' +
      'a backend closing its connection after a large answer can crash this process; run `npx patch-package` where Warden is installed',
  );
}
