#!/usr/bin/env node
// The `warden` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (run automatically by `npm ci` and `npm start`).
try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('warden: dist/ is missing; run `npm run build` first (npm ci does it for you).');
    process.exit(1);
  }
  throw err;
}
