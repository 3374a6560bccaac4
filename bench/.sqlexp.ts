import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
const src = `
import { DurableObject } from "cloudflare:workers";
import { AdmitInputSchema } from "/work/main/src/admission/types";
export class X extends DurableObject {
  constructor(ctx, env) { super(ctx, env); const s = ctx.storage.sql;
    s.exec("CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, a TEXT, b INTEGER, c INTEGER, d TEXT, e INTEGER, f INTEGER, g INTEGER, h INTEGER, i TEXT, state INTEGER DEFAULT 0)");
    s.exec("CREATE TABLE IF NOT EXISTS conv (id TEXT PRIMARY KEY, nanos INTEGER)"); this.n = 0; }
  run(kind, n) { const s = this.ctx.storage.sql; let x = 0;
    for (let i = 0; i < n; i++) { this.n++;
      if (kind === "insert") s.exec("INSERT INTO t (seq,a,b,c,d,e,f,g,h,i) VALUES (?,?,?,?,?,?,?,?,?,?)", this.n, "abcdef12", 1234567, 7654321, "gpt-4o-mini", 600, 315000, 99999999, 1, "g12");
      else if (kind === "update") s.exec("UPDATE t SET state = state + 1 WHERE seq = 1");
      else if (kind === "upsert") s.exec("INSERT INTO conv (id, nanos) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET nanos = nanos + excluded.nanos", "c-" + (this.n % 5000), 45);
      else if (kind === "select") x += s.exec("SELECT nanos FROM conv WHERE id = ?", "c-" + (this.n % 5000)).toArray().length;
      else if (kind === "selectmiss") x += s.exec("SELECT nanos FROM conv WHERE id = ?", "zz-" + this.n).toArray().length;
      else if (kind === "selectone") x += s.exec("SELECT nanos FROM conv WHERE id = ?", "c-" + (this.n % 5000)).toArray()[0]?.nanos ?? 0;
      else if (kind === "zod") x += AdmitInputSchema.safeParse(INPUT).success ? 1 : 0;
      else if (kind === "ins+3") { s.exec("INSERT INTO t (seq,a,b,c,d,e,f,g,h,i) VALUES (?,?,?,?,?,?,?,?,?,?)", this.n, "abcdef12", 1234567, 7654321, "gpt-4o-mini", 600, 315000, 99999999, 1, "g12");
        s.exec("UPDATE t SET state = 1, b = ?, c = ? WHERE seq = ?", i, i, this.n - 1);
        s.exec("INSERT INTO conv (id, nanos) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET nanos = nanos + excluded.nanos", "c-" + (this.n % 5000), 45);
        s.exec("INSERT INTO conv (id, nanos) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET nanos = nanos + excluded.nanos", "day", 45); }
      else if (kind === "rnd") x += crypto.getRandomValues(new Uint32Array(1))[0];
    } return x; }
}
const INPUT = { tenantId: "bench-tenant", userId: "u1", conversationId: "c-u1", model: "gpt-4o-mini", inputTokens: 100, maxTokens: 500,
  config: { version: 1, rateLimitPerMinute: 1e6, userRateLimitPerMinute: 1e5, monthlyTokenBudget: 1e13, dailyCostBudgetUsd: 1e7, conversationCostCapUsd: 1e5, fallbackModel: "gpt-4o-mini", timezone: "UTC", pricingOverrides: {} },
  global: { gate: "global", limitPerMinute: 1e9 } };
export default { async fetch(req, env) { const u = new URL(req.url); return new Response(String(await env.X.getByName("x").run(u.searchParams.get("k"), Number(u.searchParams.get("n"))))); } };
`;
const out = await build({ stdin: { contents: src, loader: "js", resolveDir: "/work/main" }, bundle: true, format: "esm", platform: "neutral", target: "es2024", write: false, external: ["cloudflare:*", "node:*"], conditions: ["workerd", "worker", "import"], mainFields: ["module", "main"], logLevel: "error" });
const mf = new Miniflare(convertV4MiniflareOptions({ modules: [{ type: "ESModule", path: "w.mjs", contents: out.outputFiles[0]!.text }], compatibilityDate: "2026-10-15", compatibilityFlags: ["nodejs_compat"], durableObjects: { X: { className: "X", useSQLite: true } }, durableObjectsPersist: mkdtempSync(join(tmpdir(), "x-")) }));
const base = (await mf.ready).toString().replace(/\/$/, "");
const pid = Number(execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)]).toString().split("\n").find((l) => l.includes("workerd"))!.trim().split(/\s+/)[0]);
const cpu = () => readdirSync(`/proc/${pid}/task`).reduce((a, t) => a + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]), 0) / 1e3;
const go = async (k: string, n: number, calls: number) => { const a = cpu(); for (let i = 0; i < calls; i++) await (await fetch(`${base}/?k=${k}&n=${n}`)).text(); return (cpu() - a) / calls; };
await go("upsert", 5000, 2); await go("insert", 1000, 2);
const conc = async (k: string, n: number) => { const a = cpu(); let next = 0; await Promise.all(Array.from({ length: 16 }, async () => { while (next < n) { next++; await (await fetch(`${base}/?k=${k}&n=1`)).text(); } })); return (cpu() - a) / n; };
const ks = ["none", "update", "insert", "upsert", "ins+3"];
const acc: Record<string, number[]> = {};
for (let r = 0; r < 9; r++) for (const k of ks) (acc[k] ??= []).push(await conc(k, 1500));
for (const k of ks) console.log(k.padEnd(8), "µs/request (median)", [...acc[k]!].sort((a, b) => a - b)[4]!.toFixed(0));
await mf.dispose();
