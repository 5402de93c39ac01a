/**
 * A string built one UTF-16 code unit or run at a time, in a buffer: the rewrites of a whole
 * value (escapes undone, filler as one space, NULs dropped) that make a change every few
 * characters. A regular-expression replace costs ~80 ns a match in V8 and a callback more (with
 * the garbage of its arguments): on 9 MiB of `\\` that was ~2 s. Runs are copied and the string
 * read back by Node's UTF-16LE codec, which keeps lone surrogates as they are (a TextDecoder
 * would turn them into U+FFFD).
 */
export interface CodeUnitBuilder {
  /** One code unit. */
  unit(code: number): void;
  /** `text` from `start` to `end`. */
  run(text: string, start: number, end: number): void;
  /** All of `text`. */
  text(text: string): void;
  /** The string built. */
  built(): string;
}

/** Shorter runs are copied a unit at a time: a call into the codec costs more than that. */
const SHORT_RUN = 16;

/** @param capacity the most code units the string will hold. */
export function createCodeUnitBuilder(capacity: number): CodeUnitBuilder {
  const bytes = Buffer.allocUnsafe(capacity * 2);
  /** In bytes. */
  let end = 0;
  const unit = (code: number) => {
    bytes[end++] = code & 0xff;
    bytes[end++] = code >>> 8;
  };
  const run = (text: string, from: number, to: number) => {
    if (to - from < SHORT_RUN) for (let i = from; i < to; i++) unit(text.charCodeAt(i));
    else end += bytes.write(from === 0 && to === text.length ? text : text.slice(from, to), end, 'utf16le');
  };
  return {
    unit,
    run,
    text: (text) => run(text, 0, text.length),
    built: () => bytes.toString('utf16le', 0, end),
  };
}
