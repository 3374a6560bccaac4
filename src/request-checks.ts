/**
 * Checks every validated request input (body, query, path) gets beyond its own schema, in one
 * place, so no route can forget them: text Postgres cannot store (NUL, which neither `text` nor
 * `jsonb` accepts, and lone UTF-16 surrogates, which are not Unicode) in any string or object key,
 * nesting deeper than MAX_INPUT_DEPTH, and tenant webhook URLs that are not https on a public host
 * (src/notify/webhook-target.ts).
 */
import type { Env } from "./env.ts";
import { strictWebhookTargets, WEBHOOK_URL_FIELDS, webhookTargetProblem } from "./notify/webhook-target.ts";

export interface InputIssue {
  path: string;
  message: string;
}

/**
 * Levels of arrays and objects an input may nest. The deepest a real one goes is a tool's JSON
 * Schema on the OpenAI route (tools.0.function.parameters, then two levels per nested property):
 * far less. A deeper input is refused rather than walked: what lies below the bound would go
 * unchecked into the stores, and JSON.parse takes nesting (20,000 levels fit the 64 KiB body
 * limit) deeper than recursive code follows (Node's JSON.stringify and structuredClone overflow
 * from about 8,000; workerd's stack goes deeper, but nothing here should depend on how deep).
 */
export const MAX_INPUT_DEPTH = 64;

/**
 * Problems a refusal names at most (src/app.ts): enough to fix the input, and the answer stays
 * small. 1,000 messages of the wrong type on the OpenAI route, a 2 KB body, were answered with a
 * problem each, 63 KB.
 */
export const MAX_ISSUES = 20;

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
    if (issues.length >= MAX_ISSUES) return;
    if (typeof v === "string") {
      if (!storableText(v)) issues.push({ path: path.join("."), message: UNSTORABLE });
      const key = path.at(-1);
      if (key !== undefined && WEBHOOK_URL_FIELDS.has(key)) {
        const problem = webhookTargetProblem(v, strict);
        if (problem) issues.push({ path: path.join("."), message: problem });
      }
      return;
    }
    if (v === null || typeof v !== "object") return;
    if (depth >= MAX_INPUT_DEPTH) {
      issues.push({ path: path.join("."), message: `nested deeper than ${MAX_INPUT_DEPTH} levels` });
      return;
    }
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
