/**
 * Chat overhead benchmark: what chatedge adds to a model call, on the OpenAI-compatible path with
 * every feature on (key auth, cached config, admission, settle, the analytics event and its queue
 * consumer) and on the conversation API, beside two baselines measured in the same run: a direct
 * call to the local OpenAI-compatible upstream (local/fake-llm.ts), and a minimal pass-through
 * worker in the same runtime (its own Miniflare, so each workerd's CPU is counted apart).
 * Latency p50/p99 and first-token p50 at concurrency 1, p50/p99 and throughput at 16, and workerd
 * CPU per request. Targets are interleaved in random order round by round: timing here is noisy.
 */
import { randomUUID } from "node:crypto";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import pg from "pg";
import { startFakeLlm } from "../local/fake-llm.ts";
import { migrateDatabase, recreateDatabase } from "../local/migrate.ts";
import { startUpstashBridge } from "../local/upstash-bridge.ts";
import { generateKey, randomToken } from "../src/auth/keys.ts";
import { startBenchWorker } from "./analytics-worker.ts";
import { closedLoop, cpuMs, pct, round, shuffled, workerdPids } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const POSTGRES = process.env.BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
const ROUNDS = Number(process.env.BENCH_CHAT_ROUNDS ?? 6);
const SEQ = 100; // requests per target per round at c=1
const LOADED = 400; // requests per target per round at c=16
const C = 16;
const UPSTREAM_KEY = "sk-bench-upstream";

type Target = "direct" | "passthrough" | "openai" | "conversation";
const ALL: Target[] = ["direct", "passthrough", "openai", "conversation"];
// BENCH_CHAT_SKIP_CONVERSATION=1 measures only the OpenAI path and its baselines (quicker).
const TARGETS =
  process.env.BENCH_CHAT_SKIP_CONVERSATION === "1" ? ALL.filter((t) => t !== "conversation") : ALL;

