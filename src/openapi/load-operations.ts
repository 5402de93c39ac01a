/** The configured OpenAPI document's operations, or a ConfigError naming sidecar.yaml's field and the document's JSON pointer. */
import { ConfigError, formatIssue } from '../config/config-error.js';
import type { LoadedSidecarConfig } from '../config/load.js';
import { OpenApiError, loadOpenApiDocument } from './document.js';
import { configuredTokenPlaces } from '../config/token-places.js';
import { operationsOf, type Operation } from './operations.js';
import { internalHeaderMatcher } from '../net/sidecar-headers.js';
import { withoutUrlCredentials } from '../net/url-credentials.js';
import { shownDocument, withDocumentShown } from './shown-document.js';

/** `warn` gets each of the document's warnings (document.ts) as a line naming sidecar.yaml's field, the document and the pointer. */
export async function loadOperations(
  loaded: LoadedSidecarConfig,
  warn: (line: string) => void = () => undefined,
): Promise<Operation[] | undefined> {
  const source = loaded.config.openapi?.document;
  if (source === undefined) return undefined;
  // Without the URL's credentials and query; the issue masks the substituted values (load.ts).
  const describe = (problem: { describeIn(source: string): string }) =>
    withoutUrlCredentials(withDocumentShown(problem.describeIn(shownDocument(source)), source));
  try {
    return operationsOf(
      await loadOpenApiDocument(source, undefined, (w) => warn(formatIssue(loaded.issue(['openapi', 'document'], describe(w))))),
      {
        documentUrl: source,
        tokenPlaces: configuredTokenPlaces(loaded.config.tokens),
        isInternalHeader: internalHeaderMatcher(loaded.config.headers.internal),
      },
    );
  } catch (err) {
    if (err instanceof OpenApiError) throw new ConfigError([loaded.issue(['openapi', 'document'], describe(err))]);
    throw err;
  }
}
