/**
 * Loaded first into every test process (.taprc `node-arg`): registers the TypeScript loader of
 * test/support/ts-hooks.js, and maps stack traces back to the TypeScript sources.
 */
import { register } from 'node:module';

process.setSourceMapsEnabled(true);
register('./ts-hooks.js', import.meta.url);
