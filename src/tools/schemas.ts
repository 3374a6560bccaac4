/**
 * The tool registry's API shapes and the checks a definition gets beyond them: a usable JSON Schema
 * of the arguments, a target the tenant may point at (src/tools/targets.ts).
 */
import { Validator } from "@cfworker/json-schema";
import { z } from "@hono/zod-openapi";

/** What the model calls a tool: the rule both OpenAI and Anthropic apply to function names. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
/** Bounds of a tool's timeout; the loop cannot wait longer than a visitor would. */
export const MIN_TIMEOUT_MS = 100;
export const MAX_TIMEOUT_MS = 30_000;
export const DEFAULT_TIMEOUT_MS = 5_000;
/** The arguments' schema, serialized: it goes to the model with every request, so it stays small. */
export const MAX_PARAMETERS_BYTES = 8 * 1024;
/** Nesting of the arguments' schema; deeper is no use to a model and costly to walk. */
const MAX_SCHEMA_DEPTH = 16;
/** Tools a tenant may keep. */
export const MAX_TOOLS_PER_TENANT = 64;

const Target = z
  .discriminatedUnion("kind", [
    z
      .object({
        kind: z.literal("https"),
        url: z.string().max(2_048).openapi({ example: "https://order-status.example.workers.dev/" }),
      })
      .strict(),
    z
      .object({
        kind: z.literal("dispatch"),
        script: z.string().max(63).openapi({ example: "acme__order-status" }),
      })
      .strict(),
  ])
  .openapi("ToolTarget", {
    description:
      "https: a signed POST to the tool's URL (https on a public host in production). dispatch: a script in the platform's Workers for Platforms namespace, named `<tenant_id>__<name>`.",
  });

const Parameters = z.record(z.string(), z.unknown()).openapi({
  description: "JSON Schema (an object schema) of the arguments; at most 8 KiB serialized",
  example: {
    type: "object",
    properties: { order_id: { type: "string", description: "The order number" } },
    required: ["order_id"],
  },
});

const fields = {
  description: z.string().trim().min(1).max(1_024),
  parameters: Parameters,
  target: Target,
  timeout_ms: z.number().int().min(MIN_TIMEOUT_MS).max(MAX_TIMEOUT_MS),
  enabled: z.boolean(),
};

export const ToolCreate = z
  .object({
    name: z.string().regex(TOOL_NAME, "tool names are 1-64 of [a-zA-Z0-9_-]"),
    description: fields.description,
    parameters: fields.parameters,
    target: fields.target,
    timeout_ms: fields.timeout_ms.default(DEFAULT_TIMEOUT_MS),
    enabled: fields.enabled.default(true),
  })
  .strict()
  .openapi("ToolCreate");

export const ToolPatch = z
  .object({
    description: fields.description.optional(),
    parameters: fields.parameters.optional(),
    target: fields.target.optional(),
    timeout_ms: fields.timeout_ms.optional(),
    enabled: fields.enabled.optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: "nothing to change" })
  .openapi("ToolPatch");

export type ToolCreateInput = z.infer<typeof ToolCreate>;
export type ToolPatchInput = z.infer<typeof ToolPatch>;

