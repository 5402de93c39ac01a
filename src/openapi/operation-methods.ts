/** The keys of an OpenAPI path item that hold operations (OpenAPI 3.0/3.1 §4.8.9), in the document's order. */
export const OPERATION_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

export type OperationMethod = (typeof OPERATION_METHODS)[number];

const OPERATION_KEYS: ReadonlySet<string> = new Set(OPERATION_METHODS);

export const isOperationKey = (key: string): key is OperationMethod => OPERATION_KEYS.has(key);
