/**
 * `npm run dev`: the whole platform on this machine with embedded defaults, no accounts.
 * Postgres: DATABASE_URL, else a local server on 127.0.0.1:5432, else embedded PGlite (sessions
 * queued one at a time). The worker reaches it through the WebSocket relay playing Neon's proxy.
 * Redis: UPSTASH_REDIS_REST_URL/TOKEN, else the Upstash REST bridge to a local Redis, else no cache.
 * Turnstile (tenants' optional bot check): TURNSTILE_SITEVERIFY_URL/TURNSTILE_SCRIPT_URL, else the
 * local stand-in for challenges.cloudflare.com (local/turnstile.ts), where Cloudflare's test keys work.
 * Then migrations, the demo tenant, `wrangler dev` (which first builds web/ into public/: the widget,
 * the console, the demo page), and a curl line that works. Ctrl-C stops it all (a second one at once).
 * Provider keys and the worker's other settings come from the environment, else from `.dev.vars`
 * (local/dev-vars.ts); the launcher prints which models they make callable.
 * For tests: DEV_DATA_DIR (keys, PGlite), DEV_PERSIST_DIR (Durable Object state) and DEV_VARS_FILE
 * (instead of `.dev.vars`) isolate a run, and DEV_JSON=1 adds one machine-readable line
 * `{"ready":true,...}` once the worker answers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { envFileText, forwardedVars, modelSummary, parseDevVars } from "./dev-vars.ts";
import { startEmbedder } from "./embedder.ts";
import { ensureDatabase, migrateDatabase } from "./migrate.ts";
import { postgresAnswers, startPglite } from "./pglite.ts";
import { freePort } from "./ports.ts";
import { startRelay } from "./relay.ts";
import { DEMO_TENANT, registerDemoTool, seedDemo } from "./seed.ts";
import { demoKnowledgeReady, seedDemoKnowledge, useLocalEmbedder } from "./seed-knowledge.ts";
import { PortInUseError, type RunningTool, spawnOrderStatusTool } from "./tools.ts";
import { startTurnstile } from "./turnstile.ts";
import { redisAnswers, startUpstashBridge } from "./upstash-bridge.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const dataDir = process.env.DEV_DATA_DIR ?? `${root}.dev-data`;
const port = Number(process.env.PORT ?? 8787);
/** The example tool (examples/order-status) the demo tenant calls; TOOL_PORT=0 takes any free port. */
const toolPort = Number(process.env.TOOL_PORT ?? 8795);
/** Fixed by default: the demo's chunks are tagged with the embedder's URL, so a new port would not match them. */
const embedderPort = Number(process.env.EMBEDDER_PORT ?? 8796);
const adminToken = process.env.ADMIN_TOKEN ?? "dev-admin-token-change-me";
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let wrangler: ChildProcess | undefined;
let wranglerExited = false;

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
    if (wranglerExited || stopping) return false;
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Signals wrangler's whole process group; false when nothing of it is left. */
function signalGroup(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops wrangler's whole process group (it spawns node and workerd children), then our servers.
 * The group is signalled and watched, not wrangler's exit event awaited: wrangler may be gone
 * already (killed by a signal, its `exitCode` null) while its workerd still runs.
 */
async function shutdown(code: number) {
  if (stopping) return;
  stopping = true;
  const pid = wrangler?.pid;
  if (pid && signalGroup(pid, "SIGTERM")) {
    const until = Date.now() + 5_000;
    while (signalGroup(pid, 0) && Date.now() < until) await sleep(100);
    signalGroup(pid, "SIGKILL");
  }
  // Each server gets a few seconds to close; none holds the exit up for good.
  for (const fn of cleanups.reverse()) {
    await Promise.race([Promise.resolve(fn()).catch(() => {}), sleep(3_000)]);
  }
  process.exit(code);
}

/** Ctrl-C (or SIGTERM) stops everything; a second one while stopping exits at once. */
function interrupt() {
  if (!stopping) return void shutdown(0);
  say("stopping now");
  if (wrangler?.pid) signalGroup(wrangler.pid, "SIGKILL");
  process.exit(130);
}

/**
 * Registers the demo tenant's order_status tool (the platform makes its secret) and starts the example
 * worker (examples/order-status) in workerd with that secret on TOOL_PORT. With TOOL_PORT=0 the port
 * is one the OS had free a moment before; when something takes it before workerd binds it, another
 * port is registered and tried.
 */
async function startDemoTool(base: string): Promise<RunningTool> {
  for (let attempt = 1; ; attempt++) {
    const chosen = toolPort === 0 ? await freePort() : toolPort;
    const secret = await registerDemoTool(base, adminToken, `http://127.0.0.1:${chosen}/`);
    try {
      return await spawnOrderStatusTool({ secret, port: chosen });
    } catch (err) {
      if (!(err instanceof PortInUseError)) throw err;
      if (toolPort !== 0) throw new Error(`${err.message}: set TOOL_PORT to a free port, or 0 for any`);
      if (attempt === 5) throw err;
      say(`tool: port ${chosen} was taken before the tool bound it; trying another`);
    }
  }
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
  // wrangler reads no .dev.vars when given --env-file, so the settings it would hold go in that file.
  const devVarsFile = process.env.DEV_VARS_FILE ?? `${root}.dev.vars`;
  const devVars = parseDevVars(existsSync(devVarsFile) ? readFileSync(devVarsFile, "utf8") : undefined);
  const given = forwardedVars(process.env, devVars);
  for (const note of given.notes) say(note);
  const workerVars = { ...given.vars, ...vars };
  const models = modelSummary(workerVars);
  say(models);
  mkdirSync(dataDir, { recursive: true });
  const envFile = `${dataDir}/dev.env`;
  if (stopping) return;
  writeFileSync(envFile, envFileText(workerVars), { mode: 0o600 });

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
  wrangler.on("exit", (code, signal) => {
    wranglerExited = true;
    if (stopping) return;
    say(`wrangler dev exited (${signal ?? code})`);
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
  // The demo tenant's order_status tool: registered first (its secret is made by the platform),
  // then the example worker starts in workerd with that secret. ENVIRONMENT=development lets the
  // platform call it over plain http on 127.0.0.1.
  const tool = await startDemoTool(base);
  cleanups.push(() => tool.close());
  say(`tool: order_status (examples/order-status) at ${tool.url}`);
  // The demo's shipping policy and returns FAQ (src/knowledge), indexed by the worker's own queue,
  // embedded by the local embedder (lexical hashed features, local/embedder.ts) for hybrid search.
  const embedder = await startEmbedder({ port: embedderPort });
  cleanups.push(() => embedder.close());
  await useLocalEmbedder(base, adminToken, DEMO_TENANT, `${embedder.url}/v1`);
  say(`knowledge: local embedder at ${embedder.url}/v1`);
  const added = await seedDemoKnowledge(base, adminToken, DEMO_TENANT);
  if (added > 0) say(`knowledge: ${added} demo sources queued for indexing`);
  say(`knowledge: ${await demoKnowledgeReady(base, adminToken, DEMO_TENANT)} demo sources ready`);
  console.log(`
  chatedge is running at ${base}
    API docs:         ${base}/docs
    console:          ${base}/console  (sign in with the admin token or the secret key)
    demo chat page:   ${base}/demo/?key=${keys.publishable}
    admin token:      ${adminToken}
    demo tenant:      demo (its bot may call the order_status tool: try "where is my order 1234?")
    secret key:       ${keys.secret}
    publishable key:  ${keys.publishable}
    ${models}

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
        wranglerPid: wrangler.pid,
      }),
    );
  }
}

process.on("SIGINT", interrupt);
process.on("SIGTERM", interrupt);
main().catch((err) => {
  console.error(`[chatedge] dev failed: ${err instanceof Error ? err.message : String(err)}`);
  void shutdown(1);
});
