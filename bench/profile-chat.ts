/**
 * Where the chat path's CPU goes: runs the real worker (as bench/chat.ts does) with workerd's
 * inspector open, sends requests to one path, and records a V8 CPU profile of the worker's isolate
 * (its Durable Objects included). Prints self and inclusive time per source function (mapped
 * through the bundle's source map) and writes the .cpuprofile for DevTools.
 *
 *   bash scripts/node.sh node bench/profile-chat.ts [openai|conversation|widget|stream] [requests]
 *
 * `stream` sends the OpenAI path streamed answers of 500 chunks: per-chunk work, in us per stream.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";
import { chatSetup, ORIGIN } from "./chat.ts";

const target = (process.argv[2] ?? "openai") as "openai" | "conversation" | "widget" | "stream";
const REQUESTS = Number(process.argv[3] ?? (target === "stream" ? 200 : 1_500));
const WARMUP = target === "stream" ? 40 : 300;
const INSPECTOR_PORT = 9_339;
const root = fileURLToPath(new URL("..", import.meta.url));

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One DevTools protocol session over the inspector's WebSocket. */
async function devtools(wsUrl: string) {
  const ws = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("open", () => resolve(), { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot open ${wsUrl}`)), { once: true });
  });
  let next = 1;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  });
  return {
    send(method: string, params: object = {}): Promise<unknown> {
      const id = next++;
      ws.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve) => waiting.set(id, resolve));
    },
    close: () => ws.close(),
  };
}

const { fixtures, keys, worker } = await chatSetup("chatedge_profile_chat", {
  inspectorPort: INSPECTOR_PORT,
});

let slot = 0;
let sent = 0;
let session: { id: string; headers: Record<string, string> } | undefined;
async function one(): Promise<void> {
  if (target === "openai" || target === "stream") {
    const long = target === "stream";
    const res = await fetch(`${worker.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "gpt-4o-mini",
        user: `u${sent % 50}`,
        stream: long,
        messages: [
          { role: "user", content: `hello there, where is my order${long ? " [[words:500]]" : ""}` },
        ],
      }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  } else {
    // 20 messages per conversation, as the bench does; the widget's from its own address.
    if (!session || sent % 20 === 0) {
      slot += 1;
      const headers: Record<string, string> =
        target === "conversation"
          ? { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" }
          : {
              authorization: `Bearer ${keys.publishable}`,
              "content-type": "application/json",
              origin: ORIGIN,
              "cf-connecting-ip": `10.9.${(slot >> 8) & 255}.${slot & 255}`,
            };
      const res = await fetch(`${worker.url}/v1/conversations`, {
        method: "POST",
        headers,
        body: JSON.stringify(target === "conversation" ? { user: `c${slot}` } : {}),
      });
      const out = (await res.json()) as { id: string; visitor_token?: string };
      session = {
        id: out.id,
        headers: out.visitor_token ? { ...headers, "x-visitor-token": out.visitor_token } : headers,
      };
    }
    const res = await fetch(`${worker.url}/v1/conversations/${session.id}/messages`, {
      method: "POST",
      headers: session.headers,
      body: JSON.stringify({ content: "hello there, where is my order" }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  }
  sent += 1;
}

try {
  for (let i = 0; i < WARMUP; i++) await one();
  const targets = (await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json`)).json()) as {
    id: string;
    title: string;
    webSocketDebuggerUrl: string;
  }[];
  const main = targets.find((t) => !t.title.includes("pass")) ?? targets[0];
  if (!main) throw new Error("no inspector target");
  const dt = await devtools(main.webSocketDebuggerUrl);
  await dt.send("Profiler.enable");
  await dt.send("Profiler.setSamplingInterval", { interval: 100 });
  await dt.send("Profiler.start");
  for (let i = 0; i < REQUESTS; i++) await one();
  const { profile } = (await dt.send("Profiler.stop")) as { profile: Profile };
  dt.close();
  const file = `${root}.cache/profile-${target}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  report(profile, REQUESTS);
  console.log(`\n${file}`);
} finally {
  await worker.stop();
  await fixtures.close();
}

/** Self and inclusive microseconds per request for each source function. */
function report(p: Profile, requests: number): void {
  const map = new SourceMap(
    JSON.parse(readFileSync(`${root}.cache/bench-worker/index.js.map`, "utf8")) as ConstructorParameters<
      typeof SourceMap
    >[0],
  );
  const nameOf = (f: CallFrame): string => {
    if (!f.url.endsWith("index.js")) return `${f.functionName || "(anonymous)"} ${f.url ? "" : "(native)"}`;
    const e = map.findEntry(f.lineNumber, f.columnNumber) as {
      originalSource?: string;
      originalLine?: number;
      name?: string;
    };
    const src = (e.originalSource ?? "?").replace(/^.*?(src|node_modules)\//, "$1/");
    return `${e.name ?? f.functionName ?? "(anonymous)"} ${src}:${(e.originalLine ?? 0) + 1}`;
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const perNode = new Map<number, number>();
  for (const [i, s] of p.samples.entries()) perNode.set(s, (perNode.get(s) ?? 0) + (p.timeDeltas[i] ?? 0));
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of perNode) {
    const node = byId.get(id) as ProfileNode;
    if (node.callFrame.functionName === "(idle)") {
      idle += us;
      continue;
    }
    total += us;
    const name = nameOf(node.callFrame);
    self.set(name, (self.get(name) ?? 0) + us);
    const file = name.split(" ").at(-1)?.replace(/:\d+$/, "") ?? "?";
    files.set(file, (files.get(file) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = nameOf((byId.get(cur) as ProfileNode).callFrame);
      if (!seen.has(k)) incl.set(k, (incl.get(k) ?? 0) + us);
      seen.add(k);
    }
  }
  const per = (us: number) => (us / requests).toFixed(1).padStart(7);
  console.log(`${target}: ${requests} requests, busy ${per(total)} us/request (idle ${per(idle)})`);
  console.log("\nself us/request, by file");
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(per(v), k);
  console.log("\nself us/request");
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(per(v), k);
  console.log("\ninclusive us/request");
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 80)) console.log(per(v), k);
}
