/**
 * Writables egress hands undici in place of the backend's response, for the answers it does not
 * stream straight through (egress.ts).
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';

/**
 * Takes the body of a 204 or 304, which has none, after the response has been ended: a Content-Length
 * on it (a 304 may name the 200's, RFC 9110 §8.6) has undici report a length mismatch, and given
 * the response itself, undici destroyed it, and the backend's connection with it, unanswered.
 */
export function endedResponse(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

/**
 * The response, held until `check` settles: with no error, `writeHead` writes its head and what the
 * destination sent is passed on; with one, the exchange ends with it (undici's promise rejects with
 * it). What the destination sends meanwhile waits here, and undici stops reading once this stream's
 * buffer is full. `bodiless`: a 204 or 304, ended once its head is written (endedResponse).
 */
export function heldResponse(res: ServerResponse, check: Promise<Error | undefined>, writeHead: () => void, bodiless: boolean): Writable {
  const started = check.then((refusal) => {
    // Ended meanwhile (the destination failed, the backend left): the exchange was answered for that.
    if (held.destroyed) return false;
    try {
      if (refusal !== undefined) throw refusal;
      writeHead();
    } catch (err) {
      held.destroy(err as Error);
      return false;
    }
    if (bodiless) res.end();
    return true;
  });
  const held: Writable = new Writable({
    write(chunk: Buffer, _encoding, done) {
      void started.then((ok) => {
        if (!ok || bodiless) return done();
        if (res.write(chunk)) done();
        else res.once('drain', () => done());
      });
    },
    final(done) {
      void started.then((ok) => {
        if (ok && !bodiless) res.end();
        done();
      });
    },
  });
  return held;
}
