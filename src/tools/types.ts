/**
 * The contract between the tool registry (who a tenant's tools are, how one is called) and the tool
 * loop (when the model asks for one). The registry side lives in src/tools/registry.ts and
 * src/tools/invoke.ts; the loop in src/tools/loop.ts.
 */

/** Where the platform reaches a tool: a signed https request, or a Workers for Platforms dispatch. */
export type ToolTarget = { kind: "https"; url: string } | { kind: "dispatch"; script: string };

/** A tool a tenant registered, as the request path sees it (the secret never leaves the worker). */
export interface RegisteredTool {
  id: string;
  tenantId: string;
  /** What the model calls it: ^[a-zA-Z0-9_-]{1,64}$ (both providers' rule). */
  name: string;
  description: string;
  /** JSON Schema (an object schema) of the arguments. */
  parameters: Record<string, unknown>;
  target: ToolTarget;
  timeoutMs: number;
  enabled: boolean;
  /** HMAC-SHA256 key the https request is signed with; never logged, never in an error body. */
  secret: string;
}

/** Why a tool step failed; each is recorded, counted in the error rate and told to the model. */
export type ToolFailure =
  | "unknown_tool"
  | "not_allowed"
  | "invalid_arguments"
  | "timeout"
  | "http_error"
  | "invalid_json"
  | "too_large"
  | "unreachable"
  | "step_limit"
  | "cancelled";

/**
 * What one tool call came to. `content` is what goes back to the model as tool content (untrusted
 * data, capped); on failure it is a corrective message for the model, never the tool's raw body.
 */
export type ToolOutcome =
  | { ok: true; name: string; content: string; latencyMs: number }
  | { ok: false; name: string; failure: ToolFailure; content: string; latencyMs: number };
