/**
 * Calls one registered tool for the model: checks the arguments against the tool's schema, sends a
 * signed request (docs/tools.md) to its https URL or its Workers for Platforms script, waits at most
 * its timeout, reads at most MAX_TOOL_RESPONSE_BYTES of the answer, and hands back JSON text for
 * the model. It never throws: every failure is a ToolFailure with a corrective message for the
 * model that names the tool and the kind of failure, never the secret or the tool's raw body.
 */
import { Validator } from "@cfworker/json-schema";
import { hmacSha256Hex } from "../auth/keys.ts";
import type { Env } from "../env.ts";
import { readCapped } from "../http-body.ts";
import { targetProblem } from "./targets.ts";
import type { RegisteredTool, ToolFailure, ToolOutcome } from "./types.ts";

/** The largest tool answer read; more is refused as too_large (it also bounds the model's input). */
export const MAX_TOOL_RESPONSE_BYTES = 16 * 1024;
/** Headers of the signature scheme; the tool side is examples/order-status/src/verify.ts. */
export const TIMESTAMP_HEADER = "X-Chatedge-Timestamp";
export const SIGNATURE_HEADER = "X-Chatedge-Signature";
/** Limits a dispatched tool runs under, per call (Workers for Platforms custom limits). */
const DISPATCH_LIMITS = { cpuMs: 50, subRequests: 10 };
/** The URL a dispatched request carries: the script is chosen by name, so the host is never resolved. */
const DISPATCH_URL = "https://tool.dispatch.internal/";

/** What invokeTool needs of the environment; DISPATCHER is the optional dispatch namespace binding. */
export type ToolEnv = Pick<Env, "ENVIRONMENT"> & { DISPATCHER?: DispatchNamespace };

/** Where the call comes from, sent to the tool in the body (all optional; read at each call). */
export interface ToolCallContext {
  conversationId?: string;
  requestId?: string;
  /** The end user the message is from, as the platform established it (`ToolRequestBody.user`). */
  user?: string;
}

/** The body a tool receives: the exact bytes the signature covers are this object's JSON text. */
export interface ToolRequestBody {
  tool: string;
  arguments: Record<string, unknown>;
  tenant: string;
  conversation: string | null;
  /** The request the call is part of; a caller may choose it (X-Request-Id), and a message's calls share it. */
  request_id: string | null;
  /** This call's own id, made by the platform: the key a tool with side effects refuses repeats by. */
  call_id: string;
  /**
   * Whom the message is from (docs/tools.md): `user:<id>`, a user the tenant established (its
   * server named them with a secret key, or its page's `user_hash` verified them); `visitor:<id>`,
   * an anonymous browser visitor; `key:<id>`, a server call that named no user.
   */
  user: string | null;
}

/**
 * The corrective message the model gets for a failure: what went wrong and what to do next. No
 * tool output and no secret is ever part of it; `detail` is platform-made text only.
 */
export function toolFailureMessage(name: string, failure: ToolFailure, detail = ""): string {
  const more = detail ? ` ${detail}` : "";
  switch (failure) {
    case "unknown_tool":
      return `Error: there is no tool named ${name}. Use only the tools you were given.`;
    case "not_allowed":
      return `Error: the tool ${name} is not available to you. Use only the tools you were given.`;
    case "invalid_arguments":
      return `Error: the arguments for ${name} do not match its parameters schema:${more} Call ${name} again with corrected arguments.`;
    case "timeout":
      return `Error: ${name} did not answer in time.${more} Tell the user the lookup is not available right now; do not guess the result.`;
    case "http_error":
      return `Error: ${name} failed${more}. Tell the user the lookup is not available right now; do not guess the result.`;
    case "invalid_json":
      return `Error: ${name} returned an answer that is not JSON. Tell the user the lookup is not available right now; do not guess the result.`;
    case "too_large":
      return `Error: ${name} returned more than ${MAX_TOOL_RESPONSE_BYTES} bytes, which is refused. Tell the user the lookup is not available right now.`;
    case "unreachable":
      return `Error: ${name} could not be reached. Tell the user the lookup is not available right now; do not guess the result.`;
    case "step_limit":
      return `Error: no more tool calls are allowed in this answer. Answer the user with what you have.`;
    case "cancelled":
      return `Error: the call to ${name} was cancelled.`;
  }
}

