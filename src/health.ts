import { createRoute, z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import { newRouter } from "./app";
import { jsonResponse } from "./openapi";

const Check = z.object({ ok: z.boolean(), ms: z.number(), error: z.string().optional() });
const Ready = z
  .object({ ok: z.boolean(), postgres: Check, redis: Check.extend({ configured: z.boolean() }) })
  .openapi("Readiness");

/** Runs a probe with a deadline; answers how it went and how long it took. */
async function probe(run: () => Promise<unknown>, timeoutMs: number) {
  const started = Date.now();
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs),
      ),
    ]);
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, ms: Date.now() - started, error: err instanceof Error ? err.message : String(err) };
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
      const configured = svc.env.UPSTASH_REDIS_REST_URL !== undefined;
      const [postgres, redis] = await Promise.all([
        probe(() => svc.dbh.db.execute(sql`select 1`), 3_000),
        configured
          ? probe(async () => {
              if (!(await svc.cache.ping())) throw new Error("no PONG");
            }, 1_000)
          : Promise.resolve({ ok: true, ms: 0 }),
      ]);
      // Redis is a cache: without it the platform still serves, so only Postgres decides readiness.
      const body = { ok: postgres.ok, postgres, redis: { ...redis, configured } };
      return c.json(body, postgres.ok ? 200 : 503);
    },
  );