const PASS_THROUGH = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname, { method: request.method, headers: request.headers, body: request.body });
  },
};`;

async function seedTenant(databaseUrl: string): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await client.query(
      `insert into tenants (id, name, system_prompt, model, monthly_token_budget, rate_limit_per_minute, user_rate_limit_per_minute, conversation_cost_cap_usd)
       values ('bench', 'Bench', 'You help.', 'gpt-4o-mini', 10000000000000, 1000000, 100000, 100000)`,
    );
    const made = await generateKey("secret");
    await client.query(
      "insert into api_keys (id, tenant_id, kind, name, prefix, hash, last4) values ($1, 'bench', 'secret', 'bench', $2, $3, $4)",
      [`key_${randomToken(16)}`, made.prefix, made.hash, made.last4],
    );
    return made.key;
  } finally {
    await client.end();
  }
}

const body = (user: string, stream: boolean) =>
  JSON.stringify({
    model: "gpt-4o-mini",
    user,
    stream,
    messages: [{ role: "user", content: "hello there, where is my order" }],
  });

export const chatBench: Bench = {
  name: "chat",
  async run(log) {
    const databaseUrl = `${POSTGRES}/chatedge_bench_chat`;
    await recreateDatabase(databaseUrl);
    await migrateDatabase(databaseUrl);
    const key = await seedTenant(databaseUrl);
    const fake = await startFakeLlm();
    const bridgeToken = randomUUID();
    const bridge = await startUpstashBridge({
      redisUrl: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
      token: bridgeToken,
    });

    const before = new Set(workerdPids());
    const passMf = new Miniflare(
      convertV4MiniflareOptions({
        log: new Log(LogLevel.ERROR),
        modules: true,
        script: PASS_THROUGH,
        compatibilityDate: "2026-10-15",
        bindings: { UPSTREAM: fake.url },
      }),
    );
    const passUrl = (await passMf.ready).toString().replace(/\/$/, "");
    const passPid = workerdPids().find((p) => !before.has(p));
    before.add(passPid ?? -1);
    const worker = await startBenchWorker(databaseUrl, {
      consumers: true,
      bindings: {
        OPENAI_API_KEY: UPSTREAM_KEY,
        OPENAI_BASE_URL: `${fake.url}/v1`,
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: bridgeToken,
      },
    });
    const chatPid = workerdPids().find((p) => !before.has(p));
    if (!passPid || !chatPid) throw new Error("could not find the workerd processes");
    log(`upstream ${fake.url}, pass-through ${passUrl}, chatedge ${worker.url}`);

    const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    // Conversations are reused for 20 messages each, so history stays small and comparable.
    const convs: string[] = [];
    const conversation = async (i: number) => {
      const slot = Math.floor(i / 20) % 500;
      if (i % 20 === 0 || !convs[slot]) {
        const res = await fetch(`${worker.url}/v1/conversations`, {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ user: `c${slot}` }),
        });
        convs[slot] = ((await res.json()) as { id: string }).id;
      }
      return convs[slot] as string;
    };

    let seq = 0;
    /** One request to a target; answers [total ms, first-token ms]. */
    const hit = async (target: Target, stream: boolean): Promise<[number, number]> => {
      seq += 1;
      let url: string;
      let init: RequestInit;
      if (target === "direct" || target === "passthrough") {
        url = `${target === "direct" ? fake.url : passUrl}/v1/chat/completions`;
        init = {
          method: "POST",
          headers: { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" },
          body: body(`u${seq % 1000}`, stream),
        };
      } else if (target === "openai") {
        url = `${worker.url}/v1/chat/completions`;
        init = { method: "POST", headers: auth, body: body(`u${seq % 1000}`, stream) };
      } else {
        url = `${worker.url}/v1/conversations/${await conversation(seq)}/messages`;
        init = {
          method: "POST",
          headers: auth,
          body: JSON.stringify({ content: "hello there, where is my order", stream }),
        };
      }
      const t = performance.now();
      const res = await fetch(url, init);
      if (res.status !== 200) throw new Error(`${target}: HTTP ${res.status} ${await res.text()}`);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let first = Number.NaN;
      for (;;) {
        const { done } = await reader.read();
        if (Number.isNaN(first)) first = performance.now() - t;
        if (done) break;
      }
      return [performance.now() - t, first];
    };

    const lat1: Record<Target, number[]> = { direct: [], passthrough: [], openai: [], conversation: [] };
    const first1: Record<Target, number[]> = { direct: [], passthrough: [], openai: [], conversation: [] };
    const lat16: Record<Target, number[]> = { direct: [], passthrough: [], openai: [], conversation: [] };
    const wall16: Record<Target, { ms: number; n: number }> = {
      direct: { ms: 0, n: 0 },
      passthrough: { ms: 0, n: 0 },
      openai: { ms: 0, n: 0 },
      conversation: { ms: 0, n: 0 },
    };
    const cpu: Record<Target, { ms: number; n: number }> = {
      direct: { ms: 0, n: 0 },
      passthrough: { ms: 0, n: 0 },
      openai: { ms: 0, n: 0 },
      conversation: { ms: 0, n: 0 },
    };
    const pidOf = (t: Target) => (t === "passthrough" ? passPid : t === "direct" ? undefined : chatPid);

    log("warming up");
    for (const t of TARGETS) await closedLoop(200, 4, () => hit(t, false).then((r) => r[0]));
    // Let queued analytics batches drain so they do not land in the first round's CPU.
    await new Promise((r) => setTimeout(r, 2_500));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of shuffled(TARGETS)) {
        const pid = pidOf(t);
        const c0 = pid ? cpuMs(pid) : 0;
        for (let i = 0; i < SEQ; i++) lat1[t].push((await hit(t, false))[0]);
        for (let i = 0; i < SEQ / 2; i++) first1[t].push((await hit(t, true))[1]);
        const loaded = await closedLoop(LOADED, C, () => hit(t, false).then((r) => r[0]));
        lat16[t].push(...loaded.lat);
        wall16[t].ms += loaded.ms;
        wall16[t].n += LOADED;
        // Background work (settlements, queue batches) counts against the target that caused it.
        await new Promise((r) => setTimeout(r, 2_200));
        if (pid) {
          cpu[t].ms += cpuMs(pid) - c0;
          cpu[t].n += SEQ + SEQ / 2 + LOADED;
        }
      }
      log(
        `round ${round}/${ROUNDS}: c=1 p50 direct ${round3(pct(lat1.direct, 0.5))} pass ${round3(pct(lat1.passthrough, 0.5))} openai ${round3(pct(lat1.openai, 0.5))} conv ${round3(pct(lat1.conversation, 0.5))} ms`,
      );
    }

    await worker.stop();
    await passMf.dispose();
    await Promise.all([fake.close(), bridge.close()]);

    const p50 = (t: Target) => pct(lat1[t], 0.5);
    const p99 = (t: Target) => pct(lat1[t], 0.99);
    const cpuPer = (t: Target) => (cpu[t].n ? cpu[t].ms / cpu[t].n : Number.NaN);
    const rps = (t: Target) => (wall16[t].n / wall16[t].ms) * 1000;
    const rows: BenchRow[] = [
      {
        name: "upstream direct",
        metric: "p50 ms c=1",
        value: round(p50("direct")),
        baseline: null,
        ratio: null,
      },
      {
        name: "pass-through worker",
        metric: "p50 ms c=1",
        value: round(p50("passthrough")),
        baseline: round(p50("direct")),
        ratio: round(p50("direct") / p50("passthrough")),
      },
      {
        name: "pass-through worker",
        metric: "cpu ms/request",
        value: round(cpuPer("passthrough")),
        baseline: null,
        ratio: null,
      },
    ];
    for (const t of TARGETS.filter((x) => x === "openai" || x === "conversation")) {
      const name = t === "openai" ? "chat (OpenAI path)" : "chat (conversation API)";
      rows.push(
        {
          name,
          metric: "p50 ms c=1",
          value: round(p50(t)),
          baseline: round(p50("passthrough")),
          ratio: round(p50("passthrough") / p50(t)),
        },
        {
          name,
          metric: "p50 ms added over pass-through c=1",
          value: round(p50(t) - p50("passthrough")),
          baseline: null,
          ratio: null,
        },
        {
          name,
          metric: "p99 ms c=1",
          value: round(p99(t)),
          baseline: round(p99("passthrough")),
          ratio: round(p99("passthrough") / p99(t)),
        },
        {
          name,
          metric: "first-token p50 ms c=1",
          value: round(pct(first1[t], 0.5)),
          baseline: round(pct(first1.passthrough, 0.5)),
          ratio: round(pct(first1.passthrough, 0.5) / pct(first1[t], 0.5)),
        },
        {
          name,
          metric: "p50 ms c=16",
          value: round(pct(lat16[t], 0.5)),
          baseline: round(pct(lat16.passthrough, 0.5)),
          ratio: round(pct(lat16.passthrough, 0.5) / pct(lat16[t], 0.5)),
        },
        {
          name,
          metric: "p99 ms c=16",
          value: round(pct(lat16[t], 0.99)),
          baseline: round(pct(lat16.passthrough, 0.99)),
          ratio: round(pct(lat16.passthrough, 0.99) / pct(lat16[t], 0.99)),
        },
        {
          name,
          metric: "req/s c=16",
          value: round(rps(t), 0),
          baseline: round(rps("passthrough"), 0),
          ratio: round(rps(t) / rps("passthrough")),
        },
        {
          name,
          metric: "cpu ms/request",
          value: round(cpuPer(t)),
          baseline: round(cpuPer("passthrough")),
          ratio: round(cpuPer("passthrough") / cpuPer(t)),
        },
      );
    }
    return {
      rows,
      notes: {
        rounds: ROUNDS,
        perRound: { c1: SEQ, c1Streams: SEQ / 2, c16: LOADED },
        targets: "OpenAI path p50 added over pass-through < 2 ms at c=1; CPU per request < 2x pass-through",
      },
    };
  },
};

const round3 = (n: number) => round(n, 2);

if (import.meta.main) {
  const out = await chatBench.run((m) => console.error(m));
  console.table(out.rows);
}