/** Parses and checks the model's arguments; a problem is platform-made text for the model. */
function checkArguments(
  tool: RegisteredTool,
  argumentsJson: string,
): { ok: true; args: Record<string, unknown> } | { ok: false; problem: string } {
  let args: unknown;
  try {
    // Some models send an empty string for a call without arguments.
    args = argumentsJson.trim() === "" ? {} : JSON.parse(argumentsJson);
  } catch {
    return { ok: false, problem: " the arguments are not valid JSON." };
  }
  if (typeof args !== "object" || args === null || Array.isArray(args))
    return { ok: false, problem: " the arguments must be a JSON object." };
  try {
    const result = new Validator(tool.parameters, "2020-12", false).validate(args);
    if (result.valid) return { ok: true, args: args as Record<string, unknown> };
    // The innermost errors say the most; the validator lists them first.
    const lines = result.errors
      .slice(0, 5)
      .map((e) => `${e.instanceLocation === "#" ? "(root)" : e.instanceLocation}: ${e.error}`);
    return { ok: false, problem: ` ${lines.join("; ")}.` };
  } catch {
    return { ok: false, problem: " the tool's schema cannot be applied." };
  }
}

/** Builds the signed request headers for `body` at `nowMs`. */
export async function signToolRequest(
  secret: string,
  body: string,
  nowMs: number = Date.now(),
): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(nowMs / 1000));
  return {
    "Content-Type": "application/json",
    Accept: "application/json",
    [TIMESTAMP_HEADER]: timestamp,
    [SIGNATURE_HEADER]: `sha256=${await hmacSha256Hex(secret, `${timestamp}.${body}`)}`,
  };
}

/**
 * Calls `tool` with the model's `argumentsJson`. `signal` is the visitor's (a disconnect cancels
 * the call); the tool's own timeout applies on top. Never throws.
 */
export async function invokeTool(
  env: ToolEnv,
  tool: RegisteredTool,
  argumentsJson: string,
  signal: AbortSignal,
  context: ToolCallContext = {},
): Promise<ToolOutcome> {
  const started = Date.now();
  const name = tool.name;
  const fail = (failure: ToolFailure, detail?: string): ToolOutcome => ({
    ok: false,
    name,
    failure,
    content: toolFailureMessage(name, failure, detail),
    latencyMs: Date.now() - started,
  });
  if (signal.aborted) return fail("cancelled");
  const checked = checkArguments(tool, argumentsJson);
  if (!checked.ok) return fail("invalid_arguments", checked.problem);

  const payload: ToolRequestBody = {
    tool: name,
    arguments: checked.args,
    tenant: tool.tenantId,
    conversation: context.conversationId ?? null,
    request_id: context.requestId ?? null,
    call_id: crypto.randomUUID(),
    user: context.user ?? null,
  };
  const body = JSON.stringify(payload);
  const timer = new AbortController();
  let timedOut = false;
  const timeout = setTimeout(() => {
    timedOut = true;
    timer.abort();
  }, tool.timeoutMs);
  const onCancel = () => timer.abort();
  signal.addEventListener("abort", onCancel);
  try {
    const init: RequestInit = {
      method: "POST",
      headers: await signToolRequest(tool.secret, body),
      body,
      signal: timer.signal,
      // A redirect could lead anywhere, past the target check: a tool answers where it was registered.
      redirect: "manual",
    };
    let res: Response;
    if (tool.target.kind === "https") {
      // Checked at registration too; checked again in case the environment changed since.
      if (targetProblem(tool.target, tool.tenantId, env)) return fail("unreachable");
      res = await fetch(tool.target.url, init);
    } else {
      if (!env.DISPATCHER || targetProblem(tool.target, tool.tenantId, env)) return fail("unreachable");
      let fetcher: Fetcher;
      try {
        // Throws when no script of that name is in the namespace.
        fetcher = env.DISPATCHER.get(tool.target.script, {}, { limits: DISPATCH_LIMITS });
      } catch {
        return fail("unreachable");
      }
      res = await fetcher.fetch(DISPATCH_URL, init);
    }
    if (res.status < 200 || res.status > 299) {
      await res.body?.cancel().catch(() => {});
      return fail("http_error", ` (HTTP ${res.status})`);
    }
    const text = await readCapped(res, MAX_TOOL_RESPONSE_BYTES);
    if (text === null) return fail("too_large");
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return fail("invalid_json");
    }
    // Re-serialized: the model gets compact JSON, whatever whitespace the tool sent.
    return { ok: true, name, content: JSON.stringify(parsed), latencyMs: Date.now() - started };
  } catch {
    if (timedOut) return fail("timeout", ` (limit ${tool.timeoutMs} ms)`);
    if (signal.aborted) return fail("cancelled");
    return fail("unreachable");
  } finally {
    clearTimeout(timeout);
    signal.removeEventListener("abort", onCancel);
  }
}
