import t from 'tap';
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from '@opentelemetry/api';
import { SamplingDecision } from '@opentelemetry/sdk-trace-base';
import { createSampling } from '../../../src/telemetry/otel-sampler.js';

// The ratio sampler compares the XOR of a trace id's four 32-bit words with ratio × 2³²: LOW
// (XOR 1) is kept at any ratio above 0, HIGH (XOR 2³²−1) only at ratio 1.
const LOW = '00000000000000000000000000000001';
const HIGH = 'ffffffff000000000000000000000000';
const sampledParent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: HIGH,
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
});
const unsampledParent = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: LOW,
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.NONE,
  isRemote: true,
});

const decide = (env: NodeJS.ProcessEnv, traceId: string, parent = ROOT_CONTEXT, ratio?: number) =>
  createSampling(ratio, env).sampler.shouldSample(parent, traceId, 'GET', SpanKind.SERVER, {}, []).decision ===
  SamplingDecision.RECORD_AND_SAMPLED;

t.test('sampling_ratio: parent-based, the ratio for new traces', async (t) => {
  t.equal(decide({}, HIGH, ROOT_CONTEXT, 0), false, 'ratio 0 drops new traces');
  t.equal(decide({}, LOW, ROOT_CONTEXT, 0.5), true);
  t.equal(decide({}, HIGH, ROOT_CONTEXT, 0.5), false);
  t.equal(decide({}, HIGH, sampledParent, 0), true, 'a sampled caller is followed');
  t.equal(decide({}, LOW, unsampledParent, 1), false, 'an unsampled caller too');
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'always_off' }, LOW, ROOT_CONTEXT, 1), true, 'sidecar.yaml wins over the environment');
});

t.test('OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the specification defines them', async (t) => {
  t.equal(decide({}, HIGH), true, 'default: parent-based always on');
  t.equal(decide({}, HIGH, unsampledParent), false);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'always_on' }, HIGH, unsampledParent), true, 'always_on ignores the parent');
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'always_off' }, LOW, sampledParent), false);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, LOW), false);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, LOW, sampledParent), true);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, HIGH), false);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, HIGH, sampledParent), false, 'not parent-based');
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, HIGH, sampledParent), true);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, LOW), true);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }, HIGH), false);
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }, HIGH), true, 'an out-of-range ratio means 1');
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '' }, HIGH), true, 'a blank one too');
  t.equal(decide({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }, LOW), false);
});

t.test('a new trace: the fast decision is the one the sampler takes, for every configuration', async (t) => {
  const configs: [NodeJS.ProcessEnv, number | undefined][] = [
    [{}, undefined],
    [{}, 0],
    [{}, 0.5],
    [{}, 1],
    ...['always_on', 'always_off', 'traceidratio', 'parentbased_always_off', 'parentbased_traceidratio', 'bogus'].map(
      (name): [NodeJS.ProcessEnv, undefined] => [{ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: '0.5' }, undefined],
    ),
    ...['0', '1', '7'].flatMap((arg): [NodeJS.ProcessEnv, undefined][] => [
      [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }, undefined],
      [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }, undefined],
    ]),
  ];
  const ids = [LOW, HIGH, '4bf92f3577b34da6a3ce929d0e0e4736', '7fffffff7fffffff0000000000000000'];
  for (const [env, ratio] of configs) {
    const { sampler, sampleNewTrace } = createSampling(ratio, env);
    for (const id of ids) {
      const expected =
        sampler.shouldSample(ROOT_CONTEXT, id, 'GET', SpanKind.SERVER, {}, []).decision === SamplingDecision.RECORD_AND_SAMPLED;
      t.equal(sampleNewTrace(id), expected, `${env.OTEL_TRACES_SAMPLER ?? `ratio ${ratio}`}: ${id}`);
    }
  }
  t.equal(createSampling(0.5, {}).sampleNewTrace(LOW), true, 'the ratio applies (LOW is kept at any ratio above 0)');
  t.equal(createSampling(0.5, {}).sampleNewTrace(HIGH), false, 'the ratio applies (HIGH only at ratio 1)');
});
