/**
 * Whether a body opens like a JSON document, decided from its first bytes as they arrive: a UTF-8
 * byte order mark, white space, then `{` followed (after white space) by `"` or `}`, or `[`
 * followed by a string, an object, an array, `]`, or a number or literal and then `,` or `]`;
 * made chunk by chunk, so that a body of a type nothing here reads (an image, an archive) is
 * judged by its first bytes and streams on, and only one that opens like JSON is held.
 * Mojolicious' `$c->req->json`, Dancer2's JSON serializer, Go's json.NewDecoder(r.Body) and
 * Flask's get_json(force=True) decode such a body as JSON whatever its Content-Type. More than one
 * significant byte (opensJsonDocument's reading): RTF (`{\rtf1`), Markdown opening with a badge
 * (`[![`), INI files (`[network]`) and log lines (`[2026-11-28 …`) are no JSON to any decoder,
 * and were refused past body_memory_bytes (the review of row 440).
 */

const BOM = [0xef, 0xbb, 0xbf] as const;

/** `json`, `other`, or undefined while only (part of) a byte order mark and white space have arrived. */
export type Opening = 'json' | 'other' | undefined;

/**
 * Where the reading is after the mark: before the first significant byte, after `{` or `[`, in a
 * first element that is a number or a literal (`[2026-11-28 …]` is a log line, `[network]` an INI
 * section: a number or literal must be followed by `,` or `]`), or after that element.
 */
type Step = 'start' | 'object' | 'array' | 'number' | 'literal' | 'element';

/** The bytes of a number as this reading takes them: digits, `-`, `+`, `.`, `e`, `E` (their order is not checked). */
const isNumberByte = (b: number) => (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2b || b === 0x2e || b === 0x65 || b === 0x45;

const LITERALS: Record<number, string> = { 0x74: 'true', 0x66: 'false', 0x6e: 'null' };

const isJsonWhiteSpace = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** The same decision on a whole body: false when it ends undecided (`{` alone is no JSON either). */
export function opensJsonValue(body: Buffer): boolean {
  return new JsonOpening().push(body) === 'json';
}

export class JsonOpening {
  /** Bytes looked at so far. */
  #seen = 0;
  #step: Step = 'start';
  /** In a literal: the literal, and how much of it has been read. */
  #literal = '';
  #matched = 0;
  /** Whether every byte so far has been the byte order mark's. */
  #inMark = true;
  #decided: Opening;

  get decided(): Opening {
    return this.#decided;
  }

  /** Looks at the next bytes of the body (until the decision, which it returns). Linear in the bytes looked at. */
  push(chunk: Buffer): Opening {
    if (this.#decided !== undefined) return this.#decided;
    const n = chunk.length;
    let i = 0;
    // The byte order mark, which may come split over chunks.
    while (this.#inMark && i < n && this.#seen + i < 3) {
      if (chunk[i] === BOM[this.#seen + i]) i++;
      // Part of a mark and then something else: its first byte (0xEF) is the content's.
      else if (this.#seen + i > 0) return this.#decide('other');
      else this.#inMark = false;
    }
    this.#seen += n;
    if (this.#seen >= 3) this.#inMark = false;
    else if (this.#inMark) return undefined;
    for (; i < n; i++) {
      const decided = this.#next(chunk[i] as number);
      if (decided !== undefined) return this.#decide(decided);
    }
    return undefined;
  }

  /** One byte after the mark: the decision, or undefined to read on. */
  #next(b: number): Opening {
    switch (this.#step) {
      case 'number':
        if (isNumberByte(b)) return undefined;
        this.#step = 'element';
        return this.#next(b);
      case 'literal':
        if (this.#matched < this.#literal.length) return b === this.#literal.charCodeAt(this.#matched++) ? undefined : 'other';
        this.#step = 'element';
        return this.#next(b);
      default:
        if (isJsonWhiteSpace(b)) return undefined;
    }
    switch (this.#step) {
      case 'start':
        if (b === 0x7b) this.#step = 'object';
        else if (b === 0x5b) this.#step = 'array';
        else return 'other';
        return undefined;
      case 'object':
        return b === 0x22 || b === 0x7d ? 'json' : 'other';
      case 'array':
        if (b === 0x7b || b === 0x5b || b === 0x22 || b === 0x5d) return 'json';
        if ((b >= 0x30 && b <= 0x39) || b === 0x2d) this.#step = 'number';
        else if (LITERALS[b] !== undefined) {
          this.#step = 'literal';
          this.#literal = LITERALS[b];
          this.#matched = 1;
        } else return 'other';
        return undefined;
      default:
        return b === 0x2c || b === 0x5d ? 'json' : 'other';
    }
  }

  #decide(opening: Opening): Opening {
    this.#decided = opening;
    return opening;
  }
}
