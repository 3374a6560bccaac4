/**
 * `npm run dev` (local/dev.ts) as a developer runs it: the provider settings it hands the worker
 * and what it prints about them, and its shutdown however `wrangler dev` ends.
 */
import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./stack";

let stack: Stack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

/** Resolves with the process's exit code (null: a signal) once it exits, or rejects after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Whether any process of the group is left. */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm run dev", () => {
  it("forwards provider keys from the environment over .dev.vars, says which models work, and stops when wrangler is killed", async () => {
    stack = await startStack(
      { OPENAI_API_KEY: "sk-from-environment" },
      [
        'OPENAI_API_KEY="sk-from-dev-vars"',
        // JSON in the env file wrangler reads must come through whole, or the worker refuses to start.
        `OPENAI_COMPAT_PROVIDERS='{"local":{"baseUrl":"http://127.0.0.1:9/v1"}}'`,
        "ADMIN_TOKEN=ignored-ignored-ignored",
      ].join("\n"),
    );
    const out = stack.output();
    expect(out).toContain(
      "models: mock, mock-slow; gpt-*, o* (OPENAI_API_KEY set); claude-* needs ANTHROPIC_API_KEY; local/* (no key needed)",
    );
    expect(out).toContain(".dev.vars sets ADMIN_TOKEN: ignored, npm run dev sets it itself");
    // A claude-* tenant without ANTHROPIC_API_KEY is refused at once, naming the key.
    const auth = { Authorization: `Bearer ${stack.adminToken}`, "Content-Type": "application/json" };
    const tenantId = `dev-life-${Date.now().toString(36)}`;
    const created = await fetch(`${stack.base}/admin/tenants`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({
        tenant_id: tenantId,
        name: "Dev life",
        system_prompt: "Hi.",
        model: "claude-haiku",
      }),
    });
    expect(created.status).toBe(201);
    const key = (await (
      await fetch(`${stack.base}/admin/tenants/${tenantId}/keys`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ kind: "secret", name: "k" }),
      })
    ).json()) as { key: string };
    const res = await fetch(`${stack.base}/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key.key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ model: "claude-haiku", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "ANTHROPIC_API_KEY",
    );

    // wrangler dies from a signal: the launcher notices, stops the rest and exits non-zero.
    process.kill(stack.wranglerPid, "SIGKILL");
    expect(await exitWithin(stack.launcher, 15_000)).toBe(1);
    expect(groupAlive(stack.wranglerPid)).toBe(false);
    expect(stack.output()).toContain("wrangler dev exited (SIGKILL)");
  }, 180_000);

  it("stops everything it started on Ctrl-C", async () => {
    stack = await startStack();
    const { base, wranglerPid, launcher } = stack;
    process.kill(launcher.pid as number, "SIGINT");
    expect(await exitWithin(launcher, 15_000)).toBe(0);
    expect(groupAlive(wranglerPid)).toBe(false);
    await expect(fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
  }, 180_000);
});
