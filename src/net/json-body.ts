/**
 * A request body parsed as JSON once per request, whichever body stage asks first (validation and
 * the waf both read it). Keyed by the body buffer, so nothing is kept once the request is gone.
 * Neither caller mutates the value (ajv validates JSON bodies without coercion or defaults).
 */
const parsed = new WeakMap<Buffer, { value: unknown } | undefined>();

/** The parsed body, or undefined when it is not valid JSON. */
export function parseJsonBody(body: Buffer): { value: unknown } | undefined {
  if (parsed.has(body)) return parsed.get(body);
  let result: { value: unknown } | undefined;
  try {
    result = { value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    result = undefined;
  }
  parsed.set(body, result);
  return result;
}
