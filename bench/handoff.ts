/**
 * Handoff benchmark (#17): operator-to-visitor delivery latency with 100 concurrent live
 * conversations. Each conversation is held by an operator and has its visitor's WebSocket open on
 * the real Conversation object (hibernation API, resume by seq); every round the operator of each
 * conversation sends one message at once (an HTTP POST to the worker, as the REST route does it)
 * and the time until the visitor's socket shows it is measured. Baseline: a bare Durable Object
 * WebSocket echo with the same hops (POST -> worker -> DO RPC -> ws.send), in the same workerd and
 * the same run, rounds interleaved in random order. Drives workerd through Miniflare like
 * bench/admission.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { bundleBenchWorker, cpuMs, pct, round, shuffled, workerdPids } from "./lib.ts";
import type { Bench, BenchRow } from "./types.ts";

const CONVERSATIONS = Number(process.env.BENCH_HANDOFF_CONVERSATIONS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);
const WARMUP_ROUNDS = 3;
/** Messages sent one at a time on one conversation: the latency without contention. */
const SEQUENTIAL = 60;

/** handoff: the real path. echo: the baseline. stored: the echo writing one SQLite row first (a diagnostic). */
type Target = "handoff" | "echo" | "stored";
const TARGETS: Target[] = ["handoff", "echo", "stored"];
const SEND: Record<Target, string> = { handoff: "send", echo: "echo-send", stored: "stored-send" };

/** One target's open sockets and what they received. */
class Sockets {
  readonly pending = new Map<string, (at: number) => void>();
  readonly seqs: Map<string, number[]> = new Map();
  readonly sockets: WebSocket[] = [];

  async open(url: string, id: string, resume: boolean): Promise<void> {
    const ws = new WebSocket(url);
    this.seqs.set(id, []);
    ws.addEventListener("message", (ev) => {
      const at = performance.now();
      const f = JSON.parse(String(ev.data)) as { type: string; seq?: number; content?: string };
      if (f.type !== "entry") return;
      if (f.seq !== undefined) this.seqs.get(id)?.push(f.seq);
      this.pending.get(f.content ?? "")?.(at);
    });
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`socket ${url} failed`)), { once: true });
    });
    if (resume) ws.send(JSON.stringify({ type: "resume", after: 0 }));
    this.sockets.push(ws);
  }

  /** Posts `content` and answers the ms until a socket showed it. */
  async deliver(url: string, content: string): Promise<number> {
    const shown = new Promise<number>((resolve) => this.pending.set(content, resolve));
    const t = performance.now();
    const res = await fetch(url, { method: "POST", body: content });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`${url}: HTTP ${res.status}`);
    const at = await Promise.race([
      shown,
      new Promise<number>((_, reject) =>
        setTimeout(() => reject(new Error(`${content} never arrived`)), 10_000),
      ),
    ]);
    this.pending.delete(content);
    return at - t;
  }

  close() {
    for (const ws of this.sockets) ws.close();
  }
}

