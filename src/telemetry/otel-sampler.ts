/**
 * The trace sampler: `telemetry.otlp.sampling_ratio` (parent-based: a caller's decision is
 * honoured, the ratio applies to new traces), else OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as
 * the OpenTelemetry specification defines them, else parent-based always-on (the SDK's default).
 * Built here rather than left to the SDK because request spans are sampled outside its tracer.
 */
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';

export function createSampler(ratio: number | undefined, env: NodeJS.ProcessEnv): Sampler {
  if (ratio !== undefined) return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const arg = raw ? Number(raw) : NaN;
  // The specification's default ratio when the argument is missing or out of range.
  const envRatio = arg >= 0 && arg <= 1 ? arg : 1;
  switch (env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(envRatio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(envRatio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}
