/**
 * Reading a collector's `partial_success` (src/telemetry/partial-success.ts) and counting it
 * (rejection-counting.ts): both formats, as the OTel library's own deserializers read them, the
 * message cut and escaped, the count clamped to the batch sent, and hostile answers read in bounded
 * time: the library reads up to 4 MiB, and decoding one (with the JSON.stringify its diag.warn was
 * given) cost 11–24 ms of main thread per export.
 */
import t from 'tap';
import { JsonLogsSerializer, ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { JSON_READ_BYTES, MESSAGE_CHARS, partialSuccessOfJson, partialSuccessOfProtobuf } from '../../../src/telemetry/partial-success.js';
import { countingRejections } from '../../../src/telemetry/rejection-counting.js';
import { TelemetryDrops } from '../../../src/telemetry/telemetry-drops.js';
import { partialSuccessBody } from '../../support/otlp-receiver.js';

const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));

t.test('protobuf: what the library reads, bounded', async (t) => {
  const body = partialSuccessBody('logs', false, 42, 'attributes refused');
  t.same(ProtobufLogsSerializer.deserializeResponse(body), {
    partialSuccess: { rejectedLogRecords: 42, errorMessage: 'attributes refused' },
  });
  t.same(partialSuccessOfProtobuf(body), { rejected: 42, message: 'attributes refused' });
  t.same(partialSuccessOfProtobuf(partialSuccessBody('traces', false, 0, 'a warning')), { rejected: 0, message: 'a warning' });
  t.equal(partialSuccessOfProtobuf(new Uint8Array()), undefined, 'an empty answer: no partial success');
  t.equal(partialSuccessOfProtobuf(Buffer.from([0x0a, 0x7f, 0x08])), undefined, 'truncated: nothing');
  t.equal(partialSuccessOfProtobuf(Buffer.from([0x0b])), undefined, 'a group wire type: nothing');
  const long = partialSuccessOfProtobuf(partialSuccessBody('traces', false, 5, '\u001b]0;x\u0007\u202e' + 'é'.repeat(2000)));
  t.equal(long?.rejected, 5);
  t.match(long?.message, /^\\x1b\]0;x\\x07\\u\{202e\}é+… \(4009 bytes\)$/, `escaped and cut: ${long?.message.slice(0, 40)}`);
  t.ok((long?.message.length ?? 0) <= MESSAGE_CHARS + 40, 'at most 256 characters and the note');
});

t.test('JSON: parsed whole up to 64 KiB, its start past it', async (t) => {
  t.same(JsonLogsSerializer.deserializeResponse(partialSuccessBody('logs', true, 3, 'x')), {
    partialSuccess: { rejectedLogRecords: '3', errorMessage: 'x' },
  });
  t.same(partialSuccessOfJson(partialSuccessBody('logs', true, 3, 'x')), { rejected: 3, message: 'x' }, 'int64 as a string');
  t.same(partialSuccessOfJson(json({ partialSuccess: { errorMessage: 'y', rejectedSpans: 9 } })), { rejected: 9, message: 'y' });
  t.same(partialSuccessOfJson(json({ partial_success: { rejected_data_points: '7' } })), { rejected: 7, message: '' }, 'snake case');
  t.same(partialSuccessOfJson(json({})), undefined, 'none');
  t.same(partialSuccessOfJson(json({ partialSuccess: { rejectedSpans: -4 } })), { rejected: 0, message: '' }, 'negative: none');
  t.same(partialSuccessOfJson(json({ partialSuccess: { rejectedSpans: 'x' } })), { rejected: 0, message: '' });
  t.equal(partialSuccessOfJson(Buffer.from('{"partialSuccess":')), undefined, 'not JSON');
  t.equal(partialSuccessOfJson(Buffer.from('null')), undefined);

  const big = partialSuccessBody('traces', true, 11, 'over quota \u001b\n' + '\\u0041'.repeat(JSON_READ_BYTES));
  t.ok(big.length > JSON_READ_BYTES);
  const read = partialSuccessOfJson(big);
  t.equal(read?.rejected, 11, 'past 64 KiB: the count from its start');
  t.match(read?.message, /^over quota \\x1b\\x0a\\u0041(\\u0041)*/, 'escapes undone, then shown escaped');
  t.match(read?.message, new RegExp(`… \\(an answer of ${big.length} bytes\\)$`));
  // A cut in the middle of an escape.
  const cut = partialSuccessOfJson(
    Buffer.from(`{"partialSuccess":{"rejectedSpans":2,"errorMessage":"${'a'.repeat(254)}\\u0041${'b'.repeat(JSON_READ_BYTES)}"}}`),
  );
  t.equal(cut?.message.startsWith('a'.repeat(254)), true, 'an escape split by the cut is left out');
  const otherOrder = Buffer.from(`{"partialSuccess":{"errorMessage":"${'m'.repeat(JSON_READ_BYTES)}","rejectedSpans":2}}`);
  t.equal(partialSuccessOfJson(otherOrder), undefined, 'past 64 KiB in another order: not read (documented)');
});

