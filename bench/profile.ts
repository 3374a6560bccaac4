/**
 * What the profilers (bench/profile-chat.ts, bench/profile-admission.ts) share: a V8 CPU profile
 * of a workerd isolate recorded over its inspector while some work runs, and a report of self and
 * inclusive time per source function, mapped through the bundle's source map. Times are samples
 * times the sampling interval: shares of what was sampled (see `reportProfile`).
 */
import { SourceMap } from "node:module";

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
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The profiler's sampling interval, in microseconds: what one sample stands for in the reports. */
const SAMPLING_US = 100;

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

/**
 * Records the isolate `pick` chooses among the inspector's targets (sampling every 100 us) while
 * `work` runs, and answers its profile.
 */
export async function profileWhile(
  inspectorPort: number,
  pick: (titles: string[]) => number,
  work: () => Promise<void>,
): Promise<Profile> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    title: string;
    webSocketDebuggerUrl: string;
  }[];
  const target = targets[Math.max(0, pick(targets.map((t) => t.title)))];
  if (!target) throw new Error("no inspector target");
  console.log(`inspector targets: ${targets.map((t) => t.title).join(", ")}; profiling ${target.title}`);
  const dt = await devtools(target.webSocketDebuggerUrl);
  await dt.send("Profiler.enable");
  await dt.send("Profiler.setSamplingInterval", { interval: SAMPLING_US });
  await dt.send("Profiler.start");
  await work();
  const { profile } = (await dt.send("Profiler.stop")) as { profile: Profile };
  dt.close();
  return profile;
}

/**
 * Prints self time per file and per function and inclusive time per function, in microseconds
 * per request; frames of `bundle` (the script's URL ends with it) are named through `sourceMap`.
 */
export function reportProfile(
  p: Profile,
  opts: { label: string; requests: number; bundle: string; sourceMap: string },
): void {
  const map = new SourceMap(JSON.parse(opts.sourceMap) as ConstructorParameters<typeof SourceMap>[0]);
  const nameOf = (f: CallFrame): string => {
    if (!f.url.endsWith(opts.bundle)) return `${f.functionName || "(anonymous)"} ${f.url ? "" : "(native)"}`;
    const e = map.findEntry(f.lineNumber, f.columnNumber) as {
      originalSource?: string;
      originalLine?: number;
      name?: string;
    };
    const src = (e.originalSource ?? "?").replace(/^.*?(src|node_modules|bench)\//, "$1/");
    return `${e.name ?? f.functionName ?? "(anonymous)"} ${src}:${(e.originalLine ?? 0) + 1}`;
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Each sample counts as one sampling interval. Not its time delta: on this busy two-core machine
  // the sampler often wakes late (deltas of 2-6 ms where 0.1 ms was asked), and a late sample's
  // delta is mostly time the isolate sat idle before it, which weighting by deltas hands to
  // whatever runs first after a wake (the entry's first line took 30 times its share).
  const perNode = new Map<number, number>();
  for (const s of p.samples) perNode.set(s, (perNode.get(s) ?? 0) + SAMPLING_US);
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
  const per = (us: number) => (us / opts.requests).toFixed(1).padStart(7);
  // Samples the sampler missed are missing from every figure alike: read them as shares.
  console.log(
    `${opts.label}: ${opts.requests} requests, ${p.samples.length} samples; ` +
      `busy ${per(total)} us/request as sampled (idle ${per(idle)}); the sampler kept up ` +
      `${Math.round((100 * p.samples.length * SAMPLING_US) / p.timeDeltas.reduce((a, b) => a + b, 0))}% of the time`,
  );
  console.log("\nself us/request, by file");
  for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(per(v), k);
  console.log("\nself us/request");
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log(per(v), k);
  console.log("\ninclusive us/request");
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 90)) console.log(per(v), k);
}
