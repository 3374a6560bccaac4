import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { newRouter } from "./app";
import { jsonResponse } from "./openapi";
import type { Services } from "./services";

const Check = z.object({ ok: z.boolean(), ms: z.number(), error: z.string().optional() });
const Ready = z
  .object({
    ok: z.boolean(),
    postgres: Check,
    redis: Check.extend({ configured: z.boolean() }),
    checked_at: z.string().openapi({ description: "When the checks ran; an answer is reused for 5 s" }),
  })
  .openapi("Readiness");
type Readiness = z.infer<typeof Ready>;

/**
 * How long one isolate reuses its readiness answer. `/readyz` needs no credentials, and each check
 * is a Postgres query and an Upstash command (billed per command): without this, a script calling
 * it in a loop would buy both at its own rate. Keyed by the connections checked, at most a few.
 */
export const READY_TTL_MS = 5_000;
const answers = new Map<string, { at: number; body: Readiness }>();

const TIMED_OUT = new Error("timed out");

/**
 * Runs a probe with a deadline; answers how it went and how long it took. The answer needs no
 * credentials, so a failure says only that it failed or timed out: the driver's message (a host, a
 * database user) goes to the worker's log.
 */
async function probe(name: string, run: () => Promise<unknown>, timeoutMs: number) {
  const started = Date.now();
  try {
    await Promise.race([run(), new Promise((_, reject) => setTimeout(() => reject(TIMED_OUT), timeoutMs))]);
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    const ms = Date.now() - started;
    if (err === TIMED_OUT) return { ok: false, ms, error: `timed out after ${timeoutMs} ms` };
    console.error(JSON.stringify({ msg: `readiness: ${name} failed`, error: String(err) }));
    return { ok: false, ms, error: "unreachable (the worker's log has the error)" };
  }
}

/** Liveness and readiness; readiness names the dependency that is down. */
export const health = newRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/healthz",
      tags: ["ops"],
      summary: "Liveness: the worker answers",
      responses: { 200: jsonResponse(z.object({ ok: z.literal(true) }), "Alive") },
    }),
    (c) => c.json({ ok: true as const }, 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/readyz",
      tags: ["ops"],
      summary: "Readiness: Postgres and (when configured) Redis reachable",
      responses: { 200: jsonResponse(Ready, "Ready"), 503: jsonResponse(Ready, "Not ready") },
    }),
    async (c) => {
      const svc = c.get("svc");
      const key = `${svc.env.DATABASE_URL}\n${svc.env.UPSTASH_REDIS_REST_URL ?? ""}`;
      const now = Date.now();
      let answer = answers.get(key);
      if (!answer || now - answer.at >= READY_TTL_MS) {
        // Calls that come while this one checks again reuse the answer before.
        if (answer) answer.at = now;
        answer = { at: now, body: await readiness(svc) };
        if (answers.size >= 8) answers.clear();
        answers.set(key, answer);
      }
      return c.json(answer.body, answer.body.ok ? 200 : 503, { "Cache-Control": "no-store" });
    },
  );

/** Checks Postgres and, when configured, Redis. */
async function readiness(svc: Services): Promise<Readiness> {
  const checkedAt = new Date().toISOString();
  const configured = svc.env.UPSTASH_REDIS_REST_URL !== undefined;
  const [postgres, redis] = await Promise.all([
    probe("postgres", () => svc.dbh.db.execute(sql`select 1`), 3_000),
    configured
      ? probe(
          "redis",
          async () => {
            if (!(await svc.cache.ping())) throw new Error("no PONG");
          },
          1_000,
        )
      : Promise.resolve({ ok: true, ms: 0 }),
  ]);
  // Redis is a cache: without it the platform still serves, so only Postgres decides readiness.
  return { ok: postgres.ok, postgres, redis: { ...redis, configured }, checked_at: checkedAt };
}