t.test('counting: clamped to the batch sent, the library given an empty answer, the message told', async (t) => {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const drops = new TelemetryDrops((fields, msg) => lines.push({ fields: fields as Record<string, unknown>, msg }), 50);
  const serializer = countingRejections(ProtobufTraceSerializer, false, (spans: unknown[]) => spans.length, drops.rejectedBy('traces'));
  serializer.serializeRequest([]);
  // Three spans sent (the library serializes before sending; the count is what it serialized).
  const counted = countingRejections(
    { serializeRequest: () => new Uint8Array(1), deserializeResponse: () => ({ partialSuccess: { rejectedSpans: 1 } }) },
    false,
    (n: number) => n,
    drops.rejectedBy('traces'),
  );
  counted.serializeRequest(3);
  t.same(counted.deserializeResponse(partialSuccessBody('traces', false, 1e9, 'no')), {}, 'the library gets nothing to warn about');
  t.equal(drops.counts.traces.collector_rejected, 3, 'a claim past the batch: the batch');
  counted.deserializeResponse(partialSuccessBody('traces', false, 0, 'only a warning'));
  counted.deserializeResponse(new Uint8Array());
  t.equal(drops.counts.traces.collector_rejected, 3, 'nothing rejected, nothing counted');
  const points = countingRejections(
    { serializeRequest: () => new Uint8Array(1), deserializeResponse: () => ({}) },
    true,
    () => 10,
    drops.rejectedBy('metrics'),
  );
  points.serializeRequest(undefined);
  points.deserializeResponse(partialSuccessBody('metrics', true, 4, 'points \u2028'));
  t.equal(drops.counts.metrics.collector_rejected, 4);
  await new Promise((r) => setTimeout(r, 10));
  t.equal(lines.length, 1, 'one line');
  t.same(lines[0]?.fields.collector_message, { traces: 'no', metrics: 'points \\u{2028}' });
  t.match(
    lines[0]?.msg,
    /dropped 0 log records and 3 spans and 4 metric data points since start, the collector rejecting spans, metric data points \(partial success\)/,
  );
});

t.test('hostile answers are read in bounded time (16 KiB, 1 MiB, 10 MiB)', async (t) => {
  const time = (f: () => unknown) => {
    for (let i = 0; i < 3; i++) f();
    const start = process.hrtime.bigint();
    for (let i = 0; i < 10; i++) f();
    return Number(process.hrtime.bigint() - start) / 1e7;
  };
  const report: string[] = [];
  for (const size of [16 * 1024, 1024 * 1024, 10 * 1024 * 1024]) {
    const inputs: Record<string, Buffer> = {
      'proto message': partialSuccessBody('traces', false, 1, 'E'.repeat(size)),
      'proto tiny fields': Buffer.concat([
        Buffer.alloc(size, 0x08).map((_, i) => (i % 2 ? 0x01 : 0x08)),
        partialSuccessBody('traces', false, 1, 'x'),
      ]),
      'json message': partialSuccessBody('traces', true, 1, 'E'.repeat(size)),
      'json escapes': partialSuccessBody('traces', true, 1, '"\\'.repeat(size / 2)),
      'json no match': Buffer.from(' '.repeat(size) + '{}'),
      'json unclosed': Buffer.from(`{"partialSuccess":{"rejectedSpans":1,"errorMessage":"${'\\"'.repeat(size / 2)}`),
    };
    for (const [name, body] of Object.entries(inputs)) {
      const ms = time(() => (name.startsWith('proto') ? partialSuccessOfProtobuf(body) : partialSuccessOfJson(body)));
      report.push(`${name} ${size}: ${ms.toFixed(3)} ms`);
      // Bounded reads (the first 64 KiB) take well under a millisecond; 5 ms a call, not 2, leaves room for a
      // loaded CI host (2.9 ms once, 10 MiB unclosed); a JS byte loop over the whole 10 MiB takes ~15 ms.
      t.ok(ms < 5, `${name}, ${size} bytes: ${ms.toFixed(3)} ms`);
    }
  }
  t.comment(report.join('\n'));
});