export const handoffBench: Bench = {
  name: "handoff",
  async run(log) {
    const script = await bundleBenchWorker("handoff.ts");
    const persist = mkdtempSync(join(tmpdir(), "chatedge-bench-"));
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        modules: [{ type: "ESModule", path: "worker.mjs", contents: script }],
        compatibilityDate: "2026-10-15",
        compatibilityFlags: ["nodejs_compat"],
        durableObjects: {
          CONVERSATION: { className: "Conversation", useSQLite: true },
          ECHO: { className: "Echo", useSQLite: true },
        },
        // The object emits inbox events on every change, as in production: a queue without a consumer here.
        queueProducers: { ANALYTICS_QUEUE: { queueName: "bench-analytics" } },
        durableObjectsPersist: persist,
      }),
    );
    const live: Record<Target, Sockets> = {
      handoff: new Sockets(),
      echo: new Sockets(),
      stored: new Sockets(),
    };
    try {
      const base = (await mf.ready).toString().replace(/\/$/, "");
      const ws = base.replace(/^http/, "ws");
      const pid = workerdPids()[0];
      if (pid === undefined) throw new Error("no workerd child process found");
      const ids = Array.from({ length: CONVERSATIONS }, (_, i) => `conv_bench${String(i).padStart(19, "0")}`);
      log(`workerd at ${base}; ${CONVERSATIONS} conversations taken over, sockets opening`);
      await Promise.all(
        ids.map(async (id) => {
          const res = await fetch(`${base}/start/${id}`, { method: "POST" });
          if (res.status !== 200) throw new Error(`start ${id}: ${res.status} ${await res.text()}`);
          await live.handoff.open(`${ws}/live/${id}`, id, true);
          await live.echo.open(`${ws}/echo-live/${id}`, id, false);
          await live.stored.open(`${ws}/echo-live/s-${id}`, id, false);
        }),
      );
      const lat: Record<Target, number[]> = { handoff: [], echo: [], stored: [] };
      const cpu: Record<Target, number> = { handoff: 0, echo: 0, stored: 0 };
      const perRound: number[] = [];
      let n = 0;
      const round1 = async (t: Target) =>
        Promise.all(
          ids.map((id) =>
            live[t].deliver(`${base}/${SEND[t]}/${t === "stored" ? `s-${id}` : id}`, `m${++n} to ${id}`),
          ),
        );
      for (let r = 0; r < WARMUP_ROUNDS; r++) for (const t of TARGETS) await round1(t);
      for (let r = 1; r <= ROUNDS; r++) {
        const p50: Partial<Record<Target, number>> = {};
        for (const t of shuffled(TARGETS)) {
          const before = cpuMs(pid);
          const l = await round1(t);
          cpu[t] += cpuMs(pid) - before;
          lat[t].push(...l);
          p50[t] = pct(l, 0.5);
        }
        perRound.push((p50.echo ?? 0) / (p50.handoff ?? 1));
        if (r % 5 === 0)
          log(
            `round ${r}/${ROUNDS}: p50 handoff ${round(p50.handoff ?? 0, 2)} ms, echo ${round(p50.echo ?? 0, 2)} ms`,
          );
      }
      // One at a time on the first conversation, interleaved: the cost of one delivery alone.
      const alone: Record<Target, number[]> = { handoff: [], echo: [], stored: [] };
      const first = ids[0] as string;
      for (let i = 0; i < SEQUENTIAL; i++)
        for (const t of shuffled(TARGETS))
          alone[t].push(
            await live[t].deliver(
              `${base}/${SEND[t]}/${t === "stored" ? `s-${first}` : first}`,
              `s${++n} to ${first}`,
            ),
          );
      // Exactly once: every conversation's socket saw seq 1, 2, 3 ... with no gap and no repeat
      // (seq 1 is the takeover's notice).
      const sent = WARMUP_ROUNDS + ROUNDS + 1;
      let broken = 0;
      for (const [id, seqs] of live.handoff.seqs) {
        const expected = sent + (id === first ? SEQUENTIAL : 0);
        if (seqs.join() !== Array.from({ length: expected }, (_, i) => i + 1).join()) broken += 1;
      }
      const messages = CONVERSATIONS * ROUNDS;
      const rows: BenchRow[] = [
        row("operator -> visitor, 100 live", "p50 ms", pct(lat.handoff, 0.5), pct(lat.echo, 0.5)),
        row("operator -> visitor, 100 live", "p99 ms", pct(lat.handoff, 0.99), pct(lat.echo, 0.99)),
        row(
          "operator -> visitor, 100 live",
          "workerd CPU ms per message",
          cpu.handoff / messages,
          cpu.echo / messages,
        ),
        row("operator -> visitor, one at a time", "p50 ms", pct(alone.handoff, 0.5), pct(alone.echo, 0.5)),
        row("operator -> visitor, one at a time", "p99 ms", pct(alone.handoff, 0.99), pct(alone.echo, 0.99)),
        {
          name: "operator -> visitor, 100 live",
          metric: "p50 ratio, median of rounds",
          value: round(pct(perRound, 0.5)),
          baseline: 1,
          ratio: round(pct(perRound, 0.5)),
        },
        // The same handoff figures against the echo that first writes a row: what durability costs.
        row("vs echo + one SQLite write", "p50 ms, 100 live", pct(lat.handoff, 0.5), pct(lat.stored, 0.5)),
        row("vs echo + one SQLite write", "p99 ms, 100 live", pct(lat.handoff, 0.99), pct(lat.stored, 0.99)),
        row(
          "vs echo + one SQLite write",
          "p50 ms, one at a time",
          pct(alone.handoff, 0.5),
          pct(alone.stored, 0.5),
        ),
        row(
          "vs echo + one SQLite write",
          "workerd CPU ms per message",
          cpu.handoff / messages,
          cpu.stored / messages,
        ),
      ];
      return {
        rows,
        notes: {
          conversations: CONVERSATIONS,
          rounds: ROUNDS,
          messagesPerTarget: lat.handoff.length,
          socketsWithGapsOrRepeats: broken,
          p50RatioPerRound: perRound.map((x) => round(x, 3)),
        },
      };
    } finally {
      live.handoff.close();
      live.echo.close();
      live.stored.close();
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    }
  },
};

/** A latency beside its baseline; the ratio reads ">= 1 is at least as good". */
function row(name: string, metric: string, value: number, baseline: number): BenchRow {
  return { name, metric, value: round(value), baseline: round(baseline), ratio: round(baseline / value) };
}
