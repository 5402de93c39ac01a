/**
 * The names a path template's parameters are routed under. OpenAPI allows any name in a template
 * (`/users/{user-id}`: Microsoft Graph's documents and many generated ones; `/v/{api.version}/x`);
 * find-my-way ends a `:name` at "-", ".", "(" or "/", so such a name is routed under a router-safe
 * one — each other character "_", made unique among the template's names, so `{a-b}` and `{a_b}`
 * are two parameters — and the stages are given the declared one (plan.ts). Before, the document
 * was refused at load, and a generated document cannot be edited.
 */

/** What find-my-way reads as a parameter's name, whole. */
const ROUTER_SAFE = /^[A-Za-z0-9_]+$/;
const ROUTER_UNSAFE = /[^A-Za-z0-9_]/gu;
/** White space (Unicode's, as `\s` reads it) and control characters (C0, DEL, C1): a slip, not a name. */
const NO_NAME = /[\s\p{Cc}]/u;

/** Why `name` (between a template's braces) cannot name a path segment's parameter; undefined when it can. */
export function parameterNameProblem(name: string): string | undefined {
  const shown = JSON.stringify(`{${name}}`);
  if (name === '') return `path parameter ${shown} has no name: name it as its parameter object does`;
  if (name.includes('/')) return `path parameter ${shown}: a name cannot hold "/" (a parameter is one path segment, or part of one)`;
  if (NO_NAME.test(name)) return `path parameter ${shown}: a name cannot hold white space or a control character`;
  return undefined;
}

/**
 * The router-safe name of each of `declared` (a template's parameter names, in order): a safe name
 * is its own; another has each other character "_", then "_2", "_3", … until no other name of
 * the template has it.
 */
export function routerNamesOf(declared: readonly string[]): string[] {
  const taken = new Set(declared.filter((name) => ROUTER_SAFE.test(name)));
  return declared.map((name) => {
    if (ROUTER_SAFE.test(name)) return name;
    const base = name.replace(ROUTER_UNSAFE, '_');
    let routed = base;
    for (let n = 2; taken.has(routed); n++) routed = `${base}_${n}`;
    taken.add(routed);
    return routed;
  });
}

type Params = Readonly<Record<string, string | undefined>>;

/**
 * The router's params → the declared names, for a template with a renamed parameter
 * (`routed`: router name → declared name, every parameter of the template). Compiled once; a
 * request pays one small object. No prototype: a declared name such as `__proto__` is an own key.
 */
export function declaredParamsOf(routed: ReadonlyMap<string, string>): (params: Params) => Params {
  const pairs = [...routed];
  return (params) => {
    const declared: Record<string, string | undefined> = Object.create(null) as Record<string, string | undefined>;
    for (const [router, name] of pairs) declared[name] = params[router];
    return declared;
  };
}
