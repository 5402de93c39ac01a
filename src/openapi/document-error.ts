/** A document that cannot be used, with where (`#/paths/~1pets/get`) and what. */
export class OpenApiError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
  ) {
    super(message);
    this.name = 'OpenApiError';
  }

  /** The problem as `openapi.document` reports it: the document and the pointer, or the message alone when the whole document is at fault (it names the document). */
  describeIn(source: string): string {
    return this.pointer === '#' ? this.message : `${source} ${this.pointer}: ${this.message}`;
  }
}
