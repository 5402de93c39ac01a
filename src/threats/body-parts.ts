/**
 * What a malware scanner must see of a body: each file of a multipart/form-data upload on its own
 * (a signature keyed to a whole file cannot match the multipart envelope), otherwise the body as is.
 */
import busboy from 'busboy';

export interface ScanPart {
  /** The field name and file name, for the event; never the content. */
  readonly name: string;
  readonly chunks: Buffer[];
}

export function partsToScan(contentType: string | undefined, body: Buffer): Promise<ScanPart[]> {
  const mime = contentType?.split(';', 1)[0]?.trim().toLowerCase();
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
