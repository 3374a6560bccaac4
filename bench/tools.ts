/**
 * Tool step benchmark: the platform's own cost of one tool step on the conversation API (the model
 * asks for a tool, the tool answers, the model answers), against a plain turn in the same run.
 * A tool turn makes two model calls and one tool call where a plain turn makes one model call, so
 * the platform's cost of the step is the tool turn's latency minus the plain turn's, minus what
 * the extra model call and the tool call take on their own (both measured directly, same run).
 * CPU per step is the chatedge workerd's CPU per tool turn minus per plain turn (the model and the
 * tool run in other processes). The tool is a local HTTP server that answers at once; the model is
 * the fake LLM (local/fake-llm.ts), whose reply to "order 1234" is a call of the offered order tool.
 */
import { createServer } from "node:http";
import pg from "pg";
import { listen } from "../local/ports.ts";
import { insertKey, insertTenants } from "../local/seed-tenants.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import { chatFixtures, cpuMs, pct, round, shuffled, workerdPids } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const ROUNDS = Number(process.env.BENCH_TOOLS_ROUNDS ?? 4);
const PER_ROUND = 60; // messages per target per round, one at a time
const UPSTREAM_KEY = "sk-bench-upstream";
const ORDER_ANSWER = JSON.stringify({ order_id: "1234", found: true, status: "shipped" });

type Target = "bare" | "plain" | "tool";

/** A tool that answers every call at once (its signature is not checked: its time is not ours). */
async function instantTool() {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(ORDER_ANSWER);
    });
  });
  // workerd keeps connections open between calls; Node's 5 s default would close them under it.
  server.keepAliveTimeout = 120_000;
  const port = await listen(server, 0, "127.0.0.1");
  return {
    url: `http://127.0.0.1:${port}/orders`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function seed(databaseUrl: string, toolUrl: string): Promise<{ tools: string; bare: string }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await insertTenants(client, [
      {
        id: "bench-tools",
        name: "Bench tools",
        systemPrompt: "You help.",
        model: "gpt-4o-mini",
        monthlyTokenBudget: 10_000_000_000_000,
        rateLimitPerMinute: 1_000_000,
        userRateLimitPerMinute: 100_000,
        conversationCostCapUsd: 100_000,
        allowedTools: ["order_status"],
      },
      // The same tenant without tools: what having tools costs a message that uses none.
      {
        id: "bench-bare",
        name: "Bench without tools",
        systemPrompt: "You help.",
        model: "gpt-4o-mini",
        monthlyTokenBudget: 10_000_000_000_000,
        rateLimitPerMinute: 1_000_000,
        userRateLimitPerMinute: 100_000,
        conversationCostCapUsd: 100_000,
      },
    ]);
    await client.query(
      `insert into tools (id, tenant_id, name, description, parameters, target, timeout_ms, secret)
       values ($1, 'bench-tools', 'order_status', 'Looks up an order.', $2, $3, 5000, 'tsec_bench')`,
      [
        crypto.randomUUID(),
        JSON.stringify({
          type: "object",
          properties: { order_id: { type: "string" } },
          required: ["order_id"],
        }),
        JSON.stringify({ kind: "https", url: toolUrl }),
      ],
    );
    return {
      tools: (await insertKey(client, "bench-tools", "secret", "bench")).key,
      bare: (await insertKey(client, "bench-bare", "secret", "bench")).key,
    };
  } finally {
    await client.end();
  }
}

