/**
 * `validate-request` stages: the request against its OpenAPI operation — parameters before the
 * body is read, the body (chosen by Content-Type; an unlisted type is 415) once the plan has
 * buffered it. `enforce` refuses with 400 / 415 listing the violation; `report` raises
 * `warden.input.invalid` (action detect) and lets the request through.
 */
import { WardenError } from '../errors.js';
import { contentTypeRefusal } from '../net/media-type.js';
import type { BodyVerdict, RequestValidator } from '../openapi/request-validator.js';
import type { RequestContext, Stage } from '../pipeline/stage.js';
import { reportDetected } from '../pipeline/rescue.js';
import type { EventBus } from '../telemetry/events.js';

export type ValidationMode = 'enforce' | 'report' | 'off';

function refusal(v: NonNullable<BodyVerdict>): WardenError {
  if (v === 'unsupported') {
    return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'openapi.content',
      detail: 'This operation does not accept that Content-Type.',
    });
  }
  if ('checkable' in v) {
    return new WardenError('ERR_MEDIA_TYPE_UNSUPPORTED', {
      rule: 'openapi.content',
      detail: `This operation's body schema can be checked only in ${v.checkable}: send the body as one of those.`,
    });
  }
  // Bounded like the errors list (rescue.ts): a pointer may hold a client's name (`/query/limit[…]`).
  const detail = `${v.pointer.slice(0, 200)} ${v.message}`;
  return new WardenError('ERR_REQUEST_INVALID', {
    rule: `openapi${v.pointer.split('/').slice(0, 2).join('.')}`,
    detail,
    violations: [v],
  });
}

function verdictOf(v: BodyVerdict, mode: ValidationMode, ctx: RequestContext, events: EventBus | undefined) {
  if (v === undefined) return undefined;
  if (mode === 'enforce') return refusal(v);
  reportDetected(events, refusal(v), ctx);
  return undefined;
}

export function createParamsValidationStage(validator: RequestValidator, mode: ValidationMode, events: EventBus | undefined): Stage {
  return {
    id: 'validate-request',
    run: (ctx) => verdictOf(validator.params(ctx), mode, ctx, events),
  };
}

/** Runs once the plan has buffered the body (ctx.body). */
export function createBodyValidationStage(validator: RequestValidator, mode: ValidationMode, events: EventBus | undefined): Stage {
  return {
    id: 'validate-request',
    run: (ctx) => {
      // The body is validated as the type its Content-Type names before the first ";"; one a
      // backend reads as another type (media-type.ts) would be validated as what it is not.
      const malformed = contentTypeRefusal(ctx.headers['content-type']);
      if (malformed !== undefined) {
        if (mode === 'enforce') return malformed;
        reportDetected(events, malformed, ctx);
      }
      const verdict = validator.body(ctx.headers['content-type'], ctx);
      return verdict instanceof Promise ? verdict.then((v) => verdictOf(v, mode, ctx, events)) : verdictOf(verdict, mode, ctx, events);
    },
  };
}
