/**
 * The trace sampler: `telemetry.otlp.sampling_ratio` (parent-based: a caller's decision is
 * honoured, the ratio applies to new traces), else OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as
 * the OpenTelemetry specification defines them, else parent-based always-on (the SDK's default).
 * Built here rather than left to the SDK because request spans are sampled outside its tracer.
 */
import { ROOT_CONTEXT, SpanKind, type Attributes } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';

export interface Sampling {
  /** The sampler: for spans whose caller sent a context, and for the SDK's tracer. */
  readonly sampler: Sampler;
  /**
   * Its decision for a new trace (no caller context): the root sampler's, asked directly. Most
   * requests from outside start a trace; this spares them the context lookups of a parent-based
   * sampler and, for the always-on default, any call at all.
   */
  readonly sampleNewTrace: (traceId: string) => boolean;
}

/** What a sampling decision gets for a request: the samplers built here read no attributes or links. */
export const NO_ATTRIBUTES: Attributes = Object.freeze({});
export const NO_LINKS: [] = [];

export function createSampling(ratio: number | undefined, env: NodeJS.ProcessEnv): Sampling {
  const [root, parentBased] = samplerOf(ratio, env);
  const sampler = parentBased ? new ParentBasedSampler({ root }) : root;
  const sampleNewTrace =
    root instanceof AlwaysOnSampler
      ? () => true
      : root instanceof AlwaysOffSampler
        ? () => false
        : (traceId: string) =>
            root.shouldSample(ROOT_CONTEXT, traceId, '', SpanKind.SERVER, NO_ATTRIBUTES, NO_LINKS).decision ===
            SamplingDecision.RECORD_AND_SAMPLED;
  return { sampler, sampleNewTrace };
}

/**
 * A ratio as a sampler. 1 and 0 are always-on and always-off: the same decisions for valid trace
 * ids (the only ones the sidecar makes), without the ratio sampler's id check and hash per trace.
 */
function ratioSampler(ratio: number): Sampler {
  if (ratio >= 1) return new AlwaysOnSampler();
  if (ratio <= 0) return new AlwaysOffSampler();
  return new TraceIdRatioBasedSampler(ratio);
}

/** The root sampler, and whether a caller's decision is followed. */
function samplerOf(ratio: number | undefined, env: NodeJS.ProcessEnv): [Sampler, boolean] {
  if (ratio !== undefined) return [ratioSampler(ratio), true];
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const arg = raw ? Number(raw) : NaN;
  // The specification's default ratio when the argument is missing or out of range.
  const envRatio = arg >= 0 && arg <= 1 ? arg : 1;
  switch (env.OTEL_TRACES_SAMPLER?.trim().toLowerCase()) {
    case 'always_on':
      return [new AlwaysOnSampler(), false];
    case 'always_off':
      return [new AlwaysOffSampler(), false];
    case 'traceidratio':
      return [ratioSampler(envRatio), false];
    case 'parentbased_always_off':
      return [new AlwaysOffSampler(), true];
    case 'parentbased_traceidratio':
      return [ratioSampler(envRatio), true];
    default:
      return [new AlwaysOnSampler(), true];
  }
}
