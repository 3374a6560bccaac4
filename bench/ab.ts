/**
 * `npm run bench:ab -- <git revision> [admission|openai|conversation|widget|start|history|openai-history|paced|paced-conversation ...]`:
 * the chat path's CPU (or admission's, as bench/admission.ts runs it), this tree
 * against an earlier build, side by side. A change of a tenth of a millisecond is smaller than
 * what this shared machine drifts between two runs of the same code, so whole runs taken one after
 * the other cannot tell it; here both builds run at once (two workerd processes, each with its own
 * database, fake upstream and relay), and the same short slices of work go to each in random
 * order, many times. Each slice's CPU (schedstat, per process) is paired with the other build's
 * slice next to it; the drift cancels out of the pairs.
 *
 * The earlier build is checked out once under .cache/ab/<sha> (a git worktree sharing this
 * node_modules; inside the tree, because Miniflare resolves the bundle's path from here) and
 * bundled with its own bench/chat.ts. Prints, per target, both builds' median CPU a request, the
 * median of the paired differences, how many slices the new build was lower in, and the sign
 * test's two-sided p for that count. Each build's chat worker runs a control beside it, in its
 * own process: the pass-through, sent the same OpenAI request. Its pairs show what the two
 * processes differ by, and each short chat target is printed again less it ("openai c=16 -
 * control"), as admit is less the counter. Builds from before 2026-12-07 have no control.
 *
 * BENCH_AB_NEW_TMPDIR=/dev/shm (with HEAD as the revision: the same code twice) keeps the new
 * build's Durable Object storage on tmpfs, where an fsync costs next to nothing: what the local
 * disk's commits cost the measured CPU (Miniflare keeps storage under the temporary directory).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { hit as admissionHit } from "./admission.ts";
import { type chatSetup as ChatSetup, openConversation } from "./chat.ts";
import {
  closedLoop,
  cpuMs,
  FULL_HISTORY_TURNS,
  LONG_MESSAGE,
  longHistoryMessages,
  pacedAnswer,
  pct,
  round,
  shuffled,
  workerdPids,
} from "./lib.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const SLICES = Number(process.env.BENCH_AB_SLICES ?? 40);
const C = 16;
const PER_CONVERSATION = 20; // messages before a slot starts a new conversation, as in bench/chat.ts
const GAP_MS = 200; // after each slice, so what it left running lands in its own process's count

const [rev, ...asked] = process.argv.slice(2);
if (!rev) {
  console.error(
    "usage: npm run bench:ab -- <git revision> [admission|openai|conversation|widget|start|history|openai-history|paced|paced-conversation ...]",
  );
  process.exit(2);
}
const KINDS = [
  "admission",
  "openai",
  "conversation",
  "widget",
  "start",
  "history",
  "openai-history",
  "paced",
  "paced-conversation",
];
const kinds = asked.length > 0 ? asked : ["openai", "conversation"];
for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`unknown target ${k}`);
/** The paced targets' answers: chunks, each in a network read of its own (bench/lib.ts). */
const PACED_CHUNKS = 100;
/** Conversations the history target holds, each filled to the history budget. */
const FULL_CONVERSATIONS = 10;

/** The earlier build's tree, checked out once and reused. */
function checkout(revision: string): string {
  const sha = execFileSync("git", ["rev-parse", "--verify", `${revision}^{commit}`], { cwd: root })
    .toString()
    .trim();
  const dir = `${root}.cache/ab/${sha}`;
  if (!existsSync(dir)) {
    mkdirSync(`${root}.cache/ab`, { recursive: true });
    execFileSync("git", ["worktree", "add", "--detach", dir, sha], { cwd: root, stdio: "ignore" });
    symlinkSync(`${root}node_modules`, `${dir}/node_modules`);
  }
  return dir;
}

const oldRoot = checkout(rev);
const builds: { name: "old" | "new"; bench: string }[] = [
  { name: "old", bench: `${oldRoot}/bench` },
  { name: "new", bench: fileURLToPath(new URL(".", import.meta.url)) },
];

