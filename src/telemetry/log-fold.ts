/**
 * Fairness in the log records' export queue: once it is at least half full, a security event of the
 * same name and `client.address` as one still waiting there is not queued but counted in that one,
 * which is exported with `warden.folded`, the number of events folded into it. So one caller's
 * flood holds at most one more place per event name while the queue is past half, and the other
 * half stays for other events (another caller's, or another event of the same caller: the
 * `warden.access.denied` flood of docs/adversarial.md hid the event that mattered).
 *
 * Nothing is lost from the count: a record exported stands for 1 + `warden.folded` events. What is
 * lost are the folded events' own attributes (path, request id, time): the pino lines keep them.
 * A folded record is copied once, as it leaves the queue; below half full nothing here runs.
 */
import type { AnyValue } from '@opentelemetry/api-logs';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Folding } from './record-batch-queue.js';

/** A record queued past half full, and how many have been folded into it since. */
interface Held {
  readonly record: ReadableLogRecord;
  folded: number;
}

export class LogFold implements Folding<ReadableLogRecord> {
  /** Event name → client address (undefined for events without one) → the record of theirs waiting. */
  private readonly waiting = new Map<string, Map<AnyValue, Held>>();
  private readonly held = new Map<ReadableLogRecord, Held>();

  fold(record: ReadableLogRecord): boolean {
    const name = record.eventName;
    if (name === undefined) return false;
    const held = this.waiting.get(name)?.get(record.attributes['client.address']);
    if (held === undefined) return false;
    held.folded++;
    return true;
  }

  hold(record: ReadableLogRecord): void {
    const name = record.eventName;
    if (name === undefined) return;
    let byClient = this.waiting.get(name);
    if (byClient === undefined) this.waiting.set(name, (byClient = new Map<AnyValue, Held>()));
    // Only a record that found none of its name and client waiting gets here (RecordBatchQueue.add).
    const held = { record, folded: 0 };
    byClient.set(record.attributes['client.address'], held);
    this.held.set(record, held);
  }

  release(batch: ReadableLogRecord[]): void {
    if (this.held.size === 0) return;
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i] as ReadableLogRecord;
      const held = this.held.get(record);
      if (held === undefined) continue;
      this.held.delete(record);
      const byClient = this.waiting.get(record.eventName as string);
      byClient?.delete(record.attributes['client.address']);
      if (byClient?.size === 0) this.waiting.delete(record.eventName as string);
      if (held.folded > 0) batch[i] = withFolded(record, held.folded);
    }
  }
}

/** The record as exported, with the count of those folded into it: the SDK's records are read-only once emitted. */
function withFolded(record: ReadableLogRecord, folded: number): ReadableLogRecord {
  return {
    hrTime: record.hrTime,
    hrTimeObserved: record.hrTimeObserved,
    ...(record.spanContext ? { spanContext: record.spanContext } : {}),
    ...(record.severityText !== undefined ? { severityText: record.severityText } : {}),
    ...(record.severityNumber !== undefined ? { severityNumber: record.severityNumber } : {}),
    ...(record.body !== undefined ? { body: record.body } : {}),
    ...(record.eventName !== undefined ? { eventName: record.eventName } : {}),
    // Their identity groups records by resource and scope in the export request.
    resource: record.resource,
    instrumentationScope: record.instrumentationScope,
    attributes: { ...record.attributes, 'warden.folded': folded },
    droppedAttributesCount: record.droppedAttributesCount,
  };
}
