import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
const src = `
import { DurableObject } from "cloudflare:workers";
export class X extends DurableObject {
  ping() { return 1; }
  obj(input) { return RESULT; }
  json(s) { JSON.parse(s); return JSON.stringify(RESULT); }
}
const INPUT = { tenantId: "bench-tenant", userId: "u1", conversationId: "c-u1", model: "gpt-4o-mini", inputTokens: 100, maxTokens: 500,
  config: { version: 1, rateLimitPerMinute: 1e6, userRateLimitPerMinute: 1e5, monthlyTokenBudget: 1e13, dailyCostBudgetUsd: 1e7, conversationCostCapUsd: 1e5, fallbackModel: "gpt-4o-mini", timezone: "UTC", pricingOverrides: {} },
  global: { gate: "global", limitPerMinute: 1e9 }, settle: [{ reservationId: "rsv_1_deadbeef", usage: { model: "gpt-4o-mini", inputTokens: 100, outputTokens: 200 } }] };
const RESULT = {"ok":true,"reservationId":"rsv_1_962ad478","model":"gpt-4o-mini","maxTokens":500,"requestedModel":"gpt-4o-mini","requestedMaxTokens":500,"degraded":[],"budget":null,"reservedTokens":600,"reservedCostUsd":0.000315,"expiresAt":1894709400000,"rateLimit":{"level":"user","limit":30,"remaining":29,"resetSeconds":60}};
export default { async fetch(req, env) { const k = new URL(req.url).searchParams.get("k"); const x = env.X.getByName("x");
  const r = k === "ping" ? await x.ping() : k === "obj" ? await x.obj(INPUT) : k === "json" ? await x.json(JSON.stringify(INPUT)) : 0;
  return new Response(typeof r === "string" ? r : JSON.stringify(r)); } };
`;
const out = await build({ stdin: { contents: src, loader: "js", resolveDir: "/work/main" }, bundle: true, format: "esm", platform: "neutral", write: false, external: ["cloudflare:*"], logLevel: "error" });
const mf = new Miniflare(convertV4MiniflareOptions({ modules: [{ type: "ESModule", path: "w.mjs", contents: out.outputFiles[0]!.text }], compatibilityDate: "2026-10-15", durableObjects: { X: { className: "X", useSQLite: true } }, durableObjectsPersist: mkdtempSync(join(tmpdir(), "x-")) }));
const base = (await mf.ready).toString().replace(/\/$/, "");
const pid = Number(execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)]).toString().split("\n").find((l) => l.includes("workerd"))!.trim().split(/\s+/)[0]);
const cpu = () => readdirSync(`/proc/${pid}/task`).reduce((a, t) => a + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]), 0) / 1e3;
const conc = async (k: string, n: number) => { const a = cpu(); let next = 0; await Promise.all(Array.from({ length: 16 }, async () => { while (next < n) { next++; const r = await fetch(`${base}/?k=${k}`); if (r.status !== 200) throw new Error(await r.text()); await r.text(); } })); return (cpu() - a) / n; };
const ks = ["none", "ping", "obj", "json"];
for (const k of ks) await conc(k, 2000);
const acc: Record<string, number[]> = {};
for (let r = 0; r < 9; r++) for (const k of ks) (acc[k] ??= []).push(await conc(k, 1500));
for (const k of ks) console.log(k.padEnd(6), "µs/request (median)", [...acc[k]!].sort((a, b) => a - b)[4]!.toFixed(0));
await mf.dispose();
