/**
 * The requests in flight, for what a security event needs: it carries only the request id, and
 * must find its request's span.
 *
 * The request itself holds its record (TracedRequest.tracing), so its own path never looks it up;
 * this registry only keeps the records in a slot array, cleared when a request ends and replaced
 * only when it grows, and an event scans it for its id. Events are rare next to requests, and a
 * scan of the requests in flight (bounded by limits.max_in_flight) costs an event a few µs, where
 * a Map from id to record cost every request a set, two gets and a delete, about 3 µs of its CPU,
 * and the rehashing garbage of a table added to and deleted from all the time
 * (docs/history/performance.md, "A Map of requests in flight").
 *
 * Two requests in flight under the same id (a client's X-Request-Id reused) have a record each;
 * an event with that id goes to either one.
 */
export interface OpenRecord {
  readonly requestId: string;
  /** Where the registry keeps it: set by `add`. */
  slot: number;
}

export class OpenRequests<T extends OpenRecord> {
  private slots: (T | undefined)[];
  /** Free slot numbers, used as a stack. */
  private readonly free: number[] = [];
  private count = 0;

  constructor(initialSlots = 256) {
    this.slots = new Array<T | undefined>(initialSlots).fill(undefined);
    for (let i = initialSlots - 1; i >= 0; i--) this.free.push(i);
  }

  get size(): number {
    return this.count;
  }

  /** Slots allocated: grows only with the most requests ever in flight at once. */
  get slotCount(): number {
    return this.slots.length;
  }

  /** Registers a request's record (its `slot` is set here). */
  add(record: T): void {
    if (this.free.length === 0) this.grow();
    const slot = this.free.pop() as number;
    record.slot = slot;
    this.slots[slot] = record;
    this.count++;
  }

  /** Forgets a record once its request has ended; a record removed already is left alone. */
  remove(record: T): void {
    if (this.slots[record.slot] !== record) return;
    this.slots[record.slot] = undefined;
    this.free.push(record.slot);
    this.count--;
  }

  /** The record of a request in flight with this id, for an event. */
  find(requestId: string): T | undefined {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const record = slots[i];
      if (record !== undefined && record.requestId === requestId) return record;
    }
    return undefined;
  }

  private grow(): void {
    const size = this.slots.length;
    this.slots = [...this.slots, ...new Array<T | undefined>(size).fill(undefined)];
    for (let i = 2 * size - 1; i >= size; i--) this.free.push(i);
  }
}
