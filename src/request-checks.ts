/**
 * Checks every validated request input (body, query, path) gets beyond its own schema, in one
 * place, so no route can forget them: text Postgres cannot store (NUL, which neither `text` nor
 * `jsonb` accepts, and lone UTF-16 surrogates, which are not Unicode) in any string or object key,
 * and tenant webhook URLs that are not https on a public host (src/notify/webhook-target.ts).
 */
import type { Env } from "./env.ts";
import { strictWebhookTargets, WEBHOOK_URL_FIELDS, webhookTargetProblem } from "./notify/webhook-target.ts";

export interface InputIssue {
  path: string;
  message: string;
}

const UNSTORABLE = "contains a character that cannot be stored (NUL or a lone surrogate)";

/** Whether Postgres can store the string: no NUL, and well-formed UTF-16. */
export function storableText(s: string): boolean {
  return !s.includes("\u0000") && s.isWellFormed();
}

/** The problems of one validated input; empty when there are none. */
export function inputIssues(data: unknown, env: Pick<Env, "ENVIRONMENT">): InputIssue[] {
  const issues: InputIssue[] = [];
  const strict = strictWebhookTargets(env);
  const walk = (v: unknown, path: string[], depth: number) => {
    if (typeof v === "string") {
      if (!storableText(v)) issues.push({ path: path.join("."), message: UNSTORABLE });
      const key = path.at(-1);
      if (key !== undefined && WEBHOOK_URL_FIELDS.has(key)) {
        const problem = webhookTargetProblem(v, strict);
        if (problem) issues.push({ path: path.join("."), message: problem });
      }
      return;
    }
    // Bodies are bounded by MAX_BODY_BYTES; the depth bound only keeps a hostile nesting cheap.
    if (v === null || typeof v !== "object" || depth > 64) return;
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) walk(x, [...path, String(i)], depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      // The path names the object, not the key: the key itself cannot be shown or stored.
      if (!storableText(k)) issues.push({ path: path.join("."), message: `has a key that ${UNSTORABLE}` });
      walk(x, [...path, k], depth + 1);
    }
  };
  walk(data, [], 0);
  return issues;
}
