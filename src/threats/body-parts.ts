/**
 * What a malware scanner must see of a body: each file of a multipart/form-data upload on its own
 * (a signature keyed to a whole file cannot match the multipart envelope), otherwise the body as is.
 */
import busboy from 'busboy';
import { mediaTypeOf } from '../net/media-type.js';

export interface ScanPart {
  /** The field name and file name, for the event; never the content. */
  readonly name: string;
  readonly chunks: Buffer[];
}

export function partsToScan(contentType: string | undefined, body: Buffer): Promise<ScanPart[]> {
  const mime = mediaTypeOf(contentType);
  if (mime !== 'multipart/form-data') return Promise.resolve([{ name: 'body', chunks: [body] }]);
  return new Promise((resolve) => {
    const parts: ScanPart[] = [];
    let parser: ReturnType<typeof busboy>;
    try {
      parser = busboy({ headers: { 'content-type': contentType as string }, limits: { parts: 1000 } });
    } catch {
      // Not parseable as multipart (no boundary): scan it whole rather than not at all.
      resolve([{ name: 'body', chunks: [body] }]);
      return;
    }
    parser.on('file', (field, stream, info) => {
      const part: ScanPart = { name: `${field}:${info.filename ?? ''}`.slice(0, 200), chunks: [] };
      parts.push(part);
      stream.on('data', (d: Buffer) => part.chunks.push(d));
    });
    parser.on('close', () => resolve(parts));
    parser.on('error', () => resolve([{ name: 'body', chunks: [body] }]));
    parser.end(body);
  });
}

export interface MultipartFields {
  /** Text fields: [name, value]. */
  readonly fields: [string, string][];
  /** File parts: [field name, file name] — the content is the malware scanner's business. */
  readonly files: [string, string][];
}

/**
 * The text fields and file names of a multipart/form-data body, decoded as the backend's parser
 * will see them. More than `maxParts` parts, or a body busboy cannot parse, is an error: a payload
 * must not hide behind a part the waf did not look at.
 */
export function multipartFields(contentType: string, body: Buffer, maxParts: number): Promise<MultipartFields | MultipartUnreadable> {
  return new Promise((resolve) => {
    const fields: [string, string][] = [];
    const files: [string, string][] = [];
    let parser: ReturnType<typeof busboy>;
    try {
      // preservePath: the file name as sent ("../../x"), not busboy's basename of it.
      parser = busboy({
        headers: { 'content-type': contentType },
        preservePath: true,
        limits: { parts: maxParts, fieldSize: body.length },
      });
    } catch {
      resolve(new MultipartUnreadable('no boundary'));
      return;
    }
    parser.on('field', (name, value) => fields.push([name, value]));
    parser.on('file', (name, stream, info) => {
      files.push([name, info.filename ?? '']);
      stream.resume();
    });
    parser.on('partsLimit', () => resolve(new MultipartUnreadable('too many parts')));
    parser.on('close', () => resolve({ fields, files }));
    parser.on('error', (err: Error) => resolve(new MultipartUnreadable(err.message)));
    parser.end(body);
  });
}

export class MultipartUnreadable {
  constructor(readonly reason: string) {}
}
