/** A request's first departure from its operation's schema, as the problem document reports it. */
export interface Violation {
  /** Where: `/query/limit`, `/header/x-trace`, `/body/items/0/name`. */
  readonly pointer: string;
  readonly message: string;
}
