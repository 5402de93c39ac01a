/**
 * Code-generation options for every ajv instance in the process (configuration schemas, the
 * OpenAPI meta-schema, request and response validators).
 *
 * No optimisation pass: it counts variable uses in plain objects keyed by the generated names
 * (`data74`, `_errs602`, …), one fresh object per code node. V8 records each first property added
 * to a `{}` as a transition of one shared map and keeps at most 1 536 of them; compiling the
 * sidecar schema alone filled that table. From then on every object literal with computed keys,
 * and every `{}` given a new first property, got a map of its own until a mark-compact cleared the
 * table, and the inline caches that saw them stayed megamorphic: Node's `process.nextTick` cost
 * 1–6 µs a call instead of 0.1 (it builds such a literal), in every Warden process, loaded or
 * idle (docs/performance.md, "Where the time goes"; test/unit/config/ajv-codegen.test.ts). The
 * OpenAPI validators, compiled again at each reload, add their names to the same table. Without
 * the pass the generated validators keep a few unused variables, which V8 drops; they validate as
 * fast (by hand, in a loop).
 */
export const AJV_CODE_OPTIONS = { optimize: false } as const;