export const Tool = z
  .object({
    id: z.string(),
    tenant_id: z.string(),
    name: z.string(),
    description: z.string(),
    parameters: Parameters,
    target: Target,
    timeout_ms: z.number().int(),
    enabled: z.boolean(),
    allowed: z.boolean().openapi({
      description:
        "Whether the tenant's allowed_tools names it: the bot uses it only when enabled and allowed",
    }),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("Tool");

export const ToolWithSecret = Tool.extend({
  secret: z.string().openapi({
    description:
      "Signs every request to the tool (docs/tools.md). Shown in this answer only; rotate it to get a new one.",
  }),
}).openapi("ToolWithSecret");

export const ToolList = z.object({ tools: z.array(Tool) }).openapi("ToolList");

export const ToolNameParam = z.object({
  name: z
    .string()
    .regex(TOOL_NAME, "not a tool name")
    .openapi({ param: { name: "name", in: "path" } }),
});

const TYPE_NAMES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
/** Keywords whose value is a schema, a map of schemas, or a list of schemas. */
const SCHEMA_KEYWORDS = [
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
];
const SCHEMA_MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
const SCHEMA_LISTS = ["allOf", "anyOf", "oneOf", "prefixItems"];

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** What a local reference ("#", "#/$defs/x") points at inside `root`; undefined when nothing. */
function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let at: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** Problems of one (sub)schema, with JSON-pointer-like paths; walks what a validator would. */
function schemaProblems(root: unknown, s: unknown, path: string, depth: number, out: string[]): void {
  if (typeof s === "boolean") return;
  if (!isObject(s)) return void out.push(`${path}: a schema is an object or a boolean`);
  if (depth > MAX_SCHEMA_DEPTH) return void out.push(`${path}: nested deeper than ${MAX_SCHEMA_DEPTH}`);
  const type = s.type;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (types.length === 0 || !types.every((t) => typeof t === "string" && TYPE_NAMES.has(t)))
      out.push(`${path}/type: not a JSON Schema type`);
  }
  if (
    s.required !== undefined &&
    !(Array.isArray(s.required) && s.required.every((r) => typeof r === "string"))
  )
    out.push(`${path}/required: must be a list of property names`);
  if (s.enum !== undefined && !Array.isArray(s.enum)) out.push(`${path}/enum: must be a list`);
  if (s.pattern !== undefined) {
    try {
      new RegExp(String(s.pattern), "u");
    } catch {
      out.push(`${path}/pattern: not a regular expression`);
    }
    if (typeof s.pattern !== "string") out.push(`${path}/pattern: must be a string`);
  }
  // Only references inside this schema: a remote one would have the platform fetch a URL.
  if (s.$ref !== undefined) {
    if (!(typeof s.$ref === "string" && s.$ref.startsWith("#")))
      out.push(`${path}/$ref: only local references (#/...) are allowed`);
    else if (resolvePointer(root, s.$ref) === undefined) out.push(`${path}/$ref: ${s.$ref} points nowhere`);
  }
  for (const k of SCHEMA_KEYWORDS) if (k in s) schemaProblems(root, s[k], `${path}/${k}`, depth + 1, out);
  for (const k of SCHEMA_MAPS) {
    if (!(k in s)) continue;
    const map = s[k];
    if (!isObject(map)) out.push(`${path}/${k}: must be an object of schemas`);
    else
      for (const [name, sub] of Object.entries(map))
        schemaProblems(root, sub, `${path}/${k}/${name}`, depth + 1, out);
  }
  for (const k of SCHEMA_LISTS) {
    if (!(k in s)) continue;
    const list = s[k];
    if (!Array.isArray(list) || list.length === 0)
      out.push(`${path}/${k}: must be a non-empty list of schemas`);
    else
      for (const [i, sub] of list.entries()) schemaProblems(root, sub, `${path}/${k}/${i}`, depth + 1, out);
  }
}

/**
 * What is wrong with a tool's arguments schema, or null when it is usable: an object schema (the
 * model's arguments are always a JSON object), well-formed where a validator looks, only local
 * references, at most MAX_PARAMETERS_BYTES, and one @cfworker/json-schema compiles and runs.
 */
export function parametersProblem(schema: Record<string, unknown>): string | null {
  if (new TextEncoder().encode(JSON.stringify(schema)).length > MAX_PARAMETERS_BYTES)
    return `larger than ${MAX_PARAMETERS_BYTES} bytes`;
  if (schema.type !== "object") return 'must be an object schema ("type": "object")';
  const problems: string[] = [];
  schemaProblems(schema, schema, "#", 0, problems);
  if (problems.length > 0) return problems.slice(0, 5).join("; ");
  try {
    // A reference to nowhere, or a keyword value the validator chokes on, surfaces here.
    new Validator(schema, "2020-12", false).validate({});
  } catch (err) {
    return `the schema does not compile (${err instanceof Error ? err.message.slice(0, 200) : "unknown error"})`;
  }
  return null;
}
