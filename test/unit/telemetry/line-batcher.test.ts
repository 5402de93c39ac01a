import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { LineBatcher } from '../../../src/telemetry/line-batcher.js';

const root = resolve(import.meta.dirname, '../../..');

/** A batcher in front of a real sonic-boom writer on a temporary file, as logger.ts builds it for stdout. */
function fileBatcher(batchChars: number) {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-lines-')), 'out.log');
  const fd = openSync(file, 'w');
  const batcher = new LineBatcher(pino.destination({ dest: fd, sync: true, minLength: 0 }), batchChars);
  const read = () => readFileSync(file, 'utf8');
  /** The file's text once it has `length` characters (or after 5 s). */
  const readWhen = async (length: number) => {
    for (let waited = 0; read().length < length && waited < 5000; waited += 10) await sleep(10);
    return read();
  };
  return { batcher, read, readWhen };
}

t.test('lines wait in the batch until it is full or flushed, then arrive whole and in order', async (t) => {
  const { batcher, read, readWhen } = fileBatcher(100);
  batcher.write('a'.repeat(40) + '\n');
  batcher.write('b'.repeat(40) + '\n');
  await sleep(50);
  t.equal(read(), '', 'below the batch size nothing is written');
  batcher.write('c'.repeat(40) + '\n');
  t.equal(await readWhen(123), `${'a'.repeat(40)}\n${'b'.repeat(40)}\n${'c'.repeat(40)}\n`, 'a full batch is written');
  batcher.write('d\n');
  batcher.flush();
  t.match(await readWhen(125), /c\nd\n$/, 'flush writes a partial batch');
});

/** The `i` of each line a child process logs (20 000 lines in bursts) before it ends with `ending`. */
function linesOfChild(ending: string): { seen: number[]; status: number | null } {
  const script = `
    import { createLogger } from ${JSON.stringify(join(root, 'dist/telemetry/logger.js'))};
    const logger = createLogger({ level: 'info' });
    let i = 0;
    const burst = () => {
      for (let k = 0; k < 500 && i < 20000; k++, i++) logger.info({ i }, 'line');
      if (i < 20000) setImmediate(burst);
      else ${ending};
    };
    burst();`;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seen = out.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { i: number }).i);
  return { seen, status: out.status };
}

t.test('a process that exits at once still writes every line, in order', async (t) => {
  const { seen } = linesOfChild('process.exit(0)');
  t.equal(seen.length, 20000);
  t.ok(
    seen.every((i, at) => i === at),
    'in the order logged',
  );
});

t.test('so does a process that crashes on an uncaught error', async (t) => {
  const { seen, status } = linesOfChild("throw new Error('crash')");
  t.equal(status, 1, 'it crashed');
  t.equal(seen.length, 20000);
  t.ok(
    seen.every((i, at) => i === at),
    'in the order logged',
  );
});

/** A writer that takes nothing: what it is handed stays in its backlog. */
function stalledWriter() {
  const written: string[] = [];
  return {
    written,
    backlog: 0,
    write(data: string) {
      written.push(data);
      this.backlog += data.length;
      return false;
    },
    flush: () => undefined,
    flushSync: () => undefined,
  };
}

const access = (i: number) => `{"level":"info","time":1,"url.path":"/x/${i}","msg":"request"}\n`;
const event = (i: number) => `{"level":"info","time":1,"event":"warden.authz.denied","i":${i},"msg":"warden.authz.denied"}\n`;
const warning = (i: number) => `{"level":"warn","time":1,"i":${i},"msg":"careful"}\n`;
const info = (i: number) => `{"level":"info","time":1,"i":${i},"msg":"note"}\n`;

t.test(
  'bounded: past three quarters only events and warnings are kept, past the bound none; drops counted by kind and reported once',
  async (t) => {
    const writer = stalledWriter();
    const batcher = new LineBatcher(writer, 1000, { bytes: 20_000, service: 'svc' });
    for (let i = 0; i < 400; i++) {
      batcher.write(access(i));
      batcher.write(event(i));
      batcher.write(warning(i));
      batcher.write(info(i));
    }
    batcher.flush();
    const text = writer.written.join('');
    t.ok(text.length <= 20_000, `what waits stays within the bound (${text.length})`);
    const count = (re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;
    t.ok(count(/"event"/) > count(/"msg":"request"/), 'events outlast access lines');
    t.ok(count(/"level":"warn"/) > count(/"msg":"note"/), 'warnings outlast info lines');
    t.ok(batcher.dropped.access > 0 && batcher.dropped.event > 0 && batcher.dropped.other > 0, JSON.stringify(batcher.dropped));
    const total = batcher.dropped.access + batcher.dropped.event + batcher.dropped.other;
    t.equal(total + text.split('\n').length - 1, 1600, 'every line is written whole or dropped whole');

    // The writer catches up: one line reports the drops; more catching up reports nothing more.
    writer.backlog = 0;
    writer.written.length = 0;
    batcher.drained();
    batcher.drained();
    batcher.flush();
    const reports = writer.written.join('').split('\n').filter(Boolean);
    t.equal(reports.length, 1);
    const report = JSON.parse(reports[0]!) as Record<string, unknown>;
    t.match(report, { level: 'warn', service: 'svc', 'warden.log.dropped': total, msg: new RegExp(`^dropped ${total} log lines`) });
  },
);

t.test('bounded: below three quarters nothing is classified or dropped', async (t) => {
  const writer = stalledWriter();
  const batcher = new LineBatcher(writer, 1000, { bytes: 1_000_000 });
  for (let i = 0; i < 1000; i++) batcher.write(access(i));
  batcher.flush();
  t.same(batcher.dropped, { access: 0, event: 0, other: 0 });
  t.equal(writer.written.join('').split('\n').length - 1, 1000);
});
