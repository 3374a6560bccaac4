/**
 * Where the chat path's CPU goes: runs the real worker (as bench/chat.ts does) with workerd's
 * inspector open, sends requests to one path, and records a V8 CPU profile of the worker's isolate
 * (its Durable Objects included). Prints self and inclusive time per source function (mapped
 * through the bundle's source map) and writes the .cpuprofile for DevTools.
 *
 *   bash scripts/node.sh node bench/profile-chat.ts [openai|conversation|widget|stream|paced|paced-conversation|history|openai-history] [requests]
 *
 * `stream` sends the OpenAI path streamed answers of 500 chunks: per-chunk work, in us per stream;
 * `paced` answers of 200 chunks sent one at a time, 1 ms apart, as a model streams them;
 * `paced-conversation` the same on the conversation API, a conversation for each.
 * `history` sends long messages into conversations whose history fills the 6,000-token budget;
 * `openai-history` sends the OpenAI path the same history in the request.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chatSetup, openConversation } from "./chat.ts";
import { FULL_HISTORY_TURNS, LONG_MESSAGE, longHistoryMessages, pacedAnswer } from "./lib.ts";
import { profileWhile, reportProfile } from "./profile.ts";

const target = (process.argv[2] ?? "openai") as
  | "openai"
  | "conversation"
  | "widget"
  | "stream"
  | "paced"
  | "paced-conversation"
  | "history"
  | "openai-history";
const long = target === "stream" || target.startsWith("paced");
const REQUESTS = Number(process.argv[3] ?? (long || target.includes("history") ? 200 : 1_500));
const WARMUP = long || target.includes("history") ? 40 : 300;
/** The answer's length (and pace) on the streamed targets: `paced` gets one event per read, 1 ms apart. */
const LENGTHS: Partial<Record<typeof target, string>> = {
  stream: " [[words:500]]",
  paced: ` ${pacedAnswer(200)}`,
};
const INSPECTOR_PORT = 9_339;
const root = fileURLToPath(new URL("..", import.meta.url));

const { fixtures, keys, worker } = await chatSetup("chatedge_profile_chat", {
  inspectorPort: INSPECTOR_PORT,
});

let slot = 0;
let sent = 0;
let session: { id: string; headers: Record<string, string> } | undefined;
const full: string[] = [];
async function one(): Promise<void> {
  if (target === "paced-conversation") {
    const { id, headers } = await openConversation(worker.url, keys, "conversation", ++slot);
    const res = await fetch(`${worker.url}/v1/conversations/${id}/messages`, {
      method: "POST",
      headers,
      body: JSON.stringify({ content: `hello there ${pacedAnswer(200)}`, stream: true }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  } else if (target === "openai" || long || target === "openai-history") {
    const messages =
      target === "openai-history"
        ? longHistoryMessages()
        : [{ role: "user", content: `hello there, where is my order${LENGTHS[target] ?? ""}` }];
    const res = await fetch(`${worker.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", user: `u${sent % 50}`, stream: long, messages }),
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  } else if (target === "history") {
    // Ten conversations, each filled with nine long turns (the history budget) before it is used.
    const headers = { authorization: `Bearer ${keys.secret}`, "content-type": "application/json" };
    const post = async (id: string) => {
      const res = await fetch(`${worker.url}/v1/conversations/${id}/messages`, {
        method: "POST",
        headers,
        body: JSON.stringify({ content: LONG_MESSAGE }),
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    };
    while (full.length < 10) {
      const res = await fetch(`${worker.url}/v1/conversations`, {
        method: "POST",
        headers,
        body: JSON.stringify({ user: `h${full.length}` }),
      });
      const { id } = (await res.json()) as { id: string };
      for (let i = 0; i < FULL_HISTORY_TURNS; i++) await post(id);
      full.push(id);
    }
    await post(full[sent % full.length] as string);
  } else {
    // 20 messages per conversation, as the bench does; the widget's from its own address.
    if (!session || sent % 20 === 0) {
      slot += 1;
      session = await openConversation(
        worker.url,
        keys,
        target === "conversation" ? "conversation" : "widget",
        slot,
      );
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
  const profile = await profileWhile(
    INSPECTOR_PORT,
    (titles) => titles.findIndex((t) => !t.includes("pass")),
    async () => {
      for (let i = 0; i < REQUESTS; i++) await one();
    },
  );
  const file = `${root}.cache/profile-${target}.cpuprofile`;
  writeFileSync(file, JSON.stringify(profile));
  reportProfile(profile, {
    label: target,
    requests: REQUESTS,
    bundle: "index.js",
    sourceMap: readFileSync(`${root}.cache/bench-worker/index.js.map`, "utf8"),
  });
  console.log(`\n${file}`);
} finally {
  await worker.stop();
  await fixtures.close();
}
