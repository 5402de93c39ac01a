/**
 * Whether a body opens like a JSON document, decided from its first bytes as they arrive: the same
 * reading as opensJsonDocument (media-type.ts) — a UTF-8 byte order mark, white space, then `{` or
 * `[` — made chunk by chunk, so that a body of a type nothing here reads (an image, an archive) is
 * judged by its first byte and streams on, and only one that opens like JSON is held. Mojolicious'
 * `$c->req->json`, Dancer2's JSON serializer, Go's json.NewDecoder(r.Body) and Flask's
 * get_json(force=True) decode such a body as JSON whatever its Content-Type.
 */

const BOM = [0xef, 0xbb, 0xbf] as const;

/** `json`, `other`, or undefined while only (part of) a byte order mark and white space have arrived. */
export type Opening = 'json' | 'other' | undefined;

export class JsonOpening {
  /** Bytes looked at so far. */
  #seen = 0;
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
      const b = chunk[i];
      if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) return this.#decide(b === 0x7b || b === 0x5b ? 'json' : 'other');
    }
    return undefined;
  }

  #decide(opening: Opening): Opening {
    this.#decided = opening;
    return opening;
  }
}
