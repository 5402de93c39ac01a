/**
 * A multipart/form-data body taken apart while it arrives (busboy), for the stages that look
 * inside one: the waf (text fields, file names) and the malware scanner (each file on its own).
 * File names are kept as sent (`preservePath`), not reduced to busboy's basename.
 */
import busboy from 'busboy';
import type { Readable } from 'node:stream';

export interface MultipartHandlers {
  onField?(name: string, value: string): void;
  /** A file part; its content must be consumed (or resumed) for parsing to go on. */
  onFile(name: string, filename: string, content: Readable): void;
}

export interface MultipartStream {
  write(chunk: Buffer): void;
  /** Resolves once every part has been parsed; undefined, or why the body is not valid multipart. */
  end(): Promise<string | undefined>;
  abort(): void;
}

/** A parser, or undefined when the Content-Type has no usable boundary. */
export function createMultipartStream(
  contentType: string,
  limits: { maxParts: number; maxFieldBytes: number },
  handlers: MultipartHandlers,
): MultipartStream | undefined {
  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      preservePath: true,
      limits: { parts: limits.maxParts, fieldSize: limits.maxFieldBytes },
    });
  } catch {
    return undefined;
  }
  let problem: string | undefined;
  const done = new Promise<string | undefined>((resolve) => {
    parser.on('close', () => resolve(problem));
    parser.on('error', (err: Error) => resolve(problem ?? err.message));
  });
  parser.on('partsLimit', () => (problem ??= 'too many parts'));
  parser.on('fieldsLimit', () => (problem ??= 'too many parts'));
  parser.on('filesLimit', () => (problem ??= 'too many parts'));
  parser.on('field', (name, value, info) => {
    // A truncated field would hide its tail from the waf.
    if (info.valueTruncated || info.nameTruncated) problem ??= 'a field is too large';
    handlers.onField?.(name, value);
  });
  parser.on('file', (name, content, info) => handlers.onFile(name, info.filename ?? '', content));
  return {
    write(chunk) {
      if (!parser.destroyed) parser.write(chunk);
    },
    end() {
      if (!parser.destroyed) parser.end();
      return done;
    },
    abort() {
      parser.destroy();
    },
  };
}
