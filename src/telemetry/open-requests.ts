/**
 * The requests in flight, by request id: what a security event, which carries only the id, needs to
 * find its request's span.
 *
 * Not a Map from id to the request's record: a Map that is added to and deleted from on every
 * request rehashes every few dozen requests, and the table it leaves behind (garbage in the old
 * generation until the next mark-compact) still points at the records that were in flight. V8's
 * scavenges treat those pointers as live, so those records, their spans, attributes and ids were
 * promoted: most of what telemetry made survive on the full pipeline (docs/history/performance.md, "A Map
 * of requests in flight"; bench/request-state-scavenge.js). Here the Map holds only slot numbers; the records sit in a slot array
 * that is cleared when a request ends and replaced only when it grows.
 */
export class OpenRequests<T> {
  private readonly slotOf = new Map<string, number>();
  private slots: (T | undefined)[];
  /** Free slot numbers, used as a stack. */
  private readonly free: number[] = [];

  constructor(initialSlots = 256) {
    this.slots = new Array<T | undefined>(initialSlots).fill(undefined);
    for (let i = initialSlots - 1; i >= 0; i--) this.free.push(i);
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Slots allocated: grows only with the most requests ever in flight at once. */
  get slotCount(): number {
    return this.slots.length;
  }

  /** Records `value` for `id`, replacing what an id sent twice at once had (as a Map would). */
  set(id: string, value: T): void {
    const taken = this.slotOf.get(id);
    if (taken !== undefined) {
      this.slots[taken] = value;
      return;
    }
    if (this.free.length === 0) this.grow();
    const slot = this.free.pop() as number;
    this.slots[slot] = value;
    this.slotOf.set(id, slot);
  }

  get(id: string): T | undefined {
    const slot = this.slotOf.get(id);
    return slot === undefined ? undefined : this.slots[slot];
  }

  delete(id: string): void {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return;
    this.slotOf.delete(id);
    this.slots[slot] = undefined;
    this.free.push(slot);
  }

  private grow(): void {
    const size = this.slots.length;
    this.slots = [...this.slots, ...new Array<T | undefined>(size).fill(undefined)];
    for (let i = 2 * size - 1; i >= size; i--) this.free.push(i);
  }
}
