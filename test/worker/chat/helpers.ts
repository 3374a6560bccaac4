import { env } from "cloudflare:workers";
import { createKey, createTenant, send } from "../helpers";

export const FAKE = env.FAKE_LLM_URL;

/** A tenant with a secret key, on the given model (the mock by default). */
export async function chatTenant(overrides: Record<string, unknown> = {}) {
  const t = await createTenant({ model: "mock", ...overrides });
  const { key } = await createKey(t.tenant_id);
  return { tenant: t, id: t.tenant_id, key };
}

/** POST /v1/chat/completions with a key. */
export function completions(key: string, body: unknown, headers: Record<string, string> = {}) {
  return send("POST", "/v1/chat/completions", key, body, headers);
}

/** Reads an SSE body into its frames: [{event, data}]. */
export async function sseFrames(res: Response): Promise<{ event: string; data: string }[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((f) => f.trim().length > 0)
    .map((f) => {
      let event = "message";
      const data: string[] = [];
      for (const line of f.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      return { event, data: data.join("\n") };
    });
}

/** The request bodies the fake LLM saw for the worker's OpenAI key, newest last. */
export async function upstreamRequests(): Promise<Array<{ body: Record<string, unknown> }>> {
  const res = await fetch(`${FAKE}/__requests?key=${encodeURIComponent("sk-worker-test")}`);
  return ((await res.json()) as { requests: Array<{ body: Record<string, unknown> }> }).requests;
}

/** Starts a conversation with a server key and has its visitor ask for a human: it escalates. */
export async function escalatedConversation(key: string): Promise<string> {
  const conv = (await (await send("POST", "/v1/conversations", key, {})).json()) as { id: string };
  await send("POST", `/v1/conversations/${conv.id}/messages`, key, { content: "where is my order" });
  await send("POST", `/v1/conversations/${conv.id}/messages`, key, {
    content: "let me speak to a human agent",
  });
  return conv.id;
}
