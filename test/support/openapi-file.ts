import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes an OpenAPI document to `openapi.yaml` in a fresh temporary directory; returns its path (for `openapi.document`). */
export function openApiFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'warden-openapi-')), 'openapi.yaml');
  writeFileSync(file, text);
  return file;
}
