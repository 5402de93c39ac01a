/**
 * A request's trace context (its server span under the caller's context), made only when read. The
 * API makes a context with a span wrapper and a copy of the parent's entries; most requests never
 * read theirs (only calls made on a request's behalf, IdP, clamd, Redis, and security events do),
 * so the request path keeps this reference instead.
 */
import { trace, type Context, type SpanContext } from '@opentelemetry/api';

export class SpanContextRef implements Context {
  private made: Context | undefined;

  constructor(
    /** The caller's context as extracted (its span, baggage). */
    readonly parent: Context,
    /** The request's server span. */
    readonly span: SpanContext,
  ) {}

  private get context(): Context {
    return (this.made ??= trace.setSpanContext(this.parent, this.span));
  }

  getValue(key: symbol): unknown {
    return this.context.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return this.context.setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return this.context.deleteValue(key);
  }
}
