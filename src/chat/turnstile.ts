/**
 * The optional bot check (Cloudflare Turnstile): a tenant that sets a Turnstile secret key makes a
 * browser (publishable key) pass the check before it starts a conversation. The widget renders the
 * check with the tenant's site key and sends the token it gets as `turnstile_token`; the token is
 * verified here with siteverify, once (Turnstile tokens are single-use).
 *
 * A browser that already holds a valid visitor token is not asked again: the platform issues that
 * token only to a browser that passed the check (or started before the check was turned on), so it
 * is the proof. Such a token copied to many addresses starts conversations as one visitor: its
 * starts count on its id (src/chat/address-limits.ts). Servers (secret keys) are never asked.
 */
import type { Context } from "hono";
import type { AppEnv } from "../app";
import { clientIp } from "../auth/client-ip";
import { AppError } from "../errors";

/** What siteverify answers (https://developers.cloudflare.com/turnstile/get-started/server-side-validation/). */
interface Siteverify {
  success: boolean;
  "error-codes"?: string[];
  challenge_ts?: string;
  hostname?: string;
  action?: string;
  cdata?: string;
}

/** Turnstile tokens are at most 2048 characters; anything longer is not one. */
const MAX_TOKEN_LENGTH = 2048;

function failed(codes: string[]): AppError {
  return new AppError("FORBIDDEN", "bot check failed", { details: { error_codes: codes } });
}

/** Whether this start must pass the tenant's bot check: a browser with no visitor token, on a tenant with a secret. */
export function botCheckNeeded(c: Context<AppEnv>): boolean {
  return !!c.get("tenant").turnstileSecretKey && c.get("apiKey").kind === "publishable" && !c.get("visitor");
}

/**
 * Refuses a browser's conversation start that has not passed the tenant's bot check: 403 FORBIDDEN
 * "bot check failed" (details.error_codes as siteverify gave them), 503 when siteverify is unreachable.
 */
export async function requireBotCheck(c: Context<AppEnv>, token: string | undefined): Promise<void> {
  const secret = c.get("tenant").turnstileSecretKey;
  if (!secret || !botCheckNeeded(c)) return;
  if (!token) throw failed(["missing-input-response"]);
  if (token.length > MAX_TOKEN_LENGTH) throw failed(["invalid-input-response"]);
  const env = c.get("svc").env;
  const form = new URLSearchParams({ secret, response: token });
  const ip = clientIp(c.req.raw.headers);
  if (ip !== "unknown") form.set("remoteip", ip);
  let out: Siteverify;
  try {
    const res = await fetch(env.TURNSTILE_SITEVERIFY_URL, {
      method: "POST",
      body: form,
      signal: AbortSignal.timeout(env.TURNSTILE_TIMEOUT_MS),
    });
    out = (await res.json()) as Siteverify;
    if (typeof out?.success !== "boolean") throw new Error(`siteverify answered ${res.status}`);
    // Cloudflare's own failure, not the token's: the documented advice is to retry.
    if (out["error-codes"]?.includes("internal-error")) throw new Error("siteverify internal-error");
  } catch (err) {
    console.error(
      JSON.stringify({ msg: "siteverify unreachable", requestId: c.get("requestId"), error: String(err) }),
    );
    throw new AppError("UNAVAILABLE", "the bot check cannot be verified right now; try again shortly", {
      headers: { "Retry-After": "5" },
    });
  }
  if (out.success) return;
  const codes = out["error-codes"] ?? [];
  // A wrong secret is the tenant's configuration, not the visitor: worth a line in the logs.
  if (codes.some((code) => code.endsWith("-input-secret"))) {
    console.warn(JSON.stringify({ msg: "turnstile secret rejected", tenantId: c.get("tenant").id, codes }));
  }
  throw failed(codes);
}