const completion = JSON.stringify({
  model: "gpt-4o-mini",
  user: "ab",
  messages: [{ role: "user", content: "hello there, where is my order" }],
});
const message = JSON.stringify({ content: "hello there, where is my order" });

/** One slice of one target on one build: its work, and how many requests it sends. */
interface Slice {
  target: string;
  build: "old" | "new";
  pid: number;
  requests: number;
  run(): Promise<unknown>;
}

const slices: Slice[] = [];
const stops: Array<() => Promise<void>> = [];
const tmpdir = process.env.TMPDIR;
for (const b of builds) {
  if (kinds.includes("admission")) {
    // The admission bench's worker (bench/admission.ts) of each build: its admit beside the bare
    // counter, which both builds run alike (a control: its pairs should split evenly).
    const lib: typeof import("./lib.ts") = await import(`${b.bench}/lib.ts`);
    const bench: typeof import("./admission.ts") = await import(`${b.bench}/admission.ts`);
    const seen = new Set(workerdPids());
    const persist = mkdtempSync(join(os.tmpdir(), "chatedge-ab-"));
    const mf = new Miniflare(
      convertV4MiniflareOptions(
        bench.admissionWorkerOptions(await lib.bundleBenchWorker("admission.ts"), persist),
      ),
    );
    const base = (await mf.ready).toString().replace(/\/$/, "");
    stops.push(async () => {
      await mf.dispose();
      rmSync(persist, { recursive: true, force: true });
    });
    const pid = workerdPids().find((p) => !seen.has(p));
    if (!pid) throw new Error(`${b.name}: no admission workerd process`);
    for (const target of ["admit", "counter"] as const) {
      slices.push({
        target: `${target} c=16`,
        build: b.name,
        pid,
        requests: 25 * C,
        run: () => closedLoop(25 * C, C, () => admissionHit(base, target)),
      });
    }
  }
  if (!kinds.some((k) => k !== "admission")) continue;
  const seen = new Set(workerdPids());
  // Miniflare reads the temporary directory when it starts: only the new build's storage moves.
  const newTmp = b.name === "new" ? process.env.BENCH_AB_NEW_TMPDIR : undefined;
  if (newTmp) process.env.TMPDIR = newTmp;
  else if (tmpdir === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = tmpdir;
  const { chatSetup, UPSTREAM_KEY }: { chatSetup: typeof ChatSetup; UPSTREAM_KEY?: string } = await import(
    `${b.bench}/chat.ts`
  );
  // A build whose bench runs a control (the pass-through in the chat worker's process) gets one.
  const { fixtures, keys, worker } = await chatSetup(`chatedge_ab_${b.name}`, { control: true });
  stops.push(async () => {
    await worker.stop();
    await fixtures.close();
  });
  const pid = workerdPids().find((p) => !seen.has(p));
  if (!pid) throw new Error(`${b.name}: no workerd process`);
  const headers = { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" };
  const post = async (
    path: string,
    body: string,
    status = 200,
    as: Record<string, string> = headers,
    base = worker.url,
  ) => {
    const res = await fetch(`${base}${path}`, { method: "POST", headers: as, body });
    const text = await res.text();
    if (res.status !== status) throw new Error(`${b.name} ${path}: HTTP ${res.status} ${text}`);
    return text;
  };
  let users = 0;
  const open = (kind: "conversation" | "widget") => openConversation(worker.url, keys, kind, users++);
  const start = async () => (await open("conversation")).id;
  const add = (target: string, requests: number, run: () => Promise<unknown>) =>
    slices.push({ target, build: b.name, pid, requests, run });
  const controlUrl = worker.controlUrl;
  if (controlUrl && UPSTREAM_KEY) {
    // The same request to the pass-through in the same process: the same code in both builds, so
    // what its pairs differ by is the two processes, not the change (reported as "... - control").
    const upstreamHeaders = { authorization: `Bearer ${UPSTREAM_KEY}`, "content-type": "application/json" };
    const control = () =>
      post("/v1/chat/completions", completion, 200, upstreamHeaders, controlUrl).then(() => 0);
    add("control c=16", 5 * C, () => closedLoop(5 * C, C, control));
    add("control c=1", 20, () => closedLoop(20, 1, control));
  }
  if (kinds.includes("openai")) {
    add("openai c=16", 5 * C, () =>
      closedLoop(5 * C, C, () => post("/v1/chat/completions", completion).then(() => 0)),
    );
    add("openai c=1", 20, () =>
      closedLoop(20, 1, () => post("/v1/chat/completions", completion).then(() => 0)),
    );
  }
  for (const kind of ["conversation", "widget"] as const) {
    if (!kinds.includes(kind)) continue;
    // One conversation per client, PER_CONVERSATION messages each before a new start: the starts
    // count, one in PER_CONVERSATION messages, as a visitor's would.
    let conversations: Array<{ id: string; headers: Record<string, string> }> = [];
    let sent = PER_CONVERSATION;
    add(`${kind} c=16`, 5 * C, async () => {
      if (sent >= PER_CONVERSATION) {
        conversations = await Promise.all(Array.from({ length: C }, () => open(kind)));
        sent = 0;
      }
      sent += 5;
      await Promise.all(
        conversations.map(async (conv) => {
          for (let i = 0; i < 5; i++)
            await post(`/v1/conversations/${conv.id}/messages`, message, 200, conv.headers);
        }),
      );
    });
    let one: { id: string; headers: Record<string, string> } = { id: "", headers };
    let sentOne = PER_CONVERSATION;
    add(`${kind} c=1`, 20, async () => {
      for (let i = 0; i < 20; i++) {
        if (sentOne >= PER_CONVERSATION) {
          one = await open(kind);
          sentOne = 0;
        }
        sentOne += 1;
        await post(`/v1/conversations/${one.id}/messages`, message, 200, one.headers);
      }
    });
  }
  if (kinds.includes("start")) {
    // Conversation starts alone, one after another: the conversation targets pay one in
    // PER_CONVERSATION messages, which their pairs cannot tell from the messages' own cost.
    add("start c=1", 10, () => closedLoop(10, 1, () => start().then(() => 0)));
  }
  if (kinds.includes("history")) {
    // A long message into conversations whose history fills the budget (nine such turns), one
    // after another: what a message costs when the history is as long as it gets. The first run
    // of the slice, the warm-up, fills them.
    const long = JSON.stringify({ content: LONG_MESSAGE });
    const full: string[] = [];
    add("history c=1", FULL_CONVERSATIONS, async () => {
      while (full.length < FULL_CONVERSATIONS) {
        const id = await start();
        for (let i = 0; i < FULL_HISTORY_TURNS; i++) await post(`/v1/conversations/${id}/messages`, long);
        full.push(id);
      }
      for (const id of full) await post(`/v1/conversations/${id}/messages`, long);
    });
  }
  if (kinds.includes("openai-history")) {
    // The OpenAI path sent the same history in the request, as a stateless client sends it.
    const withHistory = JSON.stringify({ model: "gpt-4o-mini", user: "ab", messages: longHistoryMessages() });
    add("openai-history c=1", FULL_CONVERSATIONS, () =>
      closedLoop(FULL_CONVERSATIONS, 1, () => post("/v1/chat/completions", withHistory).then(() => 0)),
    );
  }
  if (kinds.includes("paced")) {
    // A streamed answer sent as a model streams it: every chunk wakes the worker on its own.
    const paced = JSON.stringify({
      model: "gpt-4o-mini",
      user: "ab",
      stream: true,
      messages: [{ role: "user", content: `hello there ${pacedAnswer(PACED_CHUNKS)}` }],
    });
    add("paced c=1", 2, () => closedLoop(2, 1, () => post("/v1/chat/completions", paced).then(() => 0)));
  }
  if (kinds.includes("paced-conversation")) {
    // The same on the conversation API, a new conversation for each, so no history grows.
    const paced = JSON.stringify({ content: `hello there ${pacedAnswer(PACED_CHUNKS)}`, stream: true });
    add("paced-conv c=1", 2, async () => {
      for (let i = 0; i < 2; i++) await post(`/v1/conversations/${await start()}/messages`, paced);
    });
  }
}

// The chat targets' control pairs only when both builds run it (an earlier tree's bench may not).
const controlBuilds = new Set(slices.filter((s) => s.target.startsWith("control ")).map((s) => s.build));
if (controlBuilds.size === 1) {
  console.error(`ab: ${[...controlBuilds][0]} build alone runs the chat control; left out`);
  slices.splice(0, slices.length, ...slices.filter((s) => !s.target.startsWith("control ")));
}

/** Two-sided sign test: the chance of a split at least this uneven if neither build were lower. */
function signTestP(lower: number, n: number): number {
  const k = Math.min(lower, n - lower);
  let tail = 0;
  let choose = 1; // C(n, 0)
  for (let i = 0; i <= k; i++) {
    tail += choose;
    choose = (choose * (n - i)) / (i + 1);
  }
  return Math.min(1, (2 * tail) / 2 ** n);
}

try {
  for (const s of slices) await s.run(); // warm-up: both isolates compiled, caches filled
  await new Promise((r) => setTimeout(r, 2_000));
  const cpu = new Map<string, number[]>();
  for (let i = 0; i < SLICES; i++) {
    for (const s of shuffled(slices)) {
      const before = cpuMs(s.pid);
      await s.run();
      await new Promise((r) => setTimeout(r, GAP_MS));
      const key = `${s.target}|${s.build}`;
      cpu.set(key, [...(cpu.get(key) ?? []), (cpuMs(s.pid) - before) / s.requests]);
    }
    if ((i + 1) % 10 === 0) console.error(`ab: ${i + 1}/${SLICES} slices`);
  }
  console.log(`CPU ms a request, this tree against ${rev} (${SLICES} slices each)`);
  const diffs = new Map<string, number[]>();
  const report = (label: string, diff: number[], old?: number[], now?: number[]) => {
    const lower = diff.filter((d) => d < 0).length;
    console.log(
      `${label.padEnd(26)} ${old && now ? `old ${round(pct(old, 0.5))}  new ${round(pct(now, 0.5))}  ` : ""}` +
        `new - old (median of pairs) ${round(pct(diff, 0.5))}  new lower in ${lower}/${diff.length}  ` +
        `sign test p ${round(signTestP(lower, diff.length), 3)}`,
    );
  };
  for (const target of [...new Set(slices.map((s) => s.target))]) {
    const old = cpu.get(`${target}|old`) ?? [];
    const now = cpu.get(`${target}|new`) ?? [];
    const diff = now.map((x, i) => x - (old[i] ?? Number.NaN));
    diffs.set(target, diff);
    report(target, diff, old, now);
  }
  // A control is the same code in both builds: what its pairs differ by is the two processes, not
  // the change. A target's pairs less its control's of the same round take that out: admit's less
  // the counter's, a short chat target's less the pass-through's in its process at the same
  // concurrency (when both builds run that control).
  const controlled = (target: string, control: string, label: string) => {
    const d = diffs.get(target);
    const c = diffs.get(control);
    if (d && c)
      report(
        label,
        d.map((x, i) => x - (c[i] ?? Number.NaN)),
      );
  };
  controlled("admit c=16", "counter c=16", "admit - control");
  // Only the short requests the control is like: a long stream or history differs in kind.
  for (const kind of ["openai", "conversation", "widget"])
    for (const c of ["c=16", "c=1"]) controlled(`${kind} ${c}`, `control ${c}`, `${kind} ${c} - control`);
} finally {
  for (const stop of stops) await stop();
}
