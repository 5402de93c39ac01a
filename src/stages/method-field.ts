/**
 * A `_method` field in a body: Rack::MethodOverride, Symfony, Laravel, Spring's
 * HiddenHttpMethodFilter and Express's method-override (with a body getter) run a POST carrying
 * one as the method it names. The sidecar routed, authorized and validated the POST, so the
 * backend would run an operation nobody checked (a POST allowed for `orders:write` served as a
 * DELETE). The query parameter and the headers are refused before routing (src/proxy/overrides.ts);
 * this stage reads a POST's body on every route, whether or not anything else does.
 *
 * Other methods' bodies where another stage reads them anyway (validation, the waf, the malware
 * scan; the plan holds none for this): method-override with `{methods: null}`, and getters that
 * never look at the method, apply a PUT's `_method` too (`PUT /users/1 {"_method":"DELETE"}` ran
 * a DELETE the token was not allowed; red team 28, F3). Only the bodies they
 * read fields from: form (`application/x-www-form-urlencoded`, and a POST without a Content-Type,
 * which Rack reads as a form), multipart (as it arrives, without holding it in memory: every
 * `multipart/*`, which Rack::Request#POST parses as a form, `multipart/mixed` and `related` too,
 * each part by the name Rack gives it), and JSON (Laravel: any type with `/json` or `+json`; its
 * top-level members). And any other body the stages hold (JSON, text, octet-stream: everything but
 * multipart) read as a form, as Bottle reads it: `&_method=DELETE&` in a JSON string or a text body
 * is a `_method` field to Bottle's `request.forms`. Names are read as
 * PHP, qs and Rails read them (`%5Fmethod`, ` _method`, `_method[]`: src/openapi/name-readings.ts),
 * and a multipart part's as Django does too (`_method ` is `_method`).
 */
import { WardenError } from '../errors.js';
import { jsonBodyOf } from '../net/json-body.js';
import { formBodyProblem } from '../net/form-body-problem.js';
import { formPairsOf } from '../net/form-pairs.js';
import { formNameReading, MAX_NAMES_TESTED } from '../net/body-as-form.js';
import { contentTypeRefusal, FORM_MEDIA_TYPE, isJsonMediaType, isMultipartMediaType, mediaTypeOf } from '../net/media-type.js';
import { isMethodOverrideName, isMultipartMethodOverrideName } from '../openapi/name-readings.js';
import type { BodyObserver, RequestContext, Stage, StreamingStage } from '../pipeline/stage.js';
import { createMultipartStream } from '../threats/multipart-stream.js';

function refusal(where: string): WardenError {
  return new WardenError('ERR_REQUEST_OVERRIDE', {
    rule: 'overrides.method_field',
    detail: `${where} would make the backend run another method than the one checked here (a method override).`,
  });
}

/** Past MAX_NAMES_TESTED names holding `method` (one per 32 bytes of a larger body), not read on (each costs): refused as if one were an override. */
function tooManyNames(): WardenError {
  return new WardenError('ERR_REQUEST_OVERRIDE', {
    rule: 'overrides.method_field',
    detail: `The body read as a form (as Bottle reads any body) holds more than ${MAX_NAMES_TESTED} names like a method-override field (_method), more than one per 32 bytes: too many to read.`,
  });
}

/** The form's names as the other stages read them (the reading is shared: formPairsOf). */
function formHasMethodField(ctx: RequestContext): boolean {
  const pairs = formPairsOf(ctx) ?? [];
  for (let i = 0; i < pairs.length; i += 2) if (isMethodOverrideName(pairs[i] as string)) return true;
  return false;
}

/**
 * The body as JSON: the strict parse the other stages share, or, for a document that one refuses
 * (duplicate members, not UTF-8, a leading BOM), a plain one — PHP's decoder still reads many of
 * those, Express's drops a BOM, and a `_method` must not hide behind a second member of the same name.
 */
function jsonHasMethodField(ctx: RequestContext, body: Buffer): boolean {
  let value = jsonBodyOf(ctx)?.value;
  if (value === undefined) {
    try {
      const text = body.toString('utf8');
      value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text) as unknown;
    } catch {
      return false; // not JSON to any reader: no field to override with
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const name of Object.keys(value)) if (isMethodOverrideName(name)) return true;
  return false;
}

/**
 * Form, untyped and JSON bodies, held whole (the plan buffers them for this stage: isFieldBody), and
 * any other body but multipart that another stage holds (validation, the waf).
 */
