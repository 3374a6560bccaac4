/**
 * `npm run dev`: the whole platform on this machine with embedded defaults, no accounts.
 * Postgres: DATABASE_URL, else a local server on 127.0.0.1:5432, else embedded PGlite (sessions
 * queued one at a time). The worker reaches it through the WebSocket relay playing Neon's proxy.
 * Redis: UPSTASH_REDIS_REST_URL/TOKEN, else the Upstash REST bridge to a local Redis, else no cache.
 * Turnstile (tenants' optional bot check): TURNSTILE_SITEVERIFY_URL/TURNSTILE_SCRIPT_URL, else the
 * local stand-in for challenges.cloudflare.com (local/turnstile.ts), where Cloudflare's test keys work.
 * Then migrations, the demo tenant, `wrangler dev` (which first builds web/ into public/: the widget,
 * the console, the demo page), and a curl line that works. Ctrl-C stops it all.
 * For tests: DEV_DATA_DIR (keys, PGlite) and DEV_PERSIST_DIR (Durable Object state) isolate a run,
 * and DEV_JSON=1 adds one machine-readable line `{"ready":true,...}` once the worker answers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ensureDatabase, migrateDatabase } from "./migrate.ts";
import { postgresAnswers, startPglite } from "./pglite.ts";
import { startRelay } from "./relay.ts";
import { DEMO_TENANT, seedDemo } from "./seed.ts";
import { startTurnstile } from "./turnstile.ts";
import { redisAnswers, startUpstashBridge } from "./upstash-bridge.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const dataDir = process.env.DEV_DATA_DIR ?? `${root}.dev-data`;
const port = Number(process.env.PORT ?? 8787);
const adminToken = process.env.ADMIN_TOKEN ?? "dev-admin-token-change-me";
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let wrangler: ChildProcess | undefined;

const say = (msg: string) => console.log(`[chatedge] ${msg}`);

async function postgres(): Promise<{ url: string; serialize: boolean; label: string }> {
  if (process.env.DATABASE_URL)
    return { url: process.env.DATABASE_URL, serialize: false, label: "DATABASE_URL" };
  // DEV_POSTGRES=pglite skips the local server probe, to try the embedded path on a machine that has one.
  if (process.env.DEV_POSTGRES !== "pglite" && (await postgresAnswers("127.0.0.1", 5432))) {
    return {
      url: "postgres://postgres@127.0.0.1:5432/chatedge",
      serialize: false,
      label: "local PostgreSQL on 127.0.0.1:5432",
    };
  }
  mkdirSync(`${dataDir}/pglite`, { recursive: true });
  const server = await startPglite({ dataDir: `${dataDir}/pglite` });
  cleanups.push(() => server.close());
  return {
    url: `postgres://postgres@127.0.0.1:${server.port}/postgres`,
    serialize: true,
    label: `embedded PGlite in ${dataDir}/pglite`,
  };
}

async function redis(): Promise<{ url: string; token: string; label: string } | undefined> {
  if (process.env.UPSTASH_REDIS_REST_URL && process.env.UPSTASH_REDIS_REST_TOKEN) {
    return {
      url: process.env.UPSTASH_REDIS_REST_URL,
      token: process.env.UPSTASH_REDIS_REST_TOKEN,
      label: "UPSTASH_REDIS_REST_URL",
    };
  }
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  if (!(await redisAnswers(redisUrl))) return undefined;
  const token = randomBytes(16).toString("hex");
  const bridge = await startUpstashBridge({ redisUrl, token });
  cleanups.push(() => bridge.close());
  return { url: bridge.url, token, label: `Upstash REST bridge ${bridge.url} -> ${redisUrl}` };
}

/** Where the worker verifies Turnstile tokens and the widget loads its script: given, or local. */
async function turnstile(): Promise<Record<string, string>> {
  const given = {
    TURNSTILE_SITEVERIFY_URL: process.env.TURNSTILE_SITEVERIFY_URL,
    TURNSTILE_SCRIPT_URL: process.env.TURNSTILE_SCRIPT_URL,
  };
  if (given.TURNSTILE_SITEVERIFY_URL && given.TURNSTILE_SCRIPT_URL) {
    say("turnstile: TURNSTILE_SITEVERIFY_URL and TURNSTILE_SCRIPT_URL");
    return given as Record<string, string>;
  }
  const local = await startTurnstile();
  cleanups.push(() => local.close());
  say(`turnstile: local stand-in ${local.url} (Cloudflare's test keys work)`);
  return {
    TURNSTILE_SITEVERIFY_URL: given.TURNSTILE_SITEVERIFY_URL ?? local.siteverifyUrl,
    TURNSTILE_SCRIPT_URL: given.TURNSTILE_SCRIPT_URL ?? local.scriptUrl,
  };
}

