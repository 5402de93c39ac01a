/**
 * Loaded before every test file (.taprc `node-arg`): the test process and everything it starts
 * (sidecars, CAs, clamd, redis) make their temporary files under one directory of its own, removed
 * when the process exits. Tests then need no clean-up of their own: before this, each run of the
 * suite left some 400 directories in /tmp, test keys among them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = mkdtempSync(join(tmpdir(), 'warden-tests-'));
// os.tmpdir() reads TMPDIR on every call, and child processes inherit it.
process.env.TMPDIR = root;
process.once('exit', () => rmSync(root, { recursive: true, force: true }));
