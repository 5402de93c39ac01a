/** The reference pages list every error code and every security event the code knows. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERRORS } from '../../src/errors.js';
import { EVENTS } from '../../src/telemetry/events.js';
import { repoRoot } from '../support/sidecar.js';

const errorsDoc = readFileSync(join(repoRoot, 'docs/errors.md'), 'utf8');
const eventsDoc = readFileSync(join(repoRoot, 'docs/security-events.md'), 'utf8');

t.test('docs/errors.md has a row per error code, with its status and event', async (t) => {
  for (const [code, spec] of Object.entries(ERRORS)) {
    const row = errorsDoc.split('\n').find((l) => l.startsWith(`| \`${code}\``));
    t.ok(row, `${code} documented`);
    t.match(row ?? '', new RegExp(`\\| ${spec.status} \\|`), `${code} status ${spec.status}`);
    t.match(row ?? '', spec.event ? `\`${spec.event}\`` : '| — |', `${code} event`);
  }
});

t.test('docs/security-events.md has a row per event, with its severity', async (t) => {
  for (const [name, spec] of Object.entries(EVENTS)) {
    t.match(eventsDoc, new RegExp(`^\\| \`${name.replace(/\./g, '\\.')}\` \\| ${spec.severity} \\|`, 'm'), name);
  }
});
