/**
 * Stands in for zod's `v4/classic/from-json-schema.js` in the worker's bundle (wrangler.jsonc
 * `alias`): `z.fromJSONSchema` builds a zod schema from a JSON Schema, which nothing here does
 * (tools' argument schemas are checked by @cfworker/json-schema). About 12 KiB that every cold
 * isolate would parse.
 */
export function fromJSONSchema(): never {
  throw new Error("z.fromJSONSchema is not in this bundle (src/bundle/zod-from-json-schema.ts)");
}