export const toolsBench: Bench = {
  name: "tools",
  async run(log) {
    const fixtures = await chatFixtures("chatedge_bench_tools");
    const tool = await instantTool();
    const keys = await seed(fixtures.databaseUrl, tool.url);
    const before = new Set(workerdPids());
    const worker = await startBenchWorker(fixtures.databaseUrl, {
      consumers: true,
      bindings: {
        OPENAI_API_KEY: UPSTREAM_KEY,
        OPENAI_BASE_URL: `${fixtures.fake.url}/v1`,
        ...fixtures.redis,
      },
    });
    const pid = workerdPids().find((p) => !before.has(p));
    if (!pid) throw new Error("could not find the chatedge workerd");
    const authOf = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });
    const plainText = "hello there, where is my parcel";
    const content = { bare: plainText, plain: plainText, tool: "hello there, where is my order 1234" };
    const auth = { bare: authOf(keys.bare), plain: authOf(keys.tools), tool: authOf(keys.tools) };

    // A conversation per 10 messages for each target, so history stays small and alike.
    const convs = { bare: { id: "", used: 10 }, plain: { id: "", used: 10 }, tool: { id: "", used: 10 } };
    let failedTools = 0;
    const message = async (target: Target) => {
      const conv = convs[target];
      if (conv.used >= 10) {
        const res = await fetch(`${worker.url}/v1/conversations`, {
          method: "POST",
          headers: auth[target],
          body: "{}",
        });
        if (res.status !== 201) throw new Error(`start: HTTP ${res.status} ${await res.text()}`);
        conv.id = ((await res.json()) as { id: string }).id;
        conv.used = 0;
      }
      conv.used += 1;
      const t = performance.now();
      const res = await fetch(`${worker.url}/v1/conversations/${conv.id}/messages`, {
        method: "POST",
        headers: auth[target],
        body: JSON.stringify({ content: content[target] }),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${target}: HTTP ${res.status} ${text}`);
      // A tool turn whose tool call failed is counted (and reported), not timed as a tool step.
      if (target === "tool" && !text.includes("shipped")) {
        failedTools += 1;
        if (failedTools === 1) log(`a tool call failed: ${text.slice(0, 300)}`);
      }
      return performance.now() - t;
    };
    // What the extra step costs outside the platform: one model call, one tool call.
    const upstreamCall = async () => {
      const t = performance.now();
      const res = await fetch(`${fixtures.fake.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: content.plain }],
        }),
      });
      await res.text();
      return performance.now() - t;
    };
    const toolCall = async () => {
      const t = performance.now();
      await (await fetch(tool.url, { method: "POST", body: "{}" })).text();
      return performance.now() - t;
    };

    const lat = { bare: [] as number[], plain: [] as number[], tool: [] as number[] };
    const cpu = { bare: 0, plain: 0, tool: 0 };
    const direct = { model: [] as number[], tool: [] as number[] };
    log("warming up");
    for (let i = 0; i < 40; i++) {
      await message("bare");
      await message("plain");
      await message("tool");
    }
    await new Promise((r) => setTimeout(r, 2_000));
    for (let n = 1; n <= ROUNDS; n++) {
      for (const target of shuffled<Target>(["bare", "plain", "tool"])) {
        const c0 = cpuMs(pid);
        for (let i = 0; i < PER_ROUND; i++) lat[target].push(await message(target));
        // Settlements and analytics batches count against the target that caused them.
        await new Promise((r) => setTimeout(r, 2_000));
        cpu[target] += cpuMs(pid) - c0;
      }
      for (let i = 0; i < PER_ROUND; i++) {
        direct.model.push(await upstreamCall());
        direct.tool.push(await toolCall());
      }
      log(
        `round ${n}/${ROUNDS}: p50 bare ${round(pct(lat.bare, 0.5), 2)} plain ${round(pct(lat.plain, 0.5), 2)} tool ${round(pct(lat.tool, 0.5), 2)} ms`,
      );
    }
    await worker.stop();
    await tool.close();
    await fixtures.close();

    const messages = ROUNDS * PER_ROUND;
    const p50 = (xs: number[]) => pct(xs, 0.5);
    const outside = p50(direct.model) + p50(direct.tool);
    const stepMs = p50(lat.tool) - p50(lat.plain) - outside;
    const cpuPlain = cpu.plain / messages;
    const cpuBare = cpu.bare / messages;
    const cpuTool = cpu.tool / messages;
    const rows: BenchRow[] = [
      {
        name: "plain turn, tenant without tools",
        metric: "p50 ms c=1",
        value: round(p50(lat.bare)),
        baseline: null,
        ratio: null,
      },
      {
        name: "plain turn, tenant without tools",
        metric: "cpu ms/message",
        value: round(cpuBare),
        baseline: null,
        ratio: null,
      },
      {
        name: "plain turn (conversation API)",
        metric: "p50 ms c=1",
        value: round(p50(lat.plain)),
        baseline: null,
        ratio: null,
      },
      {
        name: "tool turn (2 model calls + 1 tool)",
        metric: "p50 ms c=1",
        value: round(p50(lat.tool)),
        baseline: round(p50(lat.plain)),
        ratio: round(p50(lat.plain) / p50(lat.tool)),
      },
      {
        name: "model call + tool call, direct",
        metric: "p50 ms c=1",
        value: round(outside),
        baseline: null,
        ratio: null,
      },
      {
        name: "tool step, platform's own",
        metric: "p50 ms added c=1",
        value: round(stepMs),
        baseline: null,
        ratio: null,
      },
      {
        name: "plain turn (conversation API)",
        metric: "cpu ms/message",
        value: round(cpuPlain),
        baseline: null,
        ratio: null,
      },
      {
        name: "tool turn (2 model calls + 1 tool)",
        metric: "cpu ms/message",
        value: round(cpuTool),
        baseline: round(cpuPlain),
        ratio: round(cpuPlain / cpuTool),
      },
      {
        name: "tool step, platform's own",
        metric: "cpu ms added",
        value: round(cpuTool - cpuPlain),
        baseline: null,
        ratio: null,
      },
    ];
    rows.push({
      name: "tool turns whose tool call failed",
      metric: "count",
      value: failedTools,
      baseline: null,
      ratio: null,
    });
    return {
      rows,
      notes: {
        rounds: ROUNDS,
        perRound: PER_ROUND,
        method:
          "step latency = p50(tool turn) - p50(plain turn) - p50(direct model call) - p50(direct tool call); step CPU = chatedge workerd CPU per tool turn - per plain turn",
      },
    };
  },
};

if (import.meta.main) {
  const out = await toolsBench.run((m) => console.error(m));
  console.table(out.rows);
}
