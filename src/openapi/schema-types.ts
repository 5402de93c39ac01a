/** Whether a parameter's (or property's) schema says array, or object, by `type` or among its types (3.1). */
type Schema = Record<string, unknown> | undefined;

const hasType = (s: Schema, type: string) => s?.type === type || (Array.isArray(s?.type) && (s.type as string[]).includes(type));

export const isArraySchema = (s: Schema) => hasType(s, 'array');
export const isObjectSchema = (s: Schema) => hasType(s, 'object');
