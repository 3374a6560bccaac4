import type { Context } from "hono";
import type { AppEnv } from "../app";
import { AppError } from "../errors";

const VISITOR = /^[A-Za-z0-9_.:-]{8,128}$/;

/**
 * The end user a message counts against. Servers (secret keys) name it (`user`), or it defaults to
 * the key itself; browsers (publishable keys) send the widget's anonymous visitor id.
 */
export function endUserOf(c: Context<AppEnv>, given: string | undefined): string {
  const key = c.get("apiKey");
  if (key.kind === "publishable") {
    const visitor = c.req.header("x-visitor-id") ?? given;
    if (!visitor || !VISITOR.test(visitor)) {
      throw new AppError(
        "VALIDATION_FAILED",
        "publishable keys need an anonymous visitor id: X-Visitor-Id header of 8-128 [A-Za-z0-9_.:-]",
        { details: [{ path: "X-Visitor-Id", message: "missing or malformed" }] },
      );
    }
    return `visitor:${visitor}`;
  }
  return given ? `user:${given}` : `key:${key.id}`;
}
