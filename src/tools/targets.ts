/**
 * Where a tenant may point a tool. An https target is a URL the worker POSTs to, so it gets the
 * webhook rule (src/notify/webhook-target.ts): https on a public host in production; outside it,
 * http to local fakes is allowed. A dispatch target is a script in the platform's Workers for
 * Platforms namespace, shared by every tenant: a tenant may only name scripts that start with its
 * own id and two underscores, so it can never reach another tenant's worker. Not a single dash:
 * tenant ids contain dashes, so tenant `acme` could then claim `acme-corp-...`, the scripts of
 * tenant `acme-corp`; ids never contain an underscore, so the first `__` ends the id unambiguously.
 */
import type { Env } from "../env.ts";
import { strictWebhookTargets, webhookTargetProblem } from "../notify/webhook-target.ts";
import type { ToolTarget } from "./types.ts";

/** Cloudflare's rule for script names: lowercase letters, digits, dashes and underscores, up to 63. */
const SCRIPT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** The prefix every dispatch script of `tenantId` carries. */
export const dispatchPrefix = (tenantId: string): string => `${tenantId}__`;

/** Why `tenantId` may not use `target`, with the field it concerns; null when it may. */
export function targetProblem(
  target: ToolTarget,
  tenantId: string,
  env: Pick<Env, "ENVIRONMENT">,
): { path: string; message: string } | null {
  if (target.kind === "https") {
    const problem = webhookTargetProblem(target.url, strictWebhookTargets(env));
    if (problem) return { path: "target.url", message: problem };
    const url = new URL(target.url);
    // Credentials in the URL would be stored and shown in reads; tools authenticate by signature.
    if (url.username || url.password) return { path: "target.url", message: "must not carry credentials" };
    return null;
  }
  if (!SCRIPT_NAME.test(target.script))
    return { path: "target.script", message: "script names are 1-63 of [a-z0-9_-], starting alphanumeric" };
  const prefix = dispatchPrefix(tenantId);
  if (!target.script.startsWith(prefix) || target.script.length === prefix.length)
    return { path: "target.script", message: `this tenant's scripts are named ${prefix}<name>` };
  return null;
}