async function waitForHealth(url: string, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if (wrangler?.exitCode !== null && wrangler?.exitCode !== undefined) return false;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * The demo page is served by the worker itself, so its origin is this port's: the demo tenant must
 * allow it, whatever PORT says. Through the admin API, which drops cached copies of the config.
 */
async function allowDemoOrigins(base: string, token: string, origins: string[]): Promise<boolean> {
  const auth = { Authorization: `Bearer ${token}` };
  const res = await fetch(`${base}/admin/tenants/${DEMO_TENANT}`, { headers: auth });
  if (!res.ok) return false;
  const allowed = ((await res.json()) as { allowed_origins: string[] }).allowed_origins;
  const missing = origins.filter((o) => !allowed.includes(o));
  if (missing.length === 0) return true;
  const patched = await fetch(`${base}/admin/tenants/${DEMO_TENANT}`, {
    method: "PATCH",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ allowed_origins: [...allowed, ...missing] }),
  });
  return patched.ok;
}

let stopping = false;

/** Stops wrangler's whole process group (it spawns node and workerd children), then our servers. */
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  const child = wrangler;
  if (child?.pid && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const signal = (sig: NodeJS.Signals) => {
      try {
        process.kill(-(child.pid as number), sig);
      } catch {
        // already gone
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => {});
  process.exit(code);
}

async function main() {
  const pg = await postgres();
  say(`postgres: ${pg.label}`);
  await ensureDatabase(pg.url);
  await migrateDatabase(pg.url);
  say("migrations applied");
  const keys = await seedDemo(pg.url, `${dataDir}/demo-key.json`);
  say("demo tenant seeded");

  const target = new URL(pg.url);
  const relay = await startRelay({
    target: { host: target.hostname, port: Number(target.port || 5432) },
    serialize: pg.serialize,
  });
  cleanups.push(() => relay.close());
  const cache = await redis();
  say(
    cache
      ? `redis: ${cache.label}`
      : "redis: none found, running without cache (Postgres serves every lookup)",
  );

  const vars: Record<string, string> = {
    ENVIRONMENT: "development",
    DATABASE_URL: pg.url,
    NEON_WS_PROXY: `127.0.0.1:${relay.port}/v2`,
    ADMIN_TOKEN: adminToken,
    // PGlite serves one session at a time: a second pooled connection would wait for the first to idle out.
    PG_POOL_MAX: pg.serialize ? "1" : "4",
  };
  if (cache)
    Object.assign(vars, { UPSTASH_REDIS_REST_URL: cache.url, UPSTASH_REDIS_REST_TOKEN: cache.token });
  Object.assign(vars, await turnstile());
  mkdirSync(dataDir, { recursive: true });
  const envFile = `${dataDir}/dev.env`;
  writeFileSync(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join("\n"),
    { mode: 0o600 },
  );

  wrangler = spawn(
    "wrangler",
    [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
      ...(process.env.DEV_PERSIST_DIR ? ["--persist-to", process.env.DEV_PERSIST_DIR] : []),
    ],
    {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
      detached: true,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  wrangler.on("exit", (code) => {
    if (stopping) return;
    say(`wrangler dev exited (${code})`);
    void shutdown(code ?? 1);
  });

  const base = `http://127.0.0.1:${port}`;
  if (!(await waitForHealth(`${base}/healthz`, 60_000))) {
    say("wrangler dev did not answer /healthz within 60 s");
    return shutdown(1);
  }
  if (!(await allowDemoOrigins(base, adminToken, [base, `http://localhost:${port}`]))) {
    say("could not allow the demo page's origin for the demo tenant");
    return shutdown(1);
  }
  console.log(`
  chatedge is running at ${base}
    API docs:         ${base}/docs
    console:          ${base}/console  (sign in with the admin token or the secret key)
    demo chat page:   ${base}/demo/?key=${keys.publishable}
    admin token:      ${adminToken}
    demo tenant:      demo
    secret key:       ${keys.secret}
    publishable key:  ${keys.publishable}

  Try it:
    curl -s ${base}/v1/config -H "Authorization: Bearer ${keys.secret}"

  Ctrl-C stops everything this command started.
`);
  if (process.env.DEV_JSON === "1") {
    console.log(
      JSON.stringify({
        ready: true,
        base,
        adminToken,
        secretKey: keys.secret,
        publishableKey: keys.publishable,
      }),
    );
  }
}

process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));
main().catch((err) => {
  console.error(`[chatedge] dev failed: ${err instanceof Error ? err.message : String(err)}`);
  void shutdown(1);
});