export function createMethodFieldStage(): Stage {
  return {
    id: 'method-field',
    run(ctx) {
      // A POST's body is read whole here, its Content-Type and form readings checked too; another
      // method's only for override names, and only where another stage held it.
      const post = ctx.method === 'POST';
      if (!post && ctx.body === undefined) return undefined;
      // A Content-Type a backend reads as another type (`application/x-www-form-urlencoded,x`,
      // `text/plain; x=/json`): its form or JSON fields would not be read here. Whether or not
      // the body was held: such a body is not one the plan buffers.
      const malformed = contentTypeRefusal(ctx.headers['content-type']);
      // Not for another method's body: that check is the held stage's own (validation's, the scan's:
      // a binary upload `image/png; name=photo (1).png` passes the scan, row 466), and a body whose
      // Content-Type a backend's parser refuses (Express's content-type module throws on these) is
      // no form it reads a `_method` from. Refusing them here refused such PUT uploads (row 489).
      if (malformed) return post ? malformed : undefined;
      const body = ctx.body;
      if (body === undefined || body.length === 0) return undefined;
      const mime = mediaTypeOf(ctx.headers['content-type']);
      if (mime === FORM_MEDIA_TYPE || mime === '') {
        // Jetty reads `%5?method` as `_method`, python-multipart `q=1;_method=DELETE` (form-body-problem.ts).
        // A POST's only: another method's form has the held stage's own checks of its readings (a
        // PUT's `x=1;q=2` under a detect-mode scan was refused here, row 489); its override names
        // are still read below, `;` splits included (formNameReading).
        const formProblem = mime === FORM_MEDIA_TYPE && post ? formBodyProblem(body) : undefined;
        if (formProblem) return formProblem;
        if (formHasMethodField(ctx))
          return refusal('A method-override field (_method, x-tunneled-method, X-HTTP-Method-Override) of the form body');
        // An untyped body is read by Bottle too (below): before 0.12.19 it split `x=1;_method=DELETE` at `;`.
        // A POST's `;` was refused above; another method's form is read at `;` too (below).
        if (mime === FORM_MEDIA_TYPE && post) return undefined;
      } else if (isJsonMediaType(mime) && jsonHasMethodField(ctx, body))
        return refusal('A method-override member (_method, x-tunneled-method, X-HTTP-Method-Override) of the JSON body');
      // Bottle reads any body but multipart as a form: `{"note":"&_method=DELETE&"}` (body-as-form.ts).
      const asForm = isMultipartMediaType(mime) ? undefined : formNameReading(body, isMethodOverrideName);
      if (asForm === 'too many') return tooManyNames();
      if (asForm === 'found')
        return refusal(
          'A method-override field (_method, x-tunneled-method, X-HTTP-Method-Override) of the body read as a form (as Bottle reads any body)',
        );
      return undefined;
    },
  };
}

/**
 * Multipart bodies of any multipart type, part by part as they arrive (a POST's; with `everyMethod`,
 * on a route where another stage reads bodies, any method's) (a field or a file part
 * named `_method`, or, in a multipart/mixed or related body, a part no form reader here reads that
 * Rack names `_method`: `Content-Disposition: attachment; name="_method"`, `Content-ID: _method`).
 * A body that cannot be taken apart is refused: what it holds cannot be known, and a backend's
 * parser may read a `_method` in it.
 */
export function createMethodFieldMultipartStage(maxBodyBytes: number, everyMethod: boolean): StreamingStage {
  return {
    id: 'method-field',
    observe(ctx): BodyObserver | undefined {
      const contentType = ctx.headers['content-type'];
      if ((ctx.method !== 'POST' && !everyMethod) || !isMultipartMediaType(mediaTypeOf(contentType))) return undefined;
      // Refused with its own rule, before the body is taken apart (see the body stage).
      const malformed = contentTypeRefusal(contentType);
      if (malformed) return { write: () => undefined, end: () => Promise.resolve(malformed), abort: () => undefined };
      let found = false;
      const multipart = createMultipartStream(
        contentType as string,
        // Names matter here, not values: no part count or field size is a reason to refuse.
        { maxParts: Infinity, maxFieldBytes: maxBodyBytes },
        {
          onField: (name) => (found ||= isMultipartMethodOverrideName(name)),
          onFile(name, _filename, content) {
            found ||= isMultipartMethodOverrideName(name);
            content.resume();
          },
          onUnreadPart: ({ rackName }) => (found ||= rackName !== undefined && isMultipartMethodOverrideName(rackName)),
        },
      );
      if (!multipart) {
        const unreadable = unreadableMultipart('it has no usable boundary');
        return { write: () => undefined, end: () => Promise.resolve(unreadable), abort: () => undefined };
      }
      return {
        write: (chunk) => multipart.write(chunk),
        end: () =>
          multipart.end().then((problem) => {
            if (found) return refusal('A method-override part (_method, x-tunneled-method, X-HTTP-Method-Override) of the multipart body');
            return problem === undefined ? undefined : unreadableMultipart(problem);
          }),
        abort: () => multipart.abort(),
      };
    },
  };
}

/** As validation, the waf and the malware scan refuse a multipart body they cannot take apart. */
function unreadableMultipart(problem: string): WardenError {
  return new WardenError('ERR_REQUEST_INVALID', {
    rule: 'overrides.multipart',
    detail: `The multipart body cannot be read (${problem}), so whether it asks for another method cannot be told.`,
    violations: [{ pointer: '/body', message: `is not valid multipart (${problem})` }],
  });
}
