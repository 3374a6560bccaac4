/**
 * Releases one environment of wrangler.jsonc: migrate its database, deploy the worker, then check
 * that it is ready and answers a chat. Each step must pass before the next runs; a failure exits
 * non-zero with a message naming the step.
 *
 *   DATABASE_URL=postgres://... RELEASE_URL=https://chatedge-staging.<you>.workers.dev SMOKE_KEY=sk_... \
 *     npm run release -- --env staging
 *
 * DATABASE_URL is that environment's database (the same value as its `wrangler secret`); SMOKE_KEY a
 * secret key of a tenant kept for this check (the chat counts against its budget and analytics).
 * `--dry-run` deploys with `wrangler deploy --dry-run` (bundles, uploads nothing); WRANGLER
 * replaces the wrangler command (default `wrangler`, from node_modules/.bin via scripts/node.sh).
 * RELEASE_READY_TIMEOUT_MS (default 60000) is how long /readyz may take to answer 200 after deploy.
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { migrateDatabase } from "./migrate.ts";

const ENVIRONMENTS = ["staging", "production"] as const;
type Environment = (typeof ENVIRONMENTS)[number];

/** A failed step: the message names it. */
class StepFailed extends Error {}

function log(env: Environment, msg: string): void {
  console.log(`release ${env}: ${msg}`);
}

async function step<T>(env: Environment, name: string, run: () => Promise<T>): Promise<T> {
  log(env, `${name} ...`);
  try {
    const out = await run();
    log(env, `${name} ok`);
    return out;
  } catch (err) {
    throw new StepFailed(`step "${name}" failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Runs the deploy command with inherited output; rejects on a non-zero exit. */
function deploy(env: Environment, dryRun: boolean): Promise<void> {
  const [cmd = "wrangler", ...pre] = (process.env.WRANGLER ?? "wrangler").split(/\s+/).filter(Boolean);
  const args = [...pre, "deploy", "--env", env, ...(dryRun ? ["--dry-run"] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
    child.once("error", (err) => reject(new Error(`${cmd} did not start: ${err.message}`)));
    child.once("exit", (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${[cmd, ...args].join(" ")} exited with ${code ?? signal}`)),
    );
  });
}

/** Polls /readyz until it answers 200 or the deadline passes (a new version takes a moment to serve). */
async function ready(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  for (;;) {
    try {
      const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      if (res.status === 200) return;
      last = `${res.status} ${body.slice(0, 300)}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) throw new Error(`GET ${base}/readyz: ${last}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

/** One chat completion with the smoke key; it must answer 200 with a non-empty reply. */
async function smokeChat(base: string, key: string): Promise<string> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: "Release smoke test: reply with one word." }],
    }),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(`POST ${base}/v1/chat/completions: ${res.status} ${text.slice(0, 300)}`);
  const reply = (JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] }).choices?.[0]
    ?.message?.content;
  if (typeof reply !== "string" || reply.length === 0) throw new Error(`no reply in ${text.slice(0, 300)}`);
  return reply;
}

/** Parses the command line and the environment; returns what to release or a usage problem. */
function options(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: { env: { type: "string" }, "dry-run": { type: "boolean", default: false } },
  });
  const env = values.env;
  if (!ENVIRONMENTS.includes(env as Environment)) {
    return { problem: `--env must be one of ${ENVIRONMENTS.join(", ")} (got ${env ?? "nothing"})` };
  }
  const missing = ["DATABASE_URL", "RELEASE_URL", "SMOKE_KEY"].filter((k) => !process.env[k]);
  if (missing.length > 0) return { problem: `set ${missing.join(", ")} for the ${env} environment` };
  const timeout = Number(process.env.RELEASE_READY_TIMEOUT_MS ?? 60_000);
  return {
    env: env as Environment,
    dryRun: values["dry-run"],
    databaseUrl: process.env.DATABASE_URL as string,
    base: (process.env.RELEASE_URL as string).replace(/\/+$/, ""),
    smokeKey: process.env.SMOKE_KEY as string,
    readyTimeoutMs: Number.isFinite(timeout) && timeout >= 0 ? timeout : 60_000,
  };
}

if (import.meta.main) {
  let opts: ReturnType<typeof options>;
  try {
    opts = options(process.argv.slice(2));
  } catch (err) {
    opts = { problem: err instanceof Error ? err.message : String(err) };
  }
  if ("problem" in opts) {
    console.error(`release: ${opts.problem}\nusage: npm run release -- --env staging|production [--dry-run]`);
    process.exit(2);
  }
  const { env } = opts;
  try {
    await step(env, "migrate", () => migrateDatabase(opts.databaseUrl));
    await step(env, opts.dryRun ? "deploy (dry run)" : "deploy", () => deploy(env, opts.dryRun));
    await step(env, "readyz", () => ready(opts.base, opts.readyTimeoutMs));
    const reply = await step(env, "smoke chat", () => smokeChat(opts.base, opts.smokeKey));
    log(env, `released; smoke reply: ${JSON.stringify(reply.slice(0, 80))}`);
  } catch (err) {
    console.error(`release ${env} FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
