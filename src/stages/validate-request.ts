/**
 * `validate-request` stages: the request against its OpenAPI operation — parameters before the
 * body is read, the body (chosen by Content-Type; an unlisted type is 415) once the plan has
 * buffered it. `enforce` refuses with 400 / 415 listing the violation; `report` raises
 * `warden.input.invalid` (action detect) and lets the request through.
 */
import { WardenError } from '../errors.js';
import { formBodyProblem } from '../net/form-body-problem.js';
import { contentTypeRefusal, FORM_MEDIA_TYPE, mediaTypeOf, opensJsonDocument } from '../net/media-type.js';
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
    rule: v.rule ?? `openapi${v.pointer.split('/').slice(0, 2).join('.')}`,
    detail,
    violations: [v],
    // The event says what was refused in enforce mode as in report mode (security-events.md): the
    // pointer and message hold no value. Before, only `detect` events had it (red team 29).
    attributes: { 'warden.detail': detail.slice(0, 256) },
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

/**
 * A form body that opens a JSON object or array (after white space): validated as a form it is one
 * undeclared field named by the whole document, while a Go handler decodes the body as JSON
 * whatever its Content-Type and reads the members nobody checked (`{"role":"admin"}`). No browser
 * sends a form whose first field name starts with `{` or `[`.
 */
function jsonSentAsForm(ctx: RequestContext): WardenError | undefined {
  const body = ctx.body;
  if (body === undefined || mediaTypeOf(ctx.headers['content-type']) !== FORM_MEDIA_TYPE || !opensJsonDocument(body)) return undefined;
  return new WardenError('ERR_REQUEST_MALFORMED', {
    rule: 'body.json_as_form',
    detail:
      'The body is a JSON document sent as application/x-www-form-urlencoded: it would be validated as a form here and read as JSON by a backend that decodes JSON whatever the Content-Type. Send JSON as application/json.',
  });
}

/** A form body a backend splits or decodes otherwise (`name=eve;role=admin`, `r%6?le=admin`: form-body-problem.ts). */
function formRefusal(ctx: RequestContext): WardenError | undefined {
  const body = ctx.body;
  return body === undefined || mediaTypeOf(ctx.headers['content-type']) !== FORM_MEDIA_TYPE ? undefined : formBodyProblem(body);
}

/** Runs once the plan has buffered the body (ctx.body). */
export function createBodyValidationStage(validator: RequestValidator, mode: ValidationMode, events: EventBus | undefined): Stage {
  return {
    id: 'validate-request',
    run: (ctx) => {
      // The body is validated as the type its Content-Type names before the first ";"; one a
      // backend reads as another type (media-type.ts) would be validated as what it is not.
      const malformed = contentTypeRefusal(ctx.headers['content-type']) ?? jsonSentAsForm(ctx) ?? formRefusal(ctx);
      if (malformed !== undefined) {
        if (mode === 'enforce') return malformed;
        reportDetected(events, malformed, ctx);
      }
      const verdict = validator.body(ctx.headers['content-type'], ctx);
      return verdict instanceof Promise ? verdict.then((v) => verdictOf(v, mode, ctx, events)) : verdictOf(verdict, mode, ctx, events);
    },
  };
}
