/**
 * Preloaded (`node --import=…/kill-at-fs-op.js`) into a warden command a test wants to see killed
 * half-way, at a chosen file-system step, with no hook in the code under test: it wraps node:fs's
 * synchronous calls and sends the process a real SIGKILL just before the WARDEN_TEST_KILL_AT-th step
 * (1-based; 0: never) that changes something under WARDEN_TEST_FS_ROOT — creating or opening a file
 * for writing, writing, linking, renaming, removing, making a directory. With WARDEN_TEST_FS_TRACE
 * set, every such step and each fsync is written to that file at exit, one a line, paths relative to
 * the root: `fsync` lines let a test check what was synced before what.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { relative, resolve } from 'node:path';

const root = process.env.WARDEN_TEST_FS_ROOT;
const killAt = Number(process.env.WARDEN_TEST_KILL_AT ?? 0);
const traceFile = process.env.WARDEN_TEST_FS_TRACE;
const original = { ...fs };
const trace = [];
const fds = new Map();
let steps = 0;

const under = (path) => root !== undefined && typeof path === 'string' && !relative(root, resolve(path)).startsWith('..');
const name = (path) => relative(root, resolve(path)) || '.';

/** A step that changes the file system under the root: counted, killed before when it is the chosen one. */
function step(what, ...paths) {
  if (!paths.every(under)) return;
  steps += 1;
  if (steps === killAt) process.kill(process.pid, 'SIGKILL');
  trace.push([what, ...paths.map(name)].join(' '));
}

const writes = (flags) =>
  typeof flags === 'number'
    ? (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0
    : /[wa+]/.test(flags ?? 'r');

fs.openSync = (path, flags, ...rest) => {
  if (writes(flags)) step('open-w', path);
  const fd = original.openSync(path, flags, ...rest);
  if (under(path)) fds.set(fd, path);
  return fd;
};
fs.writeFileSync = (file, ...rest) => {
  step('write', typeof file === 'number' ? fds.get(file) : file);
  return original.writeFileSync(file, ...rest);
};
fs.writeSync = (fd, ...rest) => {
  step('write', fds.get(fd));
  return original.writeSync(fd, ...rest);
};
fs.fsyncSync = (fd) => {
  original.fsyncSync(fd);
  if (fds.has(fd)) trace.push(`fsync ${name(fds.get(fd))}`);
};
fs.closeSync = (fd) => {
  fds.delete(fd);
  return original.closeSync(fd);
};
for (const call of ['linkSync', 'renameSync']) {
  fs[call] = (from, to) => {
    step(call.replace('Sync', ''), from, to);
    return original[call](from, to);
  };
}
for (const call of ['unlinkSync', 'rmSync', 'rmdirSync', 'mkdirSync']) {
  fs[call] = (path, ...rest) => {
    step(call.replace('Sync', ''), path);
    return original[call](path, ...rest);
  };
}
syncBuiltinESMExports();

if (traceFile) process.on('exit', () => original.writeFileSync(traceFile, trace.map((l) => `${l}\n`).join('')));
